"""Deploy and destroy order as rules of the recorded dependency graph: every shipped
stack (and, in test_program_properties / test_azure_configs, generated configs) passes
them, and each rule catches the mistake it is there for."""

from __future__ import annotations

import copy
import re
import textwrap
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from shipped import STACKS, shipped_graph

from swarmstack.config.load import read_stack_file
from swarmstack.deploy_order import problems, seconds
from swarmstack.engine.graph import Graph, Invocation, Resource
from swarmstack.engine.run import backends_for, run_stack

ROOT = Path(__file__).resolve().parents[2]
shipped = shipped_graph  # built once per test run, shared with test_policies_stacks (shipped.py)


@pytest.mark.parametrize("stack", STACKS)
def test_every_shipped_stack_deploys_and_destroys_in_an_order_that_works(stack: str) -> None:
    assert problems(shipped(stack)) == []


def test_a_manager_group_waits_for_its_tls_parameters_policies_routes_and_logs() -> None:
    graph = shipped("prod-aws")
    (managers,) = [g for g in graph.of_type("aws:autoscaling/group:Group") if g.name == "prod-managers-asg"]
    before = {graph.by_urn(u).type for u in graph.dependencies_of(managers.urn)}
    assert {"aws:ssm/parameter:Parameter", "aws:iam/rolePolicy:RolePolicy", "aws:iam/instanceProfile:InstanceProfile",
            "aws:ec2/route:Route", "aws:ec2/routeTableAssociation:RouteTableAssociation",
            "aws:cloudwatch/logGroup:LogGroup"} <= before


def run_program(tmp_path: Path, body: str, config: dict[str, Any] | None = None) -> Graph:
    (tmp_path / "__main__.py").write_text(textwrap.dedent(body))
    return run_stack("test", config or {"aws:region": "eu-west-1"}, tmp_path)


GROUP = """
    import json, pulumi, pulumi_aws as aws
    vpc = aws.ec2.Vpc("vpc", cidr_block="10.0.0.0/16")
    subnet = aws.ec2.Subnet("subnet", vpc_id=vpc.id, cidr_block="10.0.1.0/24")
    igw = aws.ec2.InternetGateway("igw", vpc_id=vpc.id)
    table = aws.ec2.RouteTable("table", vpc_id=vpc.id)
    route = aws.ec2.Route("route", route_table_id=table.id, destination_cidr_block="0.0.0.0/0", gateway_id=igw.id)
    assoc = aws.ec2.RouteTableAssociation("assoc", subnet_id=subnet.id, route_table_id=table.id)
    role = aws.iam.Role("role", name="node", assume_role_policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "ec2.amazonaws.com"}}]}))
    policy = aws.iam.RolePolicy("policy", name="node", role=role.id, policy=json.dumps({"Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": "*"}]}))
    profile = aws.iam.InstanceProfile("profile", name="node", role=role.name)
    image = aws.ssm.get_parameter(name="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64")
    template = aws.ec2.LaunchTemplate("lt", name="lt", image_id=image.insecure_value, instance_type="t3.small",
                                      iam_instance_profile={"arn": profile.arn})
    DEPENDS = [profile, policy, route, assoc]
    group = aws.autoscaling.Group("asg", name="asg", min_size=1, max_size=1, vpc_zone_identifiers=[subnet.id],
        launch_template={"id": template.id, "version": "$Latest"},
        initial_lifecycle_hooks=[{"name": "swarmstack-drain", "lifecycle_transition":
                                  "autoscaling:EC2_INSTANCE_TERMINATING", "heartbeat_timeout": 900}],
        opts=pulumi.ResourceOptions(depends_on=DEPENDS, custom_timeouts=pulumi.CustomTimeouts(delete="20m")))
    """


def test_the_rules_hold_for_a_group_that_waits_for_what_its_nodes_need(tmp_path: Path) -> None:
    assert problems(run_program(tmp_path, GROUP)) == []


def test_a_group_that_does_not_wait_for_its_roles_inline_policy_is_caught(tmp_path: Path) -> None:
    found = problems(run_program(tmp_path, GROUP.replace("DEPENDS = [profile, policy,", "DEPENDS = [profile,")))
    assert found == ["Group 'asg' does not depend on RolePolicy 'policy' (an inline policy of the nodes' role): its "
                     "nodes may boot before it exists, and on destroy it may go before the nodes have drained"]


def test_a_group_that_does_not_wait_for_its_subnets_route_is_caught(tmp_path: Path) -> None:
    found = problems(run_program(tmp_path, GROUP.replace("policy, route, assoc]", "policy, assoc]")))
    assert found == ["Group 'asg' does not depend on Route 'route' (a route of a node subnet (the way out to install "
                     "packages)): its nodes may boot before it exists, and on destroy it may go before the nodes "
                     "have drained"]


def test_a_lifecycle_grant_on_the_groups_arn_is_caught(tmp_path: Path) -> None:
    body = GROUP + """
    aws.iam.RolePolicy("lifecycle", name="lifecycle", role=role.id, policy=pulumi.Output.json_dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["autoscaling:CompleteLifecycleAction"],
                                                 "Resource": group.arn}]}))
    """
    found = problems(run_program(tmp_path, body))
    assert "RolePolicy 'lifecycle' grants lifecycle actions and depends on Group 'asg': destroy deletes it before " \
           "the nodes have completed their drain hooks" in found


def test_a_delete_timeout_shorter_than_the_drain_is_caught(tmp_path: Path) -> None:
    found = problems(run_program(tmp_path, GROUP.replace(", custom_timeouts=pulumi.CustomTimeouts(delete=\"20m\")",
                                                         "")))
    assert found == ["Group 'asg' may take 1200 s to empty on destroy (drain heartbeat 900 s + 300 s to shut down) but "
                     "its delete timeout is 600 s (the provider's default)"]


@pytest.mark.parametrize(("text", "value"), [("20m", 1200), ("1h30m", 5400), ("90s", 90)])
def test_durations(text: str, value: int) -> None:
    assert seconds(text) == value


LONG_NAME = "a-cluster-name-of-28-chars-x"


@pytest.mark.parametrize("stack", ["prod-aws", "prod-azure"])
def test_the_longest_cluster_name_the_config_takes_builds_with_names_the_clouds_take(stack: str) -> None:
    assert len(LONG_NAME) == 28
    config = copy.deepcopy(read_stack_file(stack, ROOT)[1])
    config["swarmstack:cluster"]["name"] = LONG_NAME
    with ExitStack() as exits:  # the engine fails as the provider would on a name past its limit
        graph = run_stack(stack, config, ROOT, backends=backends_for(config, exits))
    assert problems(graph) == []
    for balancer in graph.of_type("aws:lb/loadBalancer:LoadBalancer") + graph.of_type("aws:lb/targetGroup:TargetGroup"):
        name = balancer.inputs["name"]
        assert len(name) <= 32 and re.fullmatch(r"[a-z0-9-]+-[0-9a-f]{6}", name), name  # shortened, hashed
    assert len({b.inputs["name"] for b in graph.of_type("aws:lb/targetGroup:TargetGroup")}) == \
        len(graph.of_type("aws:lb/targetGroup:TargetGroup"))


def test_a_re_created_azure_stack_gets_a_fresh_vault_and_storage_account_name() -> None:
    first = shipped("dev-azure")
    config = copy.deepcopy(read_stack_file("dev-azure", ROOT)[1])
    with ExitStack() as exits:  # destroyed and created again: the random suffix is drawn anew
        again = run_stack("dev-azure", config, ROOT, backends=backends_for(config, exits))
    for kind in ("azure-native:keyvault:Vault", "azure-native:storage:StorageAccount"):
        (old,), (new,) = first.of_type(kind), again.of_type(kind)
        assert old.outputs["name"] != new.outputs["name"], kind  # a soft-deleted vault never blocks the new one


def test_a_scale_set_waits_for_its_role_assignments_secrets_and_nat() -> None:
    graph = shipped("prod-azure")
    managers = graph.one("azure-native:compute:VirtualMachineScaleSet", "prod-managers")
    before = {graph.by_urn(u).type for u in graph.dependencies_of(managers.urn)}
    assert {"azure-native:authorization:RoleAssignment", "azure-native:keyvault:Secret",
            "azure-native:network:Subnet", "azure-native:network:NatGateway"} <= before


def azure_graph(scale_set_deps: list[str], secret_deps: list[str]) -> Graph:
    """A hand-made Azure graph: an identity with a grant on a secret, a deployer grant on
    the vault, a scale set using the identity."""
    def res(type_: str, name: str, inputs: dict[str, Any], outputs: dict[str, Any], deps: list[str]) -> Resource:
        return Resource(urn=f"urn:{name}", type=type_, name=name, parent="", custom=True, inputs=inputs,
                        outputs=outputs, id=outputs.get("id", ""), dependencies=deps)
    return Graph(stack="t", cloud="azure", resources=[
        res("azure-native:managedidentity:UserAssignedIdentity", "id", {}, {"id": "/id", "principalId": "p"}, []),
        res("azure-native:keyvault:Vault", "vault", {"vaultName": "kv"}, {"id": "/kv", "name": "kv"}, []),
        res("azure-native:authorization:RoleAssignment", "deployer",
            {"principalId": "d", "scope": "/kv", "roleDefinitionId": "/x/b86a8fe4-44ce-4948-aee5-eccb2c155cd7"},
            {"id": "/ra-d"}, []),
        res("azure-native:keyvault:Secret", "secret", {"vaultName": "kv"}, {"id": "/kv/secrets/s"}, secret_deps),
        res("azure-native:authorization:RoleAssignment", "grant", {"principalId": "p", "scope": "/kv/secrets/s"},
            {"id": "/ra"}, ["urn:secret"]),
        res("azure-native:compute:VirtualMachineScaleSet", "vmss",
            {"identity": {"userAssignedIdentities": ["/id"]}}, {"id": "/vmss"}, scale_set_deps),
    ], invokes=[Invocation("azure-native:authorization:getClientConfig", {}, {"objectId": "d"})])


def test_the_azure_rules_catch_a_scale_set_before_its_grants_and_a_secret_before_the_deployers_grant() -> None:
    assert problems(azure_graph(["urn:id", "urn:grant"], ["urn:deployer"])) == []
    assert problems(azure_graph(["urn:id"], [])) == [
        "VirtualMachineScaleSet 'vmss' does not depend on RoleAssignment 'grant' (a role assignment of the machines' "
        "identity): its machines may boot before it exists",
        "VirtualMachineScaleSet 'vmss' does not depend on Secret 'secret' (a Key Vault secret the machines read): its "
        "machines may boot before it exists",
        "Secret 'secret' does not depend on RoleAssignment 'deployer': on destroy the deployer's grant may go first "
        "and the secret can no longer be deleted"]


def test_pool_labels_past_ec2s_user_data_limit_are_named_as_the_cause() -> None:
    """The managers' user data carries every pool's labels (the leader puts them on the
    nodes the cloud says belong to each pool), and EC2 takes 16 KiB of it gzipped. Past
    that the program stopped with "user data is N bytes gzipped; EC2 allows 16384",
    naming neither the config key nor what to change; nothing was created either way."""
    config = copy.deepcopy(read_stack_file("prod-aws", ROOT)[1])
    config["swarmstack:cluster"]["workers"] = [
        {"name": f"pool-{i}", "count": 1,
         "labels": {f"team-{i}-{j}": f"{i * 7919 + j * 104729:x}{j}{i}value" for j in range(8)}}
        for i in range(12)]
    with ExitStack() as exits, pytest.raises(Exception) as caught:
        run_stack("prod-aws", config, ROOT, backends=backends_for(config, exits))
    message = str(caught.value)
    # as every config problem reads: the file, the key, the value, what is wrong and what would do
    assert message.startswith("stacks/Pulumi.prod-aws.yaml: swarmstack:cluster.workers[*].labels = "
                              "96 labels of 12 pools: "), message
    assert "EC2 allows 16384" in message and "use fewer or shorter labels, or fewer pools" in message, message
