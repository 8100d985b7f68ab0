"""IAM: no `*` action, no `*` resource where AWS offers a narrower one, no admin managed
policies; and a node role's effective permissions (every policy it holds, AWS-managed ones
read from the pack's snapshot) reach no other role's secrets and no IAM or SSM control.
Trust policies (who may assume a role) are read only to tell which roles are node roles."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ResourceValidationArgs,
    StackValidationArgs,
)

from ._cluster import CLUSTER_TYPES, ROLE_TAG, tags_of
from ._iam import Grant, Permissions, aws_managed_name, grants, managed_document, statements
from ._props import as_list, need, plain
from ._rules import Report, resource_rule, stack_rule

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

# Actions AWS authorises only on "Resource": "*": each has no resource type in the AWS
# Service Authorization Reference (checked action by action; "Describe*" would also cover
# actions that do take resources, such as ec2:DescribeInstanceAttribute). A statement whose
# actions are all listed here may use "*".
STAR_ONLY_ACTIONS = (
    "ec2:DescribeAvailabilityZones", "ec2:DescribeImages", "ec2:DescribeInstanceStatus", "ec2:DescribeInstanceTypes",
    "ec2:DescribeInstances", "ec2:DescribeLaunchTemplateVersions", "ec2:DescribeLaunchTemplates",
    "ec2:DescribeNetworkInterfaces", "ec2:DescribeRegions", "ec2:DescribeSecurityGroups",
    "ec2:DescribeSpotInstanceRequests", "ec2:DescribeSubnets", "ec2:DescribeTags", "ec2:DescribeVolumes",
    "ec2:DescribeVpcs",
    "autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeAutoScalingInstances",
    "autoscaling:DescribeInstanceRefreshes", "autoscaling:DescribeLaunchConfigurations",
    "autoscaling:DescribeLifecycleHooks", "autoscaling:DescribeLoadBalancerTargetGroups",
    "autoscaling:DescribePolicies", "autoscaling:DescribeScalingActivities", "autoscaling:DescribeScheduledActions",
    "autoscaling:DescribeTags", "autoscaling:DescribeTrafficSources", "autoscaling:DescribeWarmPool",
    "elasticloadbalancing:DescribeListeners", "elasticloadbalancing:DescribeLoadBalancerAttributes",
    "elasticloadbalancing:DescribeLoadBalancers", "elasticloadbalancing:DescribeRules",
    "elasticloadbalancing:DescribeTags", "elasticloadbalancing:DescribeTargetGroupAttributes",
    "elasticloadbalancing:DescribeTargetGroups", "elasticloadbalancing:DescribeTargetHealth",
    "cloudwatch:GetMetricData", "cloudwatch:GetMetricStatistics", "cloudwatch:ListMetrics", "cloudwatch:PutMetricData",
    "logs:DescribeLogGroups",
    "ssm:DescribeInstanceInformation", "ssm:DescribeParameters", "ssm:GetDeployablePatchSnapshotForInstance",
    "ssm:ListAssociations", "ssm:PutInventory",
    "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
    "ec2messages:AcknowledgeMessage", "ec2messages:DeleteMessage", "ec2messages:FailMessage",
    "ec2messages:GetEndpoint", "ec2messages:GetMessages", "ec2messages:SendReply",
    "sts:GetCallerIdentity",
    "kms:ListAliases", "kms:ListKeys",
    "ecr:GetAuthorizationToken",
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
    for i, statement in enumerate(statements(document)):
        sid = statement.get("Sid")
        yield (f"{path} Statement[{i}]" + (f" ({sid})" if sid else "")), statement


def _judge(path: str, document: Any, allowlist: list[str], report: Report) -> None:
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


def _judge_attachment(arn: Any, allowlist: list[str], report: Report) -> None:
    """An attached AWS-managed policy: the admin ones are refused outright; the others the
    pack knows (its snapshot) are judged by their documents, like an inline policy."""
    name = aws_managed_name(arn) if isinstance(arn, str) else None
    if name is None:
        return  # a customer managed policy: judged where it is defined
    if name in ADMIN_POLICIES:
        report(f"attaches {name}; grant the nodes the actions they use, on their resources")
        return
    document = managed_document(name)
    if document is not None:
        _judge(f"attached {name}", document, allowlist, report)


def _iam_no_wildcards(args: ResourceValidationArgs, report: Report) -> None:
    props = plain(args.props)
    allowlist = list(STAR_ONLY_ACTIONS) + list(args.get_config().get("allowedStarResourceActions", []))
    if args.resource_type in ATTACHMENTS:
        _judge_attachment(need(props.get("policyArn"), "policyArn"), allowlist, report)
        return
    if args.resource_type == ROLE:
        for i, arn in enumerate(as_list(props.get("managedPolicyArns"))):
            _judge_attachment(need(arn, "managedPolicyArns", i), allowlist, report)
    for path, document in _documents(args.resource_type, props):
        need(document, *path.split("."))
        _judge(path, document, allowlist, report)


iam_no_wildcards = resource_rule(
    name="iam-no-wildcards",
    resource_types=(*POLICY_DOCUMENT_TYPES, ROLE, *ATTACHMENTS),
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

# --- stack: node-roles-least-privilege --------------------------------------------------------------

ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ROLE_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
POLICY_ATTACHMENT = "aws:iam/policyAttachment:PolicyAttachment"
CUSTOMER_POLICY = "aws:iam/policy:Policy"
PASS_ROLE = "iam:PassRole"
IAM_CHANGES = ("iam:AddRoleToInstanceProfile", "iam:AttachRolePolicy", "iam:AttachUserPolicy", "iam:CreateAccessKey",
               "iam:CreateInstanceProfile", "iam:CreatePolicy", "iam:CreatePolicyVersion", "iam:CreateRole",
               "iam:CreateUser", "iam:DeleteRolePermissionsBoundary", "iam:DeleteRolePolicy",
               "iam:PutRolePermissionsBoundary", "iam:PutRolePolicy", "iam:PutUserPolicy",
               "iam:SetDefaultPolicyVersion", "iam:UpdateAssumeRolePolicy")
"""IAM calls that make or widen a principal: with any of them a node can grant itself anything."""
SSM_CONTROL = ("ssm:SendCommand", "ssm:StartSession", "ssm:StartAutomationExecution", "ssm:CreateAssociation",
               "ssm:CreateAssociationBatch", "ssm:UpdateAssociation")
"""SSM calls that run commands on other nodes (a manager's shell from a worker)."""
SECRET_READS = ("ssm:GetParameter", "ssm:GetParameters", "ssm:GetParameterHistory")
MANAGER_SECRETS = (("the manager join token", "{tree}/*/tokens/manager", "joins as a manager"),
                   ("the Docker API server key", "{tree}/tls/server-key", "can pose as the managers' Docker API"))
_PARAMETER_ARN = re.compile(r"arn:([\w-]+):ssm:([\w-]+):(\d{12}):parameter/")


def _trusts_ec2(trust: Any) -> bool:
    for statement in statements(trust):
        if str(statement.get("Effect", "Allow")) != "Allow":
            continue
        principal = statement.get("Principal")
        services = as_list(principal.get("Service")) if isinstance(principal, dict) else []
        if any(str(s).startswith("ec2.amazonaws.com") for s in services):
            return True
    return False


def _named(value: Any, names: set[str]) -> bool:
    return isinstance(value, str) and value in names


def _attaches(resource_type: str, props: dict[str, Any], names: set[str]) -> bool:
    """Whether a role or policy attachment attaches a policy to the role called one of `names`."""
    if resource_type == ROLE_ATTACHMENT:
        return _named(need(props.get("role"), "role"), names)
    if resource_type == POLICY_ATTACHMENT:
        return any(_named(r, names) for r in as_list(need(props.get("roles"), "roles")))
    return False


def _role_policies(role: Any, props: dict[str, Any], resources: list[Any]) -> tuple[list[Grant], list[str]]:
    """Every statement the role holds (inline, role policies, attached policies), and the
    attached policies whose documents the pack cannot see."""
    names = {value for value in (props.get("name"), props.get("id")) if isinstance(value, str) and value}
    held: list[Grant] = []
    unseen: list[str] = []
    for i, inline in enumerate(as_list(props.get("inlinePolicies"))):
        if isinstance(inline, dict) and inline.get("policy") is not None:
            held += grants(need(inline["policy"], "inlinePolicies", i, "policy"), str(inline.get("name") or "inline"))
    arns = [need(a, "managedPolicyArns") for a in as_list(props.get("managedPolicyArns"))]
    customer = {}
    for other in resources:
        other_props = plain(other.props)
        if other.resource_type == ROLE_POLICY and _named(need(other_props.get("role"), "role"), names):
            held += grants(need(other_props.get("policy"), "policy"), str(other_props.get("name") or other.name))
        elif _attaches(other.resource_type, other_props, names):
            arns.append(need(other_props.get("policyArn"), "policyArn"))
        elif other.resource_type == CUSTOMER_POLICY and isinstance(other_props.get("arn"), str):
            customer[other_props["arn"]] = (other_props.get("policy"), str(other_props.get("name") or other.name))
    for arn in arns:
        name = aws_managed_name(str(arn))
        if name is not None:
            document = managed_document(name)
            if document is None:
                unseen.append(name)
            else:
                held += grants(document, name)
        elif isinstance(arn, str) and arn in customer:
            document, label = customer[arn]
            held += grants(need(document, "policy"), label)
        else:
            unseen.append(str(arn))
    return held, unseen


def _tree(held: list[Grant], cluster: str) -> str:
    """The cluster's parameter tree as an ARN glob, in the partition, region and account
    the role's own statements name (any, when they name none)."""
    for grant in held:
        for resource in grant.resources:
            match = _PARAMETER_ARN.match(resource)
            if match:
                return f"arn:{match.group(1)}:ssm:{match.group(2)}:{match.group(3)}:parameter/swarmstack/{cluster}"
    return f"arn:*:ssm:*:*:parameter/swarmstack/{cluster}"


def _node_roles_least_privilege(args: StackValidationArgs, report: Report) -> None:
    resources = list(args.resources)
    fallback_cluster = next((str(plain(r.props)["clusterName"]) for r in resources
                             if r.resource_type in CLUSTER_TYPES and plain(r.props).get("clusterName")), None)
    for role in resources:
        if role.resource_type != ROLE:
            continue
        props = plain(role.props)
        if not _trusts_ec2(need(props.get("assumeRolePolicy"), "assumeRolePolicy")):
            continue
        label = str(props.get("name") or role.name)
        held, unseen = _role_policies(role, props, resources)
        for name in unseen:
            report(f"node role {label} attaches {name}, whose document the pack cannot see; grant what the "
                   "nodes use in an inline policy", role.urn)
        permissions = Permissions(tuple(held))
        grant = permissions.can(PASS_ROLE)
        if grant is not None:
            report(f"node role {label} can pass roles (iam:PassRole, through {grant.source}): a node could hand "
                   "a stronger role to something it starts", role.urn)
        changes = [(a, g) for a in IAM_CHANGES if (g := permissions.can(a)) is not None]
        if changes:
            report(f"node role {label} can change IAM ({', '.join(a for a, _ in changes)}, through "
                   f"{', '.join(sorted({g.source for _, g in changes}))}): a node could grant itself anything",
                   role.urn)
        control = [(a, g) for a in SSM_CONTROL if (g := permissions.can(a)) is not None]
        if control:
            report(f"node role {label} can run commands on other nodes ({', '.join(a for a, _ in control)}, "
                   f"through {', '.join(sorted({g.source for _, g in control}))})", role.urn)
        tags = tags_of(ROLE, props)
        if tags.get(ROLE_TAG) != "worker":
            continue
        cluster = tags.get("swarmstack:cluster") or fallback_cluster
        if not cluster:
            continue
        tree = _tree(held, cluster)
        for what, pattern, then in MANAGER_SECRETS:
            target = pattern.format(tree=tree)
            reached = [(a, g) for a in SECRET_READS if (g := permissions.reaches(a, target)) is not None]
            by_path = permissions.reaches("ssm:GetParametersByPath", tree) or permissions.reaches(
                "ssm:GetParametersByPath", f"{tree}/*")
            if by_path is not None:
                reached.append(("ssm:GetParametersByPath", by_path))
            if reached:
                report(f"worker role {label} can read {what} ({target.rsplit(':', 1)[-1]}: "
                       f"{', '.join(a for a, _ in reached)}, through "
                       f"{', '.join(sorted({g.source for _, g in reached}))}); a worker that reads it {then}",
                       role.urn)


node_roles_least_privilege = stack_rule(
    name="node-roles-least-privilege",
    description="Counting every policy a node role holds (inline, attached, AWS-managed ones from the pack's "
                "snapshot): a worker cannot read the manager token or the Docker API key, and no node role can "
                "pass roles, change IAM or run SSM commands on other nodes.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_node_roles_least_privilege,
    remediation_steps="Attach no AWS-managed policy to node roles (AmazonSSMManagedInstanceCore allows "
                      "ssm:GetParameter on \"*\"): grant Session Manager's agent calls in an inline policy, scope "
                      "parameter reads to the role's own paths, and give the worker role explicit Denies on "
                      "the manager-only paths.",
)

RESOURCE_POLICIES = [iam_no_wildcards]
STACK_POLICIES = [node_roles_least_privilege]

