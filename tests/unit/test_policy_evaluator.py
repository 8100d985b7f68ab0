"""The offline evaluator: what it hands the rules (as the engine would), config, preview
unknowns, levels, and the table."""

from __future__ import annotations

from typing import Any

import pytest
from policy_testing import b64, graph, resource, summary
from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ResourceValidationPolicy,
    StackValidationPolicy,
)

from policies import firewall, nodes
from policies import summary as summary_rules
from swarmstack.policy import Finding, PolicyConfigError, evaluate, format_findings

INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
OPEN_2375 = {"securityGroupId": "sg-0a", "ipProtocol": "tcp", "fromPort": 2375.0, "toPort": 2375.0,
             "cidrIpv4": "0.0.0.0/0"}


def test_a_finding_names_the_rule_the_resource_and_the_level() -> None:
    rule = resource(INGRESS, "oops", OPEN_2375)
    found = evaluate(graph(rule), policies=[firewall.no_plaintext_docker_api])
    assert found == [Finding(
        rule="no-plaintext-docker-api", level="mandatory",
        message="ingress allows 2375/tcp from 0.0.0.0/0, which opens the plaintext Docker API (2375/tcp)",
        urn=rule.urn, name="oops", type=INGRESS)]
    assert found[0].as_dict()["rule"] == "no-plaintext-docker-api"


def test_resource_rules_get_inputs_and_stack_rules_get_outputs() -> None:
    seen: dict[str, Any] = {}

    def on_resource(args: Any, report: Any) -> None:
        seen.setdefault("resource", []).append((args.resource_type, args.name, dict(args.props), args.opts.parent))

    def on_stack(args: Any, report: Any) -> None:
        seen["stack"] = [(r.resource_type, dict(r.props), r.parent.urn if r.parent else None) for r in args.resources]

    parent = summary()
    child = resource(INGRESS, "r", {"fromPort": 22.0}, {"securityGroupRuleId": "sgr-1"}, parent=parent.urn)
    evaluate(graph(parent, child), policies=[
        ResourceValidationPolicy(name="spy-resource", description="spy", validate=on_resource),
        StackValidationPolicy(name="spy-stack", description="spy", validate=on_stack)])
    assert seen["resource"][1] == (INGRESS, "r", {"fromPort": 22.0}, parent.urn)
    assert seen["resource"][0][0] == "swarmstack:aws:Cluster"  # components are analysed too, with their inputs
    assert seen["resource"][0][2]["managerCount"] == 3.0
    stack_child = seen["stack"][1]
    assert stack_child[1] == {"fromPort": 22.0, "securityGroupRuleId": "sgr-1", "id": child.id}
    assert stack_child[2] == parent.urn


def test_config_disables_a_rule_or_changes_its_level() -> None:
    g = graph(resource(INGRESS, "oops", OPEN_2375))
    rules = [firewall.no_plaintext_docker_api]
    assert evaluate(g, {"no-plaintext-docker-api": "disabled"}, policies=rules) == []
    assert [f.level for f in evaluate(g, {"no-plaintext-docker-api": {"enforcementLevel": "advisory"}},
                                      policies=rules)] == ["advisory"]
    assert [f.level for f in evaluate(g, {"all": "advisory"}, policies=rules)] == ["advisory"]
    assert [f.level for f in evaluate(g, {"all": "advisory", "no-plaintext-docker-api": "mandatory"},
                                      policies=rules)] == ["mandatory"]
    assert [f.level for f in evaluate(g, {"no-plaintext-docker-api": "remediate"}, policies=rules)] == ["mandatory"]


def test_bad_config_is_refused_with_every_problem() -> None:
    with pytest.raises(PolicyConfigError) as err:
        evaluate(graph(), {"no-such-rule": "advisory", "imdsv2-required": {"maxHopLimit": 99},
                           "disks-encrypted": {"colour": "blue"}, "log-retention-set": "loud"})
    text = str(err.value)
    assert "no-such-rule: no such rule in the pack" in text
    assert "imdsv2-required.maxHopLimit: 99 is greater than the maximum of 64" in text
    assert "disks-encrypted: takes no settings, got colour" in text
    assert "log-retention-set: 'loud' is not one of advisory, mandatory, remediate, disabled" in text


def test_schema_defaults_reach_the_rule() -> None:
    seen = {}

    def spy(args: Any, report: Any) -> None:
        seen.update(args.get_config())

    policy = ResourceValidationPolicy(name="spy", description="spy", validate=spy, config_schema=PolicyConfigSchema(
        properties={"limit": {"type": "integer", "default": 2}, "names": {"type": "array", "default": []}}))
    evaluate(graph(resource(INGRESS, "r", {})), {"spy": {"names": ["a"]}}, policies=[policy])
    assert seen == {"limit": 2, "names": ["a"]}


def test_the_defaults_of_a_rule_from_outside_the_pack_are_validated_too() -> None:
    """The pack's own defaults are held valid by test_policy_pack; a rule handed to `evaluate`
    from elsewhere is validated with its defaults, settings given or not."""
    policy = ResourceValidationPolicy(name="odd-default", description="odd.", validate=lambda args, report: None,
                                      config_schema=PolicyConfigSchema(
                                          properties={"n": {"type": "integer", "default": "two"}}))
    with pytest.raises(PolicyConfigError, match=r"odd-default.n: 'two' is not of type 'integer'"):
        evaluate(graph(resource(INGRESS, "r", {})), {}, policies=[policy])


def test_preview_makes_ids_and_strings_built_from_them_unknown() -> None:
    seen: list[Any] = []

    def spy(args: Any, report: Any) -> None:
        if args.name == "r":
            seen.append(args.props["__target"])

    group = resource("aws:ec2/securityGroup:SecurityGroup", "g", {"vpcId": "vpc-0123456789"},
                     {"arn": "arn:aws:ec2:eu-west-1:123456789012:security-group/sg-0123"})
    rule = resource(INGRESS, "r", {"securityGroupId": group.id, "description": f"for {group.id}",
                                   "fromPort": 22.0, "cidrIpv4": "203.0.113.0/24"})
    evaluate(graph(group, rule), preview=True,
             policies=[ResourceValidationPolicy(name="spy", description="spy", validate=spy)])
    unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
    assert seen == [{"securityGroupId": unknown, "description": unknown, "fromPort": 22.0,
                     "cidrIpv4": "203.0.113.0/24"}]


def test_a_rule_that_needs_an_unknown_value_cannot_run_in_preview() -> None:
    template = resource("aws:ec2/launchTemplate:LaunchTemplate", "lt", {"metadataOptions": {"httpTokens": "required"}})
    role = resource("aws:iam/role:Role", "role", {"assumeRolePolicy": "{}"},
                    {"arn": "arn:aws:iam::123456789012:role/prod-managers-abc"})
    # the template's hop limit comes from an output of another resource (contrived, but it's the mechanism)
    template.inputs["metadataOptions"]["httpPutResponseHopLimit"] = role.outputs["arn"]
    found = evaluate(graph(role, template), preview=True, policies=[nodes.imdsv2_required])
    assert [(f.rule, f.level, f.message, f.name) for f in found] == [(
        "imdsv2-required", "advisory",
        "can't run policy 'imdsv2-required' from policy pack 'swarmstack@v0.1.0' during preview: string value at "
        ".metadataOptions.httpPutResponseHopLimit can't be known during preview", "lt")]


def test_a_stack_rule_without_a_resource_reports_on_the_stack() -> None:
    def complain(args: Any, report: Any) -> None:
        report("the stack as a whole")

    found = evaluate(graph(stack="prod-aws"), policies=[
        StackValidationPolicy(name="whole", description="whole", validate=complain,
                              enforcement_level=EnforcementLevel.MANDATORY)])
    assert found == [Finding("whole", "mandatory", "the stack as a whole",
                             "urn:pulumi:prod-aws::swarmstack::pulumi:pulumi:Stack::swarmstack-prod-aws",
                             "prod-aws", "pulumi:pulumi:Stack")]


def test_not_applicable_is_silent() -> None:
    assert evaluate(graph(), policies=[summary_rules.cluster_summary_visible]) == []
    assert evaluate(graph(summary(production=False)), policies=[summary_rules.cluster_summary_visible]) == []


def test_the_cluster_summary_must_be_in_the_outputs() -> None:
    cluster = resource("swarmstack:aws:Cluster", "prod", {"production": True}, {"vpcId": "vpc-1"}, custom=False)
    found = evaluate(graph(cluster), policies=[summary_rules.cluster_summary_visible])
    assert [(f.level, f.message) for f in found] == [(
        "advisory", "prod: the Cluster's outputs lack cloud, clusterName, production, managerCount, zones, dockerApi, "
        "pruneVolumes, pruneSchedule, logKms, so the stack rules that depend on them (production, managers, logKms, "
        "prune volumes, Docker API) cannot judge this stack; the component must register its summary as outputs too")]


def test_mandatory_findings_come_first() -> None:
    g = graph(resource(INGRESS, "oops", OPEN_2375))
    found = evaluate(g, {"no-plaintext-docker-api": "advisory"},
                     policies=[firewall.no_plaintext_docker_api, firewall.no_all_ports_to_world,
                               firewall.docker_tls_api_not_public, firewall.ssh_rdp_not_public,
                               ResourceValidationPolicy(name="always", description="d",
                                                        enforcement_level=EnforcementLevel.MANDATORY,
                                                        validate=lambda a, r: r("x"))])
    assert [f.level for f in found] == ["mandatory", "advisory"]


def test_format_findings() -> None:
    assert format_findings([]) == "Policies: no findings."
    rule = resource(INGRESS, "oops", OPEN_2375)
    table = format_findings(evaluate(graph(rule), policies=[firewall.no_plaintext_docker_api]))
    lines = table.splitlines()
    assert lines[0].split() == ["RULE", "RESOURCE", "MESSAGE", "LEVEL"]
    assert lines[2].startswith("no-plaintext-docker-api  vpc.SecurityGroupIngressRule oops  ingress allows 2375/tcp")
    assert lines[2].rstrip().endswith("mandatory")
    assert lines[-1] == "Policies: 1 mandatory, 0 advisory — the update would be blocked."
    assert all(len(line) <= 120 for line in lines)


def test_preview_sees_through_base64_user_data_and_keeps_ids_that_are_inputs() -> None:
    seen: dict[str, Any] = {}

    def spy(args: Any, report: Any) -> None:
        seen[args.name] = args.props["__target"]

    key = resource("aws:kms/key:Key", "key", {"description": "logs"},
                   {"arn": "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab"})
    logs = resource("aws:cloudwatch/logGroup:LogGroup", "logs", {"name": "/swarmstack/prod/containers"},
                    {"arn": "arn:aws:logs:eu-west-1:123456789012:log-group:/swarmstack/prod/containers"})
    logs.id = logs.outputs["id"] = "/swarmstack/prod/containers"  # CloudWatch: the id is the name
    script = "#!/bin/bash\n" + "# padding so it is long enough to be user data\n" * 2
    uses_key = resource("aws:ec2/launchTemplate:LaunchTemplate", "with-key",
                        {"userData": b64(script + f"KEY={key.outputs['arn']}\n")})
    uses_name = resource("aws:ec2/launchTemplate:LaunchTemplate", "with-name",
                         {"userData": b64(script + "GROUP=/swarmstack/prod/containers\n")})
    evaluate(graph(key, logs, uses_key, uses_name), preview=True,
             policies=[ResourceValidationPolicy(name="spy", description="spy", validate=spy)])
    assert seen["with-key"]["userData"] == "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
    assert seen["with-name"]["userData"] == uses_name.inputs["userData"]
