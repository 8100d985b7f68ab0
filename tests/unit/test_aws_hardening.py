"""Hardening from the least-privilege review: the flow-logs role trusts its service for
this account only, the access-log bucket refuses plain HTTP from every principal, the
alarm topic is encrypted with the cluster key (whose policy lets CloudWatch alarms use it)
and the config names where alarms go."""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from components.aws.load_balancer import access_log_bucket_policy
from components.aws.network import flow_logs_trust_policy
from components.aws.observability import subscriptions
from components.aws.store import key_policy
from swarmstack.config.load import read_stack_file
from swarmstack.engine.aws import AwsBackend
from swarmstack.engine.run import backends_for, run_stack

ROOT = Path(__file__).resolve().parents[2]
ALARMS = {"email": ["ops@example.com", "oncall@example.com"], "https": ["https://hooks.example.com/swarm"]}


def test_the_flow_logs_role_trusts_its_service_for_this_accounts_flow_logs_only() -> None:
    (statement,) = flow_logs_trust_policy("aws", "eu-west-1", "123456789012")["Statement"]
    assert statement["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "123456789012"},
        "ArnLike": {"aws:SourceArn": "arn:aws:ec2:eu-west-1:123456789012:vpc-flow-log/*"}}


def test_the_access_log_bucket_refuses_plain_http_from_every_principal() -> None:
    policy = access_log_bucket_policy("aws", "123456789012", "arn:aws:s3:::logs")
    (deny,) = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    assert deny["Principal"] == "*" and deny["Action"] == "s3:*"
    assert deny["Resource"] == ["arn:aws:s3:::logs", "arn:aws:s3:::logs/*"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


@pytest.mark.parametrize("for_logs", [False, True])
def test_the_cluster_key_lets_cloudwatch_alarms_publish_to_the_encrypted_topic(for_logs: bool) -> None:
    statements = key_policy("aws", "eu-west-1", "123456789012", "prod", for_logs=for_logs)["Statement"]
    (alarms,) = [s for s in statements if s["Sid"] == "CloudWatchAlarmsToTheEncryptedTopic"]
    assert alarms["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert alarms["Action"] == ["kms:Decrypt", "kms:GenerateDataKey*"]


def test_alarm_subscriptions_are_named_by_their_endpoint() -> None:
    found = subscriptions(["ops@example.com"], ["https://hooks.example.com/a"])
    assert [(p, e) for _, p, e in found] == [("email", "ops@example.com"), ("https", "https://hooks.example.com/a")]
    names = [n for n, _, _ in found]
    assert len(set(names)) == 2 and all(len(n.split("-")[-1]) == 8 for n in names)
    swapped = subscriptions(["b@example.com", "a@example.com"], [])
    assert sorted(swapped) == sorted(subscriptions(["a@example.com", "b@example.com"], []))  # order replaces nothing


@pytest.fixture(scope="module")
def deployed() -> Any:
    """prod-aws in moto (flow logs on, production: the access-log bucket)."""
    config = read_stack_file("prod-aws", ROOT)[1]
    assert config["swarmstack:cluster"]["network"]["new"]["flowLogs"] is True
    config["swarmstack:cluster"]["alarms"] = ALARMS
    with ExitStack() as exits:
        backends = backends_for(config, exits)
        backend = backends["aws"]
        assert isinstance(backend, AwsBackend)
        run_stack("prod-aws", config, ROOT, backends=backends)
        yield backend


def test_moto_holds_the_flow_logs_trust_as_the_program_wrote_it(deployed: AwsBackend) -> None:
    iam = deployed.client("iam")
    roles = [r for r in iam.list_roles()["Roles"] if "flow-logs" in r["RoleName"]]
    assert len(roles) == 1
    trust = roles[0]["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust == flow_logs_trust_policy("aws", deployed.region, deployed.account)


def test_moto_holds_the_bucket_policy_that_refuses_plain_http(deployed: AwsBackend) -> None:
    s3 = deployed.client("s3")
    (bucket,) = [b["Name"] for b in s3.list_buckets()["Buckets"] if "-backups-" not in b["Name"]]  # access logs
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    assert policy == access_log_bucket_policy("aws", deployed.account, f"arn:aws:s3:::{bucket}")


def test_the_alarm_topic_is_encrypted_with_the_cluster_key(deployed: AwsBackend) -> None:
    sns, kms = deployed.client("sns"), deployed.client("kms")
    (topic,) = [t["TopicArn"] for t in sns.list_topics()["Topics"]]
    key = sns.get_topic_attributes(TopicArn=topic)["Attributes"]["KmsMasterKeyId"]
    assert key == kms.describe_key(KeyId="alias/swarmstack/prod")["KeyMetadata"]["Arn"]
    policy = json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])
    (alarms,) = [s for s in policy["Statement"] if s["Sid"] == "CloudWatchAlarmsToTheEncryptedTopic"]
    assert alarms["Principal"] == {"Service": "cloudwatch.amazonaws.com"}


def test_the_configured_endpoints_are_subscribed_to_the_alarm_topic(deployed: AwsBackend) -> None:
    sns = deployed.client("sns")
    (topic,) = [t["TopicArn"] for t in sns.list_topics()["Topics"]]
    held = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert sorted((s["Protocol"], s["Endpoint"]) for s in held) == sorted(
        [("email", e) for e in ALARMS["email"]] + [("https", u) for u in ALARMS["https"]])
