"""Log and load balancer rules."""

from __future__ import annotations

from typing import Any

import pytest
from policy_testing import messages, resource, summary

from policies import observability

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
NLB = "aws:lb/loadBalancer:LoadBalancer"


def log_group(**changes: Any) -> Any:
    props = {"name": "/swarmstack/prod/containers", "retentionInDays": 90.0,
             "kmsKeyId": "arn:aws:kms:eu-west-1:123456789012:key/1234"}
    props.update(changes)
    return resource(LOG_GROUP, "containers", {k: v for k, v in props.items() if v is not None})


def nlb(**changes: Any) -> Any:
    props: dict[str, Any] = {"loadBalancerType": "network", "internal": False, "enableDeletionProtection": True,
                             "accessLogs": {"bucket": "prod-lb-logs", "enabled": True}}
    props.update(changes)
    return resource(NLB, "prod-lb", {k: v for k, v in props.items() if v is not None})


def test_log_retention_passes() -> None:
    assert messages(observability.log_retention_set, log_group()) == []
    workspace = resource("azure-native:operationalinsights:Workspace", "logs", {"retentionInDays": 30.0})
    assert messages(observability.log_retention_set, workspace) == []


@pytest.mark.parametrize(("days", "message"), [
    (None, "retentionInDays is not set, so CloudWatch keeps these logs (and bills for them) forever"),
    (0.0, "retentionInDays is not set, so CloudWatch keeps these logs (and bills for them) forever"),
    (10.0, "retentionInDays is 10; CloudWatch accepts one of 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, "
           "400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653"),
])
def test_log_retention_breaks(days: float | None, message: str) -> None:
    assert messages(observability.log_retention_set, log_group(retentionInDays=days)) == [message]


def test_log_retention_minimum_is_configurable() -> None:
    assert messages(observability.log_retention_set, log_group(), config={
        "log-retention-set": {"minimumDays": 365}}) == ["retentionInDays is 90; keep logs for at least 365 days"]
    workspace = resource("azure-native:operationalinsights:Workspace", "logs", {"sku": {"name": "PerGB2018"}})
    assert messages(observability.log_retention_set, workspace) == [
        "retentionInDays is not set; the workspace falls back to its SKU's default"]


def test_log_groups_encrypted_when_asked() -> None:
    assert messages(observability.log_groups_encrypted, summary(log_kms=True), log_group()) == []
    assert messages(observability.log_groups_encrypted, summary(log_kms=False), log_group(kmsKeyId=None)) == []
    assert messages(observability.log_groups_encrypted, summary(log_kms=True), log_group(kmsKeyId=None)) == [
        "log group containers has no kmsKeyId, but the stack asks for KMS-encrypted logs (logging.kms: true)"]


def test_load_balancer_production_hardening_passes() -> None:
    for policy in (observability.load_balancer_deletion_protection, observability.load_balancer_access_logs):
        assert messages(policy, summary(), nlb()) == []
        assert messages(policy, summary(production=False), nlb(enableDeletionProtection=False, accessLogs=None)) == []


def test_load_balancer_without_deletion_protection_in_production() -> None:
    assert messages(observability.load_balancer_deletion_protection, summary(),
                    nlb(enableDeletionProtection=False)) == [
        "load balancer prod-lb has enableDeletionProtection off in a production stack"]
    assert messages(observability.load_balancer_deletion_protection, summary(),
                    nlb(enableDeletionProtection=None)) == [
        "load balancer prod-lb has enableDeletionProtection off in a production stack"]


@pytest.mark.parametrize("logs", [None, {"bucket": "prod-lb-logs", "enabled": False}, {"bucket": "", "enabled": True}])
def test_load_balancer_without_access_logs_in_production(logs: Any) -> None:
    assert messages(observability.load_balancer_access_logs, summary(), nlb(accessLogs=logs)) == [
        "load balancer prod-lb has no access logs (accessLogs.enabled with a bucket) in a production stack"]


def test_vpc_flow_logs_in_production() -> None:
    vpc = resource("aws:ec2/vpc:Vpc", "prod-vpc", {"cidrBlock": "10.20.0.0/16"}, {"id": "vpc-0prod"})
    flow = resource("aws:ec2/flowLog:FlowLog", "prod-flow-logs", {"vpcId": "vpc-0prod", "trafficType": "ALL"})
    assert messages(observability.vpc_flow_logs, summary(), vpc, flow) == []
    assert messages(observability.vpc_flow_logs, summary(production=False), vpc) == []
    assert messages(observability.vpc_flow_logs, summary(), vpc) == [
        "VPC prod-vpc has no flow log in a production stack"]
