"""The pack against the real program: every shipped stack passes every mandatory rule, and
unsafe stacks (configs the validator allows, user additions to the program, or the real
graph with one property broken) are caught by the rule meant for them."""

from __future__ import annotations

import base64
import contextlib
import copy
import gzip
import json
import os
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from examples import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shipped import graph_of, stack_config

from policies._userdata import decode_user_data
from swarmstack.config.load import read_stack_file
from swarmstack.engine.graph import Graph, Resource
from swarmstack.engine.run import ROOT, run_stack
from swarmstack.policy import Finding, evaluate

AZURE_BUILT = (ROOT / "components" / "azure" / "cluster.py").exists()
STACKS = [
    "dev-aws", "prod-aws",
    pytest.param("dev-azure", marks=pytest.mark.skipif(not AZURE_BUILT, reason="components/azure/cluster.py "
                                                       "does not exist yet: the Azure program can't run")),
    pytest.param("prod-azure", marks=pytest.mark.skipif(not AZURE_BUILT, reason="components/azure/cluster.py "
                                                        "does not exist yet: the Azure program can't run")),
]


def program(stack: str, **changes: Any) -> Graph:
    """The real program's graph for a shipped stack, with `changes` merged into its cluster config
    (built once per test run, shared with test_deploy_order; a copy of its own to each caller)."""
    config = stack_config(stack)
    _merge(config["swarmstack:cluster"], changes)
    return graph_of(stack, config)


_FINDINGS: dict[str, tuple[Finding, ...]] = {}


def findings_of(stack: str, *, preview: bool = False, **changes: Any) -> list[Finding]:
    """`evaluate(program(stack, **changes), preview=preview)`, worked out once per module run:
    the graph is the real program's, unchanged, and the findings are frozen values."""
    key = json.dumps([stack, preview, changes], sort_keys=True)
    if key not in _FINDINGS:
        _FINDINGS[key] = tuple(evaluate(program(stack, **changes), preview=preview))
    return list(_FINDINGS[key])


def _merge(target: dict[str, Any], changes: dict[str, Any]) -> None:
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


def mandatory(findings: list[Finding]) -> list[tuple[str, str, str]]:
    return [(f.rule, f.name, f.message) for f in findings if f.level == "mandatory"]


def rules_hit(findings: list[Finding]) -> set[str]:
    return {f.rule for f in findings if f.level == "mandatory"}


def mutate(graph: Graph, type_: str, name: str, change: Callable[[dict[str, Any]], None]) -> Resource:
    """Break one property of one real resource, in its inputs and its outputs alike."""
    resource = graph.one(type_, name)
    change(resource.inputs)
    change(resource.outputs)
    return resource


# --- the shipped stacks ------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_every_shipped_stack_passes_every_mandatory_rule(stack: str) -> None:
    assert mandatory(findings_of(stack)) == []


@pytest.mark.parametrize("stack", STACKS)
def test_every_shipped_stack_passes_in_preview_too(stack: str) -> None:
    findings = findings_of(stack, preview=True)
    assert mandatory(findings) == []
    update = set(findings_of(stack))
    assert all(f in update or f.message.startswith("can't run policy") for f in findings)


def test_the_rules_see_the_real_resources() -> None:
    """Guard against vacuous passes: the real graph has what the rules are about."""
    graph = program("prod-aws")
    kinds = {r.type for r in graph.resources}
    for kind in ("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "aws:ec2/launchTemplate:LaunchTemplate",
                 "aws:autoscaling/group:Group", "aws:cloudwatch/logGroup:LogGroup", "aws:ssm/association:Association",
                 "aws:iam/rolePolicy:RolePolicy", "aws:lb/loadBalancer:LoadBalancer", "swarmstack:aws:Cluster"):
        assert kind in kinds


# --- configs the validator allows and the policies refuse -----------------------------------------------


def test_production_with_a_single_manager_is_caught_on_aws() -> None:
    findings = findings_of("prod-aws", managers={"count": 1}, prune={"schedule": "0,30 * * * *"})
    assert ("single-manager-not-production", "prod",
            "a production stack runs a single manager: losing it stops all scheduling and joins; use 3 managers "
            "over 3 zones") in mandatory(findings)


def test_a_prune_every_half_hour_is_caught_on_aws() -> None:
    # every half hour is the most often State Manager runs an association (validate refuses more)
    findings = findings_of("prod-aws", managers={"count": 1}, prune={"schedule": "0,30 * * * *"})
    hits = [(f.type, f.message) for f in findings if f.rule == "prune-at-most-hourly"]
    assert ("swarmstack:aws:Cluster",
            "pruneSchedule '0,30 * * * *' runs 2 times an hour; prune at most hourly (daily is usual)") in hits
    assert any(kind == "aws:ssm/association:Association" and "runs the prune 2 times an hour" in message
               for kind, message in hits)


@pytest.mark.skipif(not AZURE_BUILT, reason="components/azure/cluster.py does not exist yet")
def test_production_with_a_single_manager_and_a_frequent_prune_is_caught_on_azure() -> None:
    findings = findings_of("prod-azure", managers={"count": 1}, prune={"schedule": "*/10 * * * *"})
    assert "single-manager-not-production" in rules_hit(findings)
    timers = [f for f in findings if f.rule == "prune-at-most-hourly"
              and f.type == "azure-native:compute:VirtualMachineScaleSet"]
    assert timers and all("runs 6 times an hour; at most hourly" in f.message for f in timers)


def test_pruning_volumes_passes_only_when_the_stack_opts_in() -> None:
    opted_in = program("prod-aws", prune={"volumes": True})
    assert "prune-volumes-opt-in" not in rules_hit(evaluate(opted_in))
    # the same commands in a stack that did not opt in
    graph = program("prod-aws")
    commands = opted_in.of_type("aws:ssm/association:Association")[0].inputs["parameters"]["commands"]
    association = graph.of_type("aws:ssm/association:Association")[0]
    mutate(graph, association.type, association.name, lambda p: p["parameters"].update(commands=commands))
    assert "prune-volumes-opt-in" in rules_hit(evaluate(graph))


def test_a_user_program_opening_the_plaintext_docker_api_is_caught(tmp_path: Path) -> None:
    (tmp_path / "__main__.py").write_text(textwrap.dedent(f"""
        import runpy
        import pulumi_aws as aws
        program = runpy.run_path({str(ROOT / "__main__.py")!r}, run_name="__main__")
        vpc_id = program["cluster"].exports["vpcId"]
        group = aws.ec2.SecurityGroup("debug", vpc_id=vpc_id, description="added by hand")
        aws.vpc.SecurityGroupIngressRule("debug-docker", security_group_id=group.id, ip_protocol="tcp",
                                         from_port=2375, to_port=2376, cidr_ipv4="0.0.0.0/0")
    """))
    _, config = read_stack_file("dev-aws", ROOT)
    graph = run_stack("dev-aws", config, tmp_path)
    found = {(f.rule, f.name) for f in evaluate(graph) if f.level == "mandatory"}
    assert found == {("no-plaintext-docker-api", "debug-docker"), ("docker-tls-api-not-public", "debug-docker"),
                     ("docker-tls-api-only-when-enabled", "debug-docker")}


# --- the real graph with one property broken -------------------------------------------------------------


def _manager_template(graph: Graph) -> Resource:
    return next(r for r in graph.of_type("aws:ec2/launchTemplate:LaunchTemplate") if "managers" in r.name)


def _recode(change: Callable[[str], str]) -> Callable[[dict[str, Any]], None]:
    """Edit base64 (possibly gzipped) user data, and store it back gzipped as the program does."""
    def apply(props: dict[str, Any]) -> None:
        text = decode_user_data(props["userData"])
        assert text is not None and text.startswith("#cloud-config")
        props["userData"] = base64.b64encode(gzip.compress(change(text).encode())).decode()
    return apply


AWS_BREAKS: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    ("imdsv2-required", lambda p: p["metadataOptions"].update(httpTokens="optional")),
    ("imdsv2-required", lambda p: p["metadataOptions"].update(httpPutResponseHopLimit=3.0)),
    ("disks-encrypted", lambda p: p["blockDeviceMappings"][0]["ebs"].update(encrypted="false")),
    ("user-data-no-secrets", _recode(lambda t: t + "\n# docker swarm join --token SWMTKN-1-abc123def456\n")),
    ("user-data-no-secrets", _recode(lambda t: t + "\n# -----BEGIN EC PRIVATE KEY-----\n")),
    ("user-data-no-secrets", _recode(lambda t: t + "\n# AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n")),
    ("managers-on-demand", lambda p: p.update(instanceMarketOptions={"marketType": "spot"})),
    # the node script sets the API's TLS at boot; a daemon.json that opens TCP without tlsverify is caught
    ("docker-api-tls-verify", _recode(lambda t: _once(t, '"no-new-privileges": true,',
                                                     '"hosts": ["tcp://0.0.0.0:2376"], "no-new-privileges": true,'))),
]


def _once(text: str, old: str, new: str) -> str:
    """`text` with `old` replaced, which must occur exactly once (a break that changes nothing proves nothing)."""
    assert text.count(old) == 1, old
    return text.replace(old, new)


@pytest.mark.parametrize(("rule", "change"), AWS_BREAKS)
def test_breaking_the_manager_launch_template_is_caught(rule: str, change: Callable[[dict[str, Any]], None]) -> None:
    graph = program("prod-aws")
    mutate(graph, "aws:ec2/launchTemplate:LaunchTemplate", _manager_template(graph).name, change)
    assert rule in rules_hit(evaluate(graph))


def _swarm_rule(graph: Graph) -> Resource:
    return next(r for r in graph.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
                if r.inputs.get("fromPort") == 2377.0)


def test_a_swarm_port_opened_to_a_range_is_caught() -> None:
    graph = program("prod-aws")
    rule = _swarm_rule(graph)

    def to_range(props: dict[str, Any]) -> None:
        props.pop("referencedSecurityGroupId", None)
        props["cidrIpv4"] = "10.20.0.0/16"

    mutate(graph, rule.type, rule.name, to_range)
    assert "swarm-ports-internal-only" in rules_hit(evaluate(graph))


def test_a_swarm_port_opened_to_the_load_balancer_group_is_caught() -> None:
    graph = program("prod-aws")
    balancer = graph.of_type("aws:lb/loadBalancer:LoadBalancer")[0]
    lb_groups = balancer.outputs.get("securityGroups") or []
    if not lb_groups:
        pytest.skip("the network load balancer has no security group to misuse")
    rule = _swarm_rule(graph)
    mutate(graph, rule.type, rule.name, lambda p: p.update(referencedSecurityGroupId=lb_groups[0]))
    assert "swarm-ports-from-nodes-only" in rules_hit(evaluate(graph))


def test_an_iam_wildcard_is_caught() -> None:
    graph = program("prod-aws")
    policy = next(r for r in graph.of_type("aws:iam/rolePolicy:RolePolicy") if "manager-policy" in r.name)

    def widen(props: dict[str, Any]) -> None:
        document = json.loads(props["policy"])
        document["Statement"][0]["Action"] = "ssm:*"
        props["policy"] = json.dumps(document)

    mutate(graph, policy.type, policy.name, widen)
    assert "iam-no-wildcards" in rules_hit(evaluate(graph))


def test_a_worker_role_holding_the_ssm_core_policy_without_its_denies_is_caught() -> None:
    """The roles as they were built before: the worker's own Allows plus
    AmazonSSMManagedInstanceCore, which reads every parameter."""
    from policy_testing import resource

    graph = program("prod-aws")
    worker = next(r for r in graph.of_type("aws:iam/role:Role") if "worker" in r.name)
    policy = next(r for r in graph.of_type("aws:iam/rolePolicy:RolePolicy") if r.name == "prod-worker-policy")

    def allows_only(props: dict[str, Any]) -> None:
        document = json.loads(props["policy"])
        document["Statement"] = [s for s in document["Statement"] if s["Effect"] == "Allow"]
        props["policy"] = json.dumps(document)

    mutate(graph, policy.type, policy.name, allows_only)
    core = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
    graph.resources.append(resource("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "prod-worker-ssm-core",
                                    {"role": worker.outputs["name"], "policyArn": core}, stack="prod-aws"))
    role = worker.outputs["name"]
    found = [m for m in mandatory(evaluate(graph)) if m[0] == "node-roles-least-privilege"]
    assert found == [
        ("node-roles-least-privilege", "prod-worker-role", f"worker role {role} can read the manager join token "
         "(parameter/swarmstack/prod/*/tokens/manager: ssm:GetParameter, ssm:GetParameters, through "
         "AmazonSSMManagedInstanceCore); a worker that reads it joins as a manager"),
        ("node-roles-least-privilege", "prod-worker-role", f"worker role {role} can read the Docker API server key "
         "(parameter/swarmstack/prod/tls/server-key: ssm:GetParameter, ssm:GetParameters, through "
         "AmazonSSMManagedInstanceCore); a worker that reads it can pose as the managers' Docker API")]


def test_a_log_group_without_retention_is_reported() -> None:
    graph = program("dev-aws")
    group = graph.of_type("aws:cloudwatch/logGroup:LogGroup")[0]
    mutate(graph, group.type, group.name, lambda p: p.pop("retentionInDays", None))
    assert any(f.rule == "log-retention-set" and f.level == "advisory" for f in evaluate(graph))


def test_deletion_protection_off_in_production_is_caught() -> None:
    graph = program("prod-aws")
    balancer = graph.of_type("aws:lb/loadBalancer:LoadBalancer")[0]
    mutate(graph, balancer.type, balancer.name, lambda p: p.update(enableDeletionProtection=False))
    assert "load-balancer-deletion-protection" in rules_hit(evaluate(graph))


@pytest.mark.skipif(not AZURE_BUILT, reason="components/azure/cluster.py does not exist yet")
def test_breaking_an_azure_scale_set_is_caught() -> None:
    breaks: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
        ("azure-password-auth-disabled", lambda p: p["virtualMachineProfile"]["osProfile"]["linuxConfiguration"]
         .update(disablePasswordAuthentication=False)),
        ("disks-encrypted", lambda p: p["virtualMachineProfile"]["securityProfile"].update(encryptionAtHost=False)),
        ("managers-on-demand", lambda p: p["virtualMachineProfile"].update(priority="Spot")),
    ]
    for rule, change in breaks:
        graph = program("prod-azure")
        mutate(graph, "azure-native:compute:VirtualMachineScaleSet", "prod-managers", change)
        assert rule in rules_hit(evaluate(graph)), rule


@pytest.mark.skipif(not AZURE_BUILT, reason="components/azure/cluster.py does not exist yet")
def test_an_azure_swarm_port_opened_to_the_internet_is_caught() -> None:
    graph = program("prod-azure")

    def open_up(props: dict[str, Any]) -> None:
        rule = next(r for r in props["securityRules"] if r.get("destinationPortRange") == "2377")
        rule.pop("sourceApplicationSecurityGroups", None)
        rule["sourceAddressPrefix"] = "Internet"

    mutate(graph, "azure-native:network:NetworkSecurityGroup", "prod-managers", open_up)
    assert "swarm-ports-internal-only" in rules_hit(evaluate(graph))


# --- parity with pulumi_policy's own analyzer ------------------------------------------------------------


def _analyzer_findings(graph: Graph, preview: bool) -> set[tuple[str, str, str, str]]:
    """Run the pack through pulumi_policy's gRPC servicer (without serving it), fed protobuf
    requests as the engine sends them: inputs to Analyze, outputs to AnalyzeStack."""
    from google.protobuf import json_format, struct_pb2
    from pulumi.runtime import proto
    from pulumi_policy import EnforcementLevel
    from pulumi_policy.policy import _PolicyAnalyzerServicer

    from policies.pack import PACK_NAME, PACK_VERSION, POLICIES
    from swarmstack.policy import _computed_values, _inputs, _outputs

    computed = _computed_values(graph.resources) if preview else None
    servicer = _PolicyAnalyzerServicer(PACK_NAME, PACK_VERSION, POLICIES, EnforcementLevel.ADVISORY)
    levels = {proto.MANDATORY: "mandatory", proto.ADVISORY: "advisory"}

    def struct(props: dict[str, Any]) -> struct_pb2.Struct:
        return json_format.ParseDict(props, struct_pb2.Struct())

    found = set()
    for resource in graph.resources:
        response = servicer.Analyze(proto.AnalyzeRequest(
            type=resource.type, properties=struct(_inputs(resource, computed)), urn=resource.urn, name=resource.name,
            options=proto.AnalyzerResourceOptions(parent=resource.parent)), None)
        for d in response.diagnostics:
            message = d.message.split("\n", 1)[1] if "\n" in d.message else d.message
            found.add((d.policyName, resource.urn, message, levels[d.enforcementLevel]))
    response = servicer.AnalyzeStack(proto.AnalyzeStackRequest(resources=[
        proto.AnalyzerResource(type=r.type, properties=struct(_outputs(r, computed)), urn=r.urn, name=r.name,
                               parent=r.parent, options=proto.AnalyzerResourceOptions(parent=r.parent))
        for r in graph.resources]), None)
    stack_urn = f"urn:pulumi:{graph.stack}::swarmstack::pulumi:pulumi:Stack::swarmstack-{graph.stack}"
    for d in response.diagnostics:
        message = d.message.split("\n", 1)[1] if "\n" in d.message else d.message
        found.add((d.policyName, d.urn or stack_urn, message, levels[d.enforcementLevel]))
    return found


def _broken_aws() -> Graph:
    graph = program("prod-aws", managers={"count": 1}, prune={"schedule": "0,30 * * * *"})
    mutate(graph, "aws:ec2/launchTemplate:LaunchTemplate", _manager_template(graph).name,
           lambda p: p["metadataOptions"].update(httpTokens="optional"))
    rule = _swarm_rule(graph)
    mutate(graph, rule.type, rule.name, lambda p: (p.pop("referencedSecurityGroupId"), p.update(cidrIpv4="0.0.0.0/0")))
    return graph


@pytest.mark.parametrize("preview", [False, True], ids=["update", "preview"])
@pytest.mark.parametrize("build", [_broken_aws, pytest.param(
    lambda: program("prod-azure"), marks=pytest.mark.skipif(not AZURE_BUILT, reason="no Azure program yet"))],
    ids=["prod-aws-broken", "prod-azure"])
def test_the_evaluator_agrees_with_the_policy_sdk_analyzer(build: Callable[[], Graph], preview: bool) -> None:
    graph = build()
    ours = {(f.rule, f.urn, f.message, f.level) for f in evaluate(graph, preview=preview)}
    assert ours == _analyzer_findings(graph, preview)
    if not preview and graph.stack == "prod-aws":
        assert {"imdsv2-required", "swarm-ports-internal-only", "single-manager-not-production",
                "prune-at-most-hourly"} <= {f[0] for f in ours if f[3] == "mandatory"}


def _broken_aws_findings(preview: bool) -> list[Finding]:
    return evaluate(_broken_aws(), preview=preview)


@pytest.mark.parametrize("find", [_broken_aws_findings, lambda preview: findings_of("dev-aws", preview=preview),
                                  pytest.param(lambda preview: findings_of(
                                      "prod-azure", preview=preview, managers={"count": 1},
                                      prune={"schedule": "*/10 * * * *"}),
                                      marks=pytest.mark.skipif(not AZURE_BUILT, reason="no Azure program yet"))],
                         ids=["prod-aws-broken", "dev-aws", "prod-azure-unsafe"])
def test_a_preview_never_invents_a_violation(find: Callable[[bool], list[Finding]]) -> None:
    """Unknown values make a rule say less in preview (or that it can't run), never more."""
    update = set(mandatory(find(False)))
    preview = set(mandatory(find(True)))
    assert preview <= update
    assert bool(preview) == bool(update), "an unsafe graph is caught in preview already"


def test_a_key_stored_as_plain_string_is_caught() -> None:
    graph = program("prod-aws")
    key = next(r for r in graph.of_type("aws:ssm/parameter:Parameter") if r.inputs.get("type") == "SecureString"
               and "PRIVATE KEY" in str(r.inputs.get("value")))
    mutate(graph, key.type, key.name, lambda p: p.update(type="String"))
    assert "ssm-secrets-secure-string" in rules_hit(evaluate(graph))


# --- robustness: odd shapes never crash a rule -------------------------------------------------------------

ODD = st.one_of(st.none(), st.just(""), st.just([]), st.just({}), st.just("x"), st.just(3.0), st.just(True),
                st.just("04da6b54-80e4-46f7-96ec-b56ff0331ba9"), st.just([None]), st.just({"a": None}))


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:3]):
            out += _paths(item, (*prefix, index))
    return out


def _set(target: Any, path: tuple[Any, ...], value: Any) -> None:
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value


@settings(max_examples=int(os.environ.get("POLICY_FUZZ_EXAMPLES", examples(6, 30))), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_no_rule_crashes_on_odd_property_values(data: st.DataObject) -> None:
    stacks = ["prod-aws", *(["prod-azure"] if AZURE_BUILT else [])]
    graph = program(data.draw(st.sampled_from(stacks)))
    for _ in range(5):
        resource = data.draw(st.sampled_from(graph.resources))
        paths = _paths(resource.inputs)
        if not paths:
            continue
        path = data.draw(st.sampled_from(paths))
        value = data.draw(ODD)
        _set(resource.inputs, path, copy.deepcopy(value))
        if path[0] in resource.outputs and resource.custom:
            with contextlib.suppress(KeyError, IndexError, TypeError):
                _set(resource.outputs, path, copy.deepcopy(value))
    for preview in (False, True):
        for finding in evaluate(graph, preview=preview):
            assert finding.level in ("mandatory", "advisory")


@pytest.mark.skipif(not AZURE_BUILT, reason="components/azure/cluster.py does not exist yet")
def test_pruning_volumes_on_azure_passes_only_when_the_stack_opts_in() -> None:
    opted_in = program("prod-azure", prune={"volumes": True})
    assert "prune-volumes-opt-in" not in rules_hit(evaluate(opted_in))
    custom_data = opted_in.one("azure-native:compute:VirtualMachineScaleSet", "prod-managers") \
        .inputs["virtualMachineProfile"]["osProfile"]["customData"]
    graph = program("prod-azure")
    mutate(graph, "azure-native:compute:VirtualMachineScaleSet", "prod-managers",
           lambda p: p["virtualMachineProfile"]["osProfile"].update(customData=custom_data))
    assert "prune-volumes-opt-in" in rules_hit(evaluate(graph))
