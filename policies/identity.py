"""IAM: no `*` action, no `*` resource where AWS offers a narrower one, no admin
managed policies. Trust policies (who may assume a role) are out of scope here."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ResourceValidationArgs,
)

from policies._support import Report, as_list, need, plain, resource_rule

POLICY_DOCUMENT_TYPES = {
    "aws:iam/policy:Policy": "policy",
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:iam/userPolicy:UserPolicy": "policy",
    "aws:iam/groupPolicy:GroupPolicy": "policy",
}
ROLE = "aws:iam/role:Role"
ATTACHMENTS = ("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "aws:iam/policyAttachment:PolicyAttachment",
               "aws:iam/userPolicyAttachment:UserPolicyAttachment",
               "aws:iam/groupPolicyAttachment:GroupPolicyAttachment")

# Actions that AWS only authorises on "Resource": "*": they have no resource-level
# permissions (see the Service Authorization Reference, "Resource types" column empty).
# A statement whose actions are all listed here may use "*".
STAR_ONLY_ACTIONS = (
    "ec2:Describe*",
    "autoscaling:Describe*",
    "elasticloadbalancing:Describe*",
    "cloudwatch:PutMetricData",
    "cloudwatch:GetMetricData",
    "cloudwatch:ListMetrics",
    "logs:DescribeLogGroups",
    "ssm:DescribeInstanceInformation",
    "ssm:DescribeParameters",
    "ssm:UpdateInstanceInformation",
    "ssm:ListAssociations",
    "ssm:ListInstanceAssociations",
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
    "ec2messages:AcknowledgeMessage",
    "ec2messages:DeleteMessage",
    "ec2messages:FailMessage",
    "ec2messages:GetEndpoint",
    "ec2messages:GetMessages",
    "ec2messages:SendReply",
    "sts:GetCallerIdentity",
    "kms:ListAliases",
)
ADMIN_POLICIES = ("AdministratorAccess", "PowerUserAccess", "IAMFullAccess")


def _documents(resource_type: str, props: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    key = POLICY_DOCUMENT_TYPES.get(resource_type)
    if key is not None:
        yield key, props.get(key)
    elif resource_type == ROLE:
        for i, inline in enumerate(as_list(props.get("inlinePolicies"))):
            if isinstance(inline, dict) and inline.get("policy") is not None:
                yield f"inlinePolicies[{i}].policy", inline.get("policy")


def _allowed_on_star(action: str, allowlist: list[str]) -> bool:
    return any(action.lower() == pattern.lower() or fnmatch.fnmatchcase(action.lower(), pattern.lower())
               for pattern in allowlist)


def _statements(path: str, document: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError:
            return
    if not isinstance(document, dict):
        return
    for i, statement in enumerate(as_list(document.get("Statement"))):
        if isinstance(statement, dict):
            sid = statement.get("Sid")
            yield (f"{path} Statement[{i}]" + (f" ({sid})" if sid else "")), statement


def _iam_no_wildcards(args: ResourceValidationArgs, report: Report) -> None:
    props = plain(args.props)
    allowlist = list(STAR_ONLY_ACTIONS) + list(args.get_config().get("allowedStarResourceActions", []))
    if args.resource_type in ATTACHMENTS:
        arn = need(props.get("policyArn"), "policyArn")
        if isinstance(arn, str) and arn.rsplit("/", 1)[-1] in ADMIN_POLICIES and ":aws:policy/" in arn:
            report(f"attaches {arn.rsplit('/', 1)[-1]}; grant the nodes the actions they use, on their resources")
        return
    for path, document in _documents(args.resource_type, props):
        need(document, *path.split("."))
        for where, statement in _statements(path, document):
            if str(statement.get("Effect", "Allow")) != "Allow":
                continue
            if "NotAction" in statement:
                report(f"{where}: Allow with NotAction grants everything not listed; list the actions instead")
            actions = [str(a) for a in as_list(statement.get("Action"))]
            for action in actions:
                if action == "*":
                    report(f"{where}: Action \"*\" grants every action of every service")
                elif action.endswith(":*"):
                    report(f"{where}: Action \"{action}\" grants every {action[:-2]} action; "
                           "list the ones the nodes use")
            if "NotResource" in statement:
                report(f"{where}: Allow with NotResource grants every other resource; list the resources instead")
            resources = [str(r) for r in as_list(statement.get("Resource"))]
            if "*" in resources:
                narrowable = [a for a in actions if a != "*" and not a.endswith(":*")
                              and not _allowed_on_star(a, allowlist)]
                if narrowable:
                    report(f"{where}: Resource \"*\" for {', '.join(narrowable)}, which AWS lets you scope to "
                           "resource ARNs; name them")


iam_no_wildcards = resource_rule(
    name="iam-no-wildcards",
    description="IAM policies grant no \"*\" or service-wide action, and no \"*\" resource except for the "
                "actions AWS only grants on \"*\".",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_iam_no_wildcards,
    config_schema=PolicyConfigSchema(properties={
        "allowedStarResourceActions": {
            "type": "array", "items": {"type": "string"}, "default": [],
            "description": "More actions (glob patterns) that may use Resource \"*\", beyond the built-in list "
                           "of actions without resource-level permissions.",
        },
    }),
    remediation_steps="Name each action and scope Resource to the cluster's ARNs (its SSM parameter path, "
                      "log groups, ASGs by tag condition). Describe* calls stay on \"*\": AWS has no "
                      "narrower form for them.",
)

RESOURCE_POLICIES = [iam_no_wildcards]
STACK_POLICIES: list = []

