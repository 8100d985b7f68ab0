"""Logs and load balancers: retention, encryption when asked for, and the production
hardening of the load balancer (deletion protection, access logs)."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ResourceValidationArgs,
    StackValidationArgs,
)

from ._cluster import summaries
from ._props import dig, is_unknown, need, number, plain, truthy
from ._rules import Report, resource_rule, stack_rule

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
WORKSPACE = "azure-native:operationalinsights:Workspace"
LOAD_BALANCERS = ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
AWS_LOG_RETENTION = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
                     1096, 1827, 2192, 2557, 2922, 3288, 3653)

# --- log-retention-set ----------------------------------------------------------------------


def _log_retention_set(args: ResourceValidationArgs, report: Report) -> None:
    props = plain(args.props)
    minimum = int(args.get_config().get("minimumDays", 1))
    days = number(need(props.get("retentionInDays"), "retentionInDays"))
    if args.resource_type == LOG_GROUP:
        if days is None or days == 0:
            report("retentionInDays is not set, so CloudWatch keeps these logs (and bills for them) forever")
            return
        if int(days) not in AWS_LOG_RETENTION:
            report(f"retentionInDays is {int(days)}; CloudWatch accepts one of "
                   + ", ".join(map(str, AWS_LOG_RETENTION)))
            return
    elif days is None:
        report("retentionInDays is not set; the workspace falls back to its SKU's default")
        return
    if days < minimum:
        report(f"retentionInDays is {int(days)}; keep logs for at least {minimum} days")


log_retention_set = resource_rule(
    name="log-retention-set",
    resource_types=(LOG_GROUP, WORKSPACE),
    description="Log groups and workspaces keep logs for a set period, never forever by omission.",
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=_log_retention_set,
    config_schema=PolicyConfigSchema(properties={
        "minimumDays": {"type": "integer", "minimum": 1, "default": 1,
                        "description": "Shortest retention allowed (365 for CKV_AWS_338)."},
    }),
    remediation_steps="Set logging.retentionDays (one of the values CloudWatch accepts; 30 to 730 on Azure).",
)

# --- log-groups-encrypted -----------------------------------------------------------------------


def _log_groups_encrypted(args: StackValidationArgs, report: Report) -> None:
    found = summaries(args.resources)
    if not any(s.log_kms for s in found):
        args.not_applicable("the stack does not ask for KMS on its logs (logging.kms)")
    for resource in args.resources:
        if resource.resource_type != LOG_GROUP:
            continue
        key = plain(resource.props).get("kmsKeyId")
        if is_unknown(key):
            continue  # a key made in this update: set, just not known yet
        if not key:
            report(f"log group {resource.name} has no kmsKeyId, but the stack asks for KMS-encrypted logs "
                   "(logging.kms: true)", resource.urn)


log_groups_encrypted = stack_rule(
    name="log-groups-encrypted",
    description="When the stack asks for it (logging.kms), every CloudWatch log group is encrypted with a "
                "customer-managed KMS key.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_log_groups_encrypted,
    remediation_steps="Pass the cluster's logs key to every log group (kmsKeyId), including VPC flow logs; "
                      "the key policy must allow logs.<region>.amazonaws.com.",
)

# --- load-balancer-deletion-protection / load-balancer-access-logs -----------------------------------


def _production(args: StackValidationArgs) -> None:
    if not any(s.production for s in summaries(args.resources)):
        args.not_applicable("the stack is not marked production")


def _lb_deletion_protection(args: StackValidationArgs, report: Report) -> None:
    _production(args)
    for resource in args.resources:
        if resource.resource_type in LOAD_BALANCERS:
            value = plain(resource.props).get("enableDeletionProtection")
            if not is_unknown(value) and not truthy(value):
                report(f"load balancer {resource.name} has enableDeletionProtection off in a production stack",
                       resource.urn)


load_balancer_deletion_protection = stack_rule(
    name="load-balancer-deletion-protection",
    description="In production, load balancers have deletion protection on.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_lb_deletion_protection,
    remediation_steps="Set enableDeletionProtection: true on the load balancer of production stacks "
                      "(turn it off deliberately before a destroy).",
)


def _lb_access_logs(args: StackValidationArgs, report: Report) -> None:
    _production(args)
    for resource in args.resources:
        if resource.resource_type in LOAD_BALANCERS:
            logs = plain(resource.props).get("accessLogs")
            if is_unknown(logs) or is_unknown(dig(logs, "enabled")):
                continue
            if not truthy(dig(logs, "enabled")) or not dig(logs, "bucket"):
                report(f"load balancer {resource.name} has no access logs (accessLogs.enabled with a bucket) "
                       "in a production stack", resource.urn)


load_balancer_access_logs = stack_rule(
    name="load-balancer-access-logs",
    description="In production, load balancers write access logs.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_lb_access_logs,
    remediation_steps="Set accessLogs {bucket, enabled: true} (an S3 bucket whose policy lets the ELB "
                      "log delivery write to it).",
)

# --- vpc-flow-logs --------------------------------------------------------------------------------


def _vpc_flow_logs(args: StackValidationArgs, report: Report) -> None:
    _production(args)
    logged: set[str] = set()
    vpcs = []
    for resource in args.resources:
        props = plain(resource.props)
        if resource.resource_type == "aws:ec2/flowLog:FlowLog":
            vpc = props.get("vpcId")
            if is_unknown(vpc):
                return  # in preview: a flow log on a VPC not created yet; judged at update
            if isinstance(vpc, str):
                logged.add(vpc)
        elif resource.resource_type == "aws:ec2/vpc:Vpc":
            vpcs.append((resource, props.get("id")))
    for resource, vpc_id in vpcs:
        if is_unknown(vpc_id) and logged:
            continue
        if vpc_id not in logged:
            report(f"VPC {resource.name} has no flow log in a production stack", resource.urn)


vpc_flow_logs = stack_rule(
    name="vpc-flow-logs",
    description="In production, every VPC the stack creates has flow logs.",
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=_vpc_flow_logs,
    remediation_steps="Set network.new.flowLogs: true.",
)

RESOURCE_POLICIES = [log_retention_set]
STACK_POLICIES = [log_groups_encrypted, load_balancer_deletion_protection, load_balancer_access_logs, vpc_flow_logs]
