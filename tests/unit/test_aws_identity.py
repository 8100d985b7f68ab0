"""The node roles' policy documents, judged as IAM would judge them.

moto evaluates the Parameter Store side on real credentials (`test_aws_node_access.py`);
what it cannot judge is checked here on the documents: the KMS statements, whose
`kms:ViaService` and `kms:EncryptionContext:PARAMETER_ARN` conditions moto has no value
for (Parameter Store calls KMS with the parameter's ARN as encryption context; a standard
SecureString is written with `kms:Encrypt`). `decision` is a small, independent reading of
IAM's rules for what these documents use: explicit Deny wins, then any Allow; `*`/`?`
globs in actions and resources; StringEquals, StringLike, StringNotEquals with AWS's rule
for a key absent from the request (positive operators fail, negated ones hold).
"""

from __future__ import annotations

import fnmatch
import json
import re
from typing import Any, Literal

import pytest

from components.aws.identity import UNSCOPABLE_ACTIONS, WORKER_READS, node_policy
from components.aws.maintenance import prune_script

LOGS = ["arn:aws:logs:eu-west-1:123456789012:log-group:/swarmstack/prod/containers"]
KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234"
GEN = "0a1b2c3d"
TREE = "arn:aws:ssm:eu-west-1:123456789012:parameter/swarmstack/prod"
VIA_SSM = {"kms:ViaService": "ssm.eu-west-1.amazonaws.com"}
SECRETS = {"tokens/manager": f"{TREE}/{GEN}/tokens/manager", "tokens/worker": f"{TREE}/{GEN}/tokens/worker",
           "tls/server-key": f"{TREE}/tls/server-key"}


def policy(role: str) -> dict[str, Any]:
    return node_policy(role, "aws", "eu-west-1", "123456789012", "prod", LOGS, KEY, GEN)  # type: ignore[arg-type]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _glob(pattern: str, value: str, case: bool = True) -> bool:
    regex = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.fullmatch(regex, value, 0 if case else re.IGNORECASE) is not None


def _condition_holds(condition: dict[str, Any], context: dict[str, str]) -> bool:
    for operator, tests in condition.items():
        for key, wanted in tests.items():
            value, wanted = context.get(key), [str(w) for w in as_list(wanted)]
            if operator == "StringEquals":
                ok = value is not None and value in wanted
            elif operator == "StringLike":
                ok = value is not None and any(_glob(w, value) for w in wanted)
            elif operator == "StringNotEquals":
                ok = value is None or value not in wanted
            else:
                raise AssertionError(f"the evaluator does not know {operator}")
            if not ok:
                return False
    return True


def decision(document: dict[str, Any], action: str, resource: str, context: dict[str, str] | None = None
             ) -> Literal["allow", "deny", "implicit deny"]:
    allowed = False
    for statement in as_list(document["Statement"]):
        if not any(_glob(a, action, case=False) for a in as_list(statement["Action"])):
            continue
        if not any(_glob(r, resource) for r in as_list(statement["Resource"])):
            continue
        if not _condition_holds(statement.get("Condition", {}), context or {}):
            continue
        if statement["Effect"] == "Deny":
            return "deny"
        allowed = True
    return "allow" if allowed else "implicit deny"


def test_the_evaluator_follows_iams_rules() -> None:
    document = {"Statement": [
        {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "arn:k/*",
         "Condition": {"StringLike": {"ctx": "a/*"}}},
        {"Effect": "Deny", "Action": "kms:*", "Resource": "*", "Condition": {"StringNotEquals": {"ctx": "a/1"}}}]}
    assert decision(document, "kms:Decrypt", "arn:k/1", {"ctx": "a/1"}) == "allow"
    assert decision(document, "kms:Decrypt", "arn:k/1", {"ctx": "a/2"}) == "deny"
    assert decision(document, "kms:Decrypt", "arn:k/1", {}) == "deny"  # a negated operator holds on a missing key
    assert decision(document, "kms:decrypt", "arn:other", {"ctx": "a/1"}) == "implicit deny"


@pytest.mark.parametrize(("role", "secret", "expected"), [
    ("worker", "tokens/worker", "allow"), ("worker", "tokens/manager", "deny"), ("worker", "tls/server-key", "deny"),
    ("manager", "tokens/worker", "allow"), ("manager", "tokens/manager", "allow"),
    ("manager", "tls/server-key", "allow"),
])
def test_the_cluster_key_decrypts_for_each_role_only_its_own_secrets(role: str, secret: str, expected: str) -> None:
    context = {**VIA_SSM, "kms:EncryptionContext:PARAMETER_ARN": SECRETS[secret]}
    assert decision(policy(role), "kms:Decrypt", KEY, context) == expected


@pytest.mark.parametrize("role", ["manager", "worker"])
def test_the_key_is_used_only_through_ssm_and_only_for_the_clusters_parameters(role: str) -> None:
    document = policy(role)
    for action in ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"):
        assert decision(document, action, KEY) != "allow", action  # straight to KMS, no context
        assert decision(document, action, KEY, {"kms:EncryptionContext:PARAMETER_ARN": SECRETS["tokens/worker"]}) \
            != "allow", action  # not through SSM
        other = {**VIA_SSM, "kms:EncryptionContext:PARAMETER_ARN": f"{TREE}/{GEN}/init"}
        assert decision(document, action, KEY, other) != "allow", action
        elsewhere = {**VIA_SSM, "kms:EncryptionContext:PARAMETER_ARN": SECRETS["tokens/worker"].replace("prod", "dev")}
        assert decision(document, action, KEY, elsewhere) != "allow", action
    assert decision(document, "kms:Decrypt", "arn:aws:kms:eu-west-1:123456789012:key/other",
                    {**VIA_SSM, "kms:EncryptionContext:PARAMETER_ARN": SECRETS["tokens/worker"]}) != "allow"


def test_only_managers_encrypt_and_only_the_tokens() -> None:
    def encrypts(role: str, name: str) -> str:
        return decision(policy(role), "kms:Encrypt", KEY, {**VIA_SSM, "kms:EncryptionContext:PARAMETER_ARN": name})

    assert encrypts("manager", SECRETS["tokens/manager"]) == encrypts("manager", SECRETS["tokens/worker"]) == "allow"
    assert encrypts("manager", SECRETS["tls/server-key"]) == "implicit deny"  # the stack writes TLS, not the nodes
    assert encrypts("worker", SECRETS["tokens/worker"]) == "implicit deny"
    granted = {a for role in ("manager", "worker") for s in policy(role)["Statement"] if s["Effect"] == "Allow"
               for a in as_list(s["Action"])}
    assert "kms:GenerateDataKey" not in granted  # advanced parameters only; the tokens are standard


def test_the_worker_denies_itself_what_a_broader_policy_might_grant() -> None:
    """The second wall: with an `Allow *` beside it, the worker document still refuses."""
    wide = {"Statement": [*policy("worker")["Statement"], {"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    for secret in ("tokens/manager", "tls/server-key"):
        assert decision(wide, "ssm:GetParameter", SECRETS[secret]) == "deny"
        assert decision(wide, "kms:Decrypt", KEY, {**VIA_SSM, "kms:EncryptionContext:PARAMETER_ARN": SECRETS[secret]}) \
            == "deny"
    for action in ("ssm:PutParameter", "ssm:DeleteParameter", "ssm:GetParametersByPath", "ssm:GetParameterHistory"):
        assert decision(wide, action, f"{TREE}/{GEN}/init") == "deny"
        assert decision(wide, action, TREE) == "deny"
    assert decision(wide, "ssm:GetParameter", f"{TREE}/0badcafe/tokens/manager") == "deny"  # any generation
    assert decision(wide, "ssm:GetParameter", SECRETS["tokens/worker"]) == "allow"


def test_worker_policy_reads_only_what_joining_needs() -> None:
    document = policy("worker")
    reads = [s for s in document["Statement"] if s["Effect"] == "Allow" and "ssm:GetParameter" in as_list(s["Action"])]
    assert len(reads) == 1
    assert set(reads[0]["Action"]) == {"ssm:GetParameter", "ssm:GetParameters"}
    assert reads[0]["Resource"] == [f"{TREE}/{GEN}/{n}" for n in WORKER_READS]
    allows = [s for s in document["Statement"] if s["Effect"] == "Allow"]
    resources = json.dumps([s["Resource"] for s in allows])
    assert "tokens/manager" not in resources and "/tls/" not in resources
    assert "kms:Encrypt" not in {a for s in allows for a in as_list(s["Action"])}


def test_manager_policy_owns_its_generation_and_reads_the_tls_parameters() -> None:
    document = policy("manager")
    parameters = {s["Sid"]: s for s in document["Statement"] if "ssm:GetParameter" in as_list(s["Action"])}
    assert {sid: s["Resource"] for sid, s in parameters.items()} == {
        "SwarmState": f"{TREE}/{GEN}/*", "DockerApiTls": f"{TREE}/tls/*"}
    assert parameters["SwarmState"]["Action"] == ["ssm:GetParameter", "ssm:GetParameters", "ssm:PutParameter"]
    assert not any(s["Effect"] == "Deny" for s in document["Statement"])


@pytest.mark.parametrize("role", ["manager", "worker"])
def test_star_resources_only_for_actions_aws_cannot_scope(role: str) -> None:
    for statement in policy(role)["Statement"]:
        actions = as_list(statement["Action"])
        if statement["Effect"] == "Allow":
            assert not any("*" in a for a in actions)
        if statement["Resource"] == "*":
            assert statement["Effect"] == "Allow" and set(actions) <= set(UNSCOPABLE_ACTIONS)


@pytest.mark.parametrize("role", ["manager", "worker"])
def test_session_manager_and_the_prune_are_scoped_to_instances_and_the_one_document(role: str) -> None:
    document = policy(role)
    instance = "arn:aws:ec2:eu-west-1:123456789012:instance/i-0123456789abcdef0"
    for action in ("ssm:UpdateInstanceInformation", "ssm:ListInstanceAssociations", "ssm:PutComplianceItems"):
        assert decision(document, action, instance) == "allow"
        assert decision(document, action, "arn:aws:ec2:us-east-1:123456789012:instance/i-1") == "implicit deny"
    run_shell = "arn:aws:ssm:eu-west-1::document/AWS-RunShellScript"
    for action in ("ssm:GetDocument", "ssm:DescribeDocument", "ssm:DescribeAssociation", "ssm:UpdateAssociationStatus"):
        assert decision(document, action, run_shell) == "allow"
        assert decision(document, action, "arn:aws:ssm:eu-west-1::document/AWS-RunPowerShellScript") \
            == "implicit deny"
    association = "arn:aws:ssm:eu-west-1:123456789012:association/0f1e2d3c"
    assert decision(document, "ssm:UpdateInstanceAssociationStatus", association) == "allow"
    for action in ("ssm:SendCommand", "ssm:StartSession", "iam:PassRole", "ssm:PutInventory", "ssm:ListAssociations"):
        assert decision(document, action, "*") != "allow", action
    channels = {a for s in document["Statement"] if s["Resource"] == "*" for a in as_list(s["Action"])}
    assert {a for a in channels if a.split(":")[0] in ("ssmmessages", "ec2messages")} == {
        "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel",
        "ssmmessages:OpenDataChannel", "ec2messages:AcknowledgeMessage", "ec2messages:DeleteMessage",
        "ec2messages:FailMessage", "ec2messages:GetEndpoint", "ec2messages:GetMessages", "ec2messages:SendReply"}


def _actions_in(script: str) -> set[str]:
    """IAM actions of every `aws <service> <command>` a node script makes, and of every
    `aws_call ANSWERS <service> <Operation>` it sends through `aws_api` (SSM, Logs)."""
    found = set()
    for service, command in re.findall(r"\baws(?:_call (?:'[^']*'|[A-Za-z|]+))? (ssm|ec2|autoscaling|logs|kms|s3) "
                                       r"([a-zA-Z][a-zA-Z-]+)", script):
        found.add(f"{service}:" + (command if command[0].isupper() else
                                   "".join(part.title() for part in command.split("-"))))
    return found


MANAGER_ONLY_CALLS = {"ssm:PutParameter"}
"""Steps of the (shared) node script only a manager takes: elect, store tokens, register."""


@pytest.mark.parametrize("role", ["manager", "worker"])
def test_each_role_allows_every_call_its_nodes_make(role: str) -> None:
    """The node script (from `userdata/`) and the prune script call only what the role
    grants; a new call in either fails here before it fails on a node. Workers run the
    same script and skip the manager-only steps."""
    import inspect

    from swarmstack.config.load import load_stack
    from userdata import params_for, render

    settings = load_stack("prod-aws")
    pool = "managers" if role == "manager" else "general"
    args: list[Any] = [settings.cluster, settings.region, role, pool, GEN]
    if "key_arn" in inspect.signature(params_for).parameters:  # the node script's rewrite takes the key
        args.append(KEY)
    scripts = [render(params_for(*args)), prune_script("24h", True, "/swarmstack/prod/prune", "eu-west-1")]
    used = set().union(*(_actions_in(s) for s in scripts))
    assert {"ssm:GetParameter", "autoscaling:CompleteLifecycleAction", "logs:PutLogEvents"} <= used
    if role == "worker":
        used -= MANAGER_ONLY_CALLS
    granted = {a for s in policy(role)["Statement"] if s["Effect"] == "Allow" for a in as_list(s["Action"])}
    granted |= {"autoscaling:CompleteLifecycleAction", "autoscaling:RecordLifecycleActionHeartbeat",
                "autoscaling:SetInstanceHealth"}  # nodes.py, on the group's own ARN
    assert used <= granted, sorted(used - granted)


def test_no_glob_in_an_allowed_action() -> None:
    for role in ("manager", "worker"):
        for statement in policy(role)["Statement"]:
            if statement["Effect"] == "Allow":
                assert not [a for a in as_list(statement["Action"]) if fnmatch.fnmatch(a, "*[*?]*")]
