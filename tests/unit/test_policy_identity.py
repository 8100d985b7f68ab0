"""IAM rules: wildcards in actions and resources, NotAction, managed policies judged by
their documents; what a node role holds once every policy is counted."""

from __future__ import annotations

import json
from typing import Any

import pytest
from policy_testing import messages, resource

from policies import identity

ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


GOOD = document(
    {"Sid": "Describe", "Effect": "Allow", "Action": ["ec2:DescribeInstances", "autoscaling:DescribeAutoScalingGroups"],
     "Resource": "*"},
    {"Sid": "Lifecycle", "Effect": "Allow", "Action": "autoscaling:CompleteLifecycleAction",
     "Resource": "arn:aws:autoscaling:eu-west-1:123456789012:autoScalingGroup:*:autoScalingGroupName/prod-*"},
    {"Sid": "Tokens", "Effect": "Allow", "Action": ["ssm:GetParameter", "ssm:PutParameter"],
     "Resource": "arn:aws:ssm:eu-west-1:123456789012:parameter/swarmstack/prod/*"},
    {"Effect": "Deny", "Action": "*", "Resource": "*"},
)


def policy(doc: str) -> Any:
    return resource(ROLE_POLICY, "prod-managers", {"role": "prod-managers", "policy": doc})


def test_a_narrow_policy_passes() -> None:
    assert messages(identity.iam_no_wildcards, policy(GOOD)) == []
    role = resource("aws:iam/role:Role", "prod-managers", {
        "assumeRolePolicy": document({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                      "Action": "sts:AssumeRole"}),
        "inlinePolicies": [{"name": "nodes", "policy": GOOD}]})
    assert messages(identity.iam_no_wildcards, role) == []


@pytest.mark.parametrize(("statement", "message"), [
    ({"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b"},
     "policy Statement[0]: Action \"*\" grants every action of every service"),
    ({"Effect": "Allow", "Action": ["ssm:*"], "Resource": "arn:aws:ssm:eu-west-1:1:parameter/x"},
     "policy Statement[0]: Action \"ssm:*\" grants every ssm action; list the ones the nodes use"),
    ({"Sid": "Tokens", "Effect": "Allow", "Action": ["ssm:GetParameter", "ec2:DescribeTags"], "Resource": "*"},
     "policy Statement[0] (Tokens): Resource \"*\" for ssm:GetParameter, which AWS lets you scope to resource "
     "ARNs; name them"),
    ({"Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:s3:::b"},
     "policy Statement[0]: Allow with NotAction grants everything not listed; list the actions instead"),
    ({"Effect": "Allow", "Action": "s3:GetObject", "NotResource": "arn:aws:s3:::b"},
     "policy Statement[0]: Allow with NotResource grants every other resource; list the resources instead"),
])
def test_wildcards_are_refused(statement: dict[str, Any], message: str) -> None:
    assert messages(identity.iam_no_wildcards, policy(document(statement))) == [message]


def test_inline_role_policies_are_checked() -> None:
    role = resource("aws:iam/role:Role", "r", {"assumeRolePolicy": "{}", "inlinePolicies": [
        {"name": "all", "policy": document({"Effect": "Allow", "Action": "*", "Resource": "*"})}]})
    assert messages(identity.iam_no_wildcards, role) == [
        "inlinePolicies[0].policy Statement[0]: Action \"*\" grants every action of every service"]


def test_the_star_resource_allowlist_is_configurable() -> None:
    doc = document({"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": "*"})
    assert messages(identity.iam_no_wildcards, policy(doc), config={
        "iam-no-wildcards": {"allowedStarResourceActions": ["ssm:Get*"]}}) == []


ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
CORE = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
CORE_MESSAGE = (
    "attached AmazonSSMManagedInstanceCore Statement[0]: Resource \"*\" for ssm:DescribeAssociation, ssm:GetDocument, "
    "ssm:DescribeDocument, ssm:GetManifest, ssm:GetParameter, ssm:GetParameters, ssm:ListInstanceAssociations, "
    "ssm:PutComplianceItems, ssm:PutConfigurePackageResult, ssm:UpdateAssociationStatus, "
    "ssm:UpdateInstanceAssociationStatus, ssm:UpdateInstanceInformation, which AWS lets you scope to resource ARNs; "
    "name them")


def test_managed_policies_are_judged_by_their_documents() -> None:
    ssm = resource(ATTACHMENT, "ssm", {"role": "r", "policyArn": CORE})
    assert messages(identity.iam_no_wildcards, ssm) == [CORE_MESSAGE]
    role = resource("aws:iam/role:Role", "r", {"assumeRolePolicy": "{}", "managedPolicyArns": [CORE]})
    assert messages(identity.iam_no_wildcards, role) == [CORE_MESSAGE]
    admin = resource(ATTACHMENT, "admin", {"role": "r", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"})
    assert messages(identity.iam_no_wildcards, admin) == [
        "attaches AdministratorAccess; grant the nodes the actions they use, on their resources"]
    customer = resource(ATTACHMENT, "mine", {"role": "r", "policyArn": "arn:aws:iam::123456789012:policy/mine"})
    assert messages(identity.iam_no_wildcards, customer) == []  # judged where it is defined


@pytest.mark.parametrize(("action", "star_only"), [
    ("ec2:DescribeInstances", True), ("autoscaling:DescribeAutoScalingGroups", True),
    ("ssmmessages:OpenDataChannel", True), ("ec2messages:GetMessages", True), ("ssm:DescribeParameters", True),
    ("ssm:UpdateInstanceInformation", False), ("ssm:ListInstanceAssociations", False),  # they take instances
    ("ec2:DescribeInstanceAttribute", False),  # an ec2:Describe* that takes an instance
    ("cloudwatch:DescribeAlarms", False), ("logs:DescribeLogStreams", False),
])
def test_star_only_actions_are_listed_exactly(action: str, star_only: bool) -> None:
    found = messages(identity.iam_no_wildcards, policy(document({"Effect": "Allow", "Action": action, "Resource": "*"})))
    assert found == ([] if star_only else [
        f"policy Statement[0]: Resource \"*\" for {action}, which AWS lets you scope to resource ARNs; name them"])
    assert all("*" not in a and "?" not in a for a in identity.STAR_ONLY_ACTIONS)


def test_the_snapshot_says_where_it_comes_from() -> None:
    from policies._iam import managed_snapshot

    snapshot = managed_snapshot()
    assert snapshot["source"].startswith("moto ") and snapshot["taken"]
    assert "AmazonSSMManagedInstanceCore" in snapshot["policies"]
    for entry in snapshot["policies"].values():
        assert entry["updateDate"] and entry["versionId"] and entry["document"]["Statement"]


def test_the_snapshot_matches_the_documents_moto_ships() -> None:
    """The documents are AWS's as moto imported them; a moto upgrade that changes one shows here."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    from policies._iam import managed_snapshot

    shipped = json.loads(aws_managed_policies_data)
    for name, entry in managed_snapshot()["policies"].items():
        assert entry["document"] == shipped[name]["Document"], name
        assert entry["updateDate"] == shipped[name]["UpdateDate"], name


# --- node-roles-least-privilege -------------------------------------------------------------------

ACCOUNT, REGION, GEN = "123456789012", "eu-west-1", "0a1b2c3d"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234"
LOGS = [f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/swarmstack/prod/containers"]
EC2_TRUST = document({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"})
TREE = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/swarmstack/prod"


def node_role(role: str, *extra: Any, attach: tuple[str, ...] = (), statements: Any = None,
              trust: str = EC2_TRUST) -> list[Any]:
    """The node role as the program builds it (its `node_policy`), plus what a test adds."""
    from components.aws.identity import node_policy

    name = f"prod-{role}-role"
    body = node_policy(role, "aws", REGION, ACCOUNT, "prod", LOGS, KEY, GEN)  # type: ignore[arg-type]
    if statements is not None:
        body = {**body, "Statement": statements(body["Statement"])}
    found = [resource("aws:iam/role:Role", name, {"name": name, "assumeRolePolicy": trust,
                                                  "tags": {"swarmstack:cluster": "prod", "swarmstack:role": role}}),
             resource(ROLE_POLICY, f"prod-{role}-policy", {"role": name, "name": f"prod-{role}-policy",
                                                          "policy": json.dumps(body)})]
    found += [resource(ATTACHMENT, f"{name}-{i}", {"role": name, "policyArn": arn}) for i, arn in enumerate(attach)]
    return found + list(extra)


def judged(*resources: Any) -> list[str]:
    return messages(identity.node_roles_least_privilege, *resources)


def test_the_node_roles_the_program_builds_pass() -> None:
    assert judged(*node_role("manager"), *node_role("worker")) == []


def test_a_worker_with_the_ssm_core_attachment_is_refused_unless_it_denies_the_managers_paths() -> None:
    def allows_only(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [s for s in statements if s["Effect"] == "Allow"]

    assert judged(*node_role("worker", attach=(CORE,), statements=allows_only)) == [
        "worker role prod-worker-role can read the manager join token (parameter/swarmstack/prod/*/tokens/manager: "
        "ssm:GetParameter, ssm:GetParameters, through AmazonSSMManagedInstanceCore); a worker that reads it joins "
        "as a manager",
        "worker role prod-worker-role can read the Docker API server key (parameter/swarmstack/prod/tls/server-key: "
        "ssm:GetParameter, ssm:GetParameters, through AmazonSSMManagedInstanceCore); a worker that reads it can pose "
        "as the managers' Docker API"]
    assert judged(*node_role("worker", attach=(CORE,))) == []  # the worker's Denies hold
    assert judged(*node_role("manager", attach=(CORE,))) == []  # managers may read both


def test_a_worker_reading_the_clusters_tree_is_refused() -> None:
    def wide(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [*[s for s in statements if s["Effect"] == "Allow"],
                {"Effect": "Allow", "Action": "ssm:GetParametersByPath", "Resource": f"{TREE}"}]

    assert judged(*node_role("worker", statements=wide)) == [
        "worker role prod-worker-role can read the manager join token (parameter/swarmstack/prod/*/tokens/manager: "
        "ssm:GetParametersByPath, through prod-worker-policy); a worker that reads it joins as a manager",
        "worker role prod-worker-role can read the Docker API server key (parameter/swarmstack/prod/tls/server-key: "
        "ssm:GetParametersByPath, through prod-worker-policy); a worker that reads it can pose as the managers' "
        "Docker API"]


@pytest.mark.parametrize(("extra", "message"), [
    ({"Effect": "Allow", "Action": "iam:PassRole", "Resource": f"arn:aws:iam::{ACCOUNT}:role/*"},
     "node role prod-manager-role can pass roles (iam:PassRole, through prod-manager-policy): a node could hand a "
     "stronger role to something it starts"),
    ({"Effect": "Allow", "Action": ["iam:PutRolePolicy", "iam:CreateAccessKey"], "Resource": "*"},
     "node role prod-manager-role can change IAM (iam:CreateAccessKey, iam:PutRolePolicy, through "
     "prod-manager-policy): a node could grant itself anything"),
    ({"Effect": "Allow", "Action": "ssm:SendCommand", "Resource": "*"},
     "node role prod-manager-role can run commands on other nodes (ssm:SendCommand, through prod-manager-policy)"),
    ({"Effect": "Allow", "Action": "ssm:Start*", "Resource": "*"},
     "node role prod-manager-role can run commands on other nodes (ssm:StartSession, ssm:StartAutomationExecution, "
     "through prod-manager-policy)"),
])
def test_node_roles_cannot_pass_roles_change_iam_or_send_commands(extra: dict[str, Any], message: str) -> None:
    assert judged(*node_role("manager", statements=lambda s: [*s, extra])) == [message]


def test_a_deny_takes_a_grant_back() -> None:
    deny = {"Effect": "Deny", "Action": "iam:PassRole", "Resource": "*"}
    assert judged(*node_role("manager", attach=("arn:aws:iam::aws:policy/IAMFullAccess",),
                             statements=lambda s: [*s, deny])) == [
        "node role prod-manager-role can change IAM (iam:AddRoleToInstanceProfile, iam:AttachRolePolicy, "
        "iam:AttachUserPolicy, iam:CreateAccessKey, iam:CreateInstanceProfile, iam:CreatePolicy, "
        "iam:CreatePolicyVersion, iam:CreateRole, iam:CreateUser, iam:DeleteRolePermissionsBoundary, "
        "iam:DeleteRolePolicy, iam:PutRolePermissionsBoundary, iam:PutRolePolicy, iam:PutUserPolicy, "
        "iam:SetDefaultPolicyVersion, iam:UpdateAssumeRolePolicy, through IAMFullAccess): a node could grant itself "
        "anything"]


def test_policies_the_pack_cannot_see_are_named() -> None:
    customer = resource("aws:iam/policy:Policy", "extra", {"name": "extra", "policy": document(
        {"Effect": "Allow", "Action": "ssm:SendCommand", "Resource": "*"})},
        {"arn": f"arn:aws:iam::{ACCOUNT}:policy/extra"})
    assert judged(*node_role("manager", customer, attach=(
        f"arn:aws:iam::{ACCOUNT}:policy/extra", f"arn:aws:iam::{ACCOUNT}:policy/elsewhere",
        "arn:aws:iam::aws:policy/AmazonS3FullAccess"))) == [
        f"node role prod-manager-role attaches arn:aws:iam::{ACCOUNT}:policy/elsewhere, whose document the pack "
        "cannot see; grant what the nodes use in an inline policy",
        "node role prod-manager-role attaches AmazonS3FullAccess, whose document the pack cannot see; grant what "
        "the nodes use in an inline policy",
        "node role prod-manager-role can run commands on other nodes (ssm:SendCommand, through extra)"]


def test_roles_that_are_not_node_roles_are_not_judged() -> None:
    lambda_trust = document({"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                             "Action": "sts:AssumeRole"})
    assert judged(*node_role("manager", attach=("arn:aws:iam::aws:policy/IAMFullAccess",), trust=lambda_trust)) == []


def test_in_preview_the_rule_waits_for_the_documents() -> None:
    """The documents name the cluster key's ARN, which exists only once the key is created."""
    key = resource("aws:kms/key:Key", "prod-key", {"description": "prod"}, {"arn": KEY})
    found = messages(identity.node_roles_least_privilege, key, *node_role("worker"), preview=True)
    assert len(found) == 1 and found[0].startswith(
        "can't run policy 'node-roles-least-privilege' from policy pack 'swarmstack@v0.1.0' during preview")
    assert messages(identity.node_roles_least_privilege, key, *node_role("worker")) == []
