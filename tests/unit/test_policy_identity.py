"""IAM rule: wildcards in actions and resources, NotAction, admin managed policies."""

from __future__ import annotations

import json
from typing import Any

import pytest

from policies import identity
from policies.testing import messages, resource

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


def test_admin_managed_policies_are_refused() -> None:
    kind = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
    ssm = resource(kind, "ssm", {"role": "r", "policyArn": "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"})
    assert messages(identity.iam_no_wildcards, ssm) == []
    admin = resource(kind, "admin", {"role": "r", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"})
    assert messages(identity.iam_no_wildcards, admin) == [
        "attaches AdministratorAccess; grant the nodes the actions they use, on their resources"]
