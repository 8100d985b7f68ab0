"""The port matrix, and the AWS security group rules built from it. Pure."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from components.aws.firewall import ANYWHERE, AwsRule, aws_rules
from components.common.ports import (
    DOCKER_TLS_PORT,
    NEVER_OPEN,
    SSH_PORT,
    SWARM_MANAGEMENT_PORT,
    Exposure,
    ingress_matrix,
    service_targets,
    swarm_traffic,
)

ADMINS = ["198.51.100.0/24", "203.0.113.7/32"]
NODES = ("managers", "workers")

exposures = st.builds(
    Exposure,
    docker_api=st.booleans(),
    ssh=st.booleans(),
    published=st.lists(st.tuples(st.sampled_from([80, 443, 8080, 5353, 9000]), st.sampled_from(["tcp", "udp"])),
                       unique=True, max_size=4).map(tuple),
    has_workers=st.booleans(),
    load_balancer=st.booleans(),
)


def rules_for(exposure: Exposure) -> list[AwsRule]:
    return aws_rules(exposure, ADMINS, "__clients__")


def test_swarm_traffic_is_the_documented_set_between_node_groups() -> None:
    flows = {(f.target, f.source, f.protocol, f.port) for f in swarm_traffic()}
    expected = set()
    for target in NODES:
        for source in NODES:
            expected |= {(target, source, "tcp", 7946), (target, source, "udp", 7946),
                         (target, source, "udp", 4789), (target, source, "esp", None)}
            if target == "managers":
                expected.add((target, source, "tcp", SWARM_MANAGEMENT_PORT))
    assert flows == expected


@settings(deadline=None)
@given(exposures)
def test_the_plaintext_api_is_never_opened(exposure: Exposure) -> None:
    assert all(f.port != NEVER_OPEN for f in ingress_matrix(exposure))
    assert all(r.port != NEVER_OPEN for r in rules_for(exposure))


@settings(deadline=None)
@given(exposures)
def test_swarm_ports_come_from_node_groups_only(exposure: Exposure) -> None:
    for rule in rules_for(exposure):
        if rule.direction == "ingress" and (rule.port in (2377, 7946, 4789) or rule.protocol == "50"):
            assert rule.group in NODES and rule.peer_group in NODES and rule.cidr is None


@settings(deadline=None)
@given(exposures)
def test_the_tls_api_only_when_on_and_only_from_admins_or_their_load_balancer(exposure: Exposure) -> None:
    api = [r for r in rules_for(exposure) if r.direction == "ingress" and r.port == DOCKER_TLS_PORT]
    if not exposure.docker_api:
        assert api == []
        return
    for rule in api:
        assert rule.group in ("managers", "lb")
        assert rule.cidr in ADMINS or (rule.group == "managers" and rule.peer_group == "lb")
    assert {r.cidr for r in api if r.group == "managers" and r.cidr} == set(ADMINS)
    if exposure.load_balancer:
        assert {r.cidr for r in api if r.group == "lb"} == set(ADMINS)


@settings(deadline=None)
@given(exposures)
def test_ssh_only_with_a_key_and_only_from_admins(exposure: Exposure) -> None:
    ssh = [r for r in rules_for(exposure) if r.port == SSH_PORT]
    assert bool(ssh) is exposure.ssh
    assert all(r.cidr in ADMINS and r.group in NODES for r in ssh)


@settings(deadline=None)
@given(exposures)
def test_published_ports_reach_nodes_through_the_load_balancer_only(exposure: Exposure) -> None:
    rules = rules_for(exposure)
    targets = service_targets(exposure)
    for port, protocol in exposure.published:
        on_lb = [r for r in rules if r.group == "lb" and r.direction == "ingress" and r.port == port
                 and r.protocol == protocol]
        on_nodes = [r for r in rules if r.group in NODES and r.direction == "ingress" and r.port == port
                    and r.protocol == protocol]
        if not exposure.load_balancer:
            assert on_lb == on_nodes == []
            continue
        assert [r.cidr for r in on_lb] == ["__clients__"]
        assert sorted((r.group, r.peer_group) for r in on_nodes) == sorted((t, "lb") for t in targets)
        egress = [r for r in rules if r.group == "lb" and r.direction == "egress" and r.port == port]
        assert {r.peer_group for r in egress} == set(targets)


@settings(deadline=None)
@given(exposures)
def test_rule_keys_are_unique_and_nodes_may_send_anywhere(exposure: Exposure) -> None:
    rules = rules_for(exposure)
    keys = [r.key for r in rules]
    assert len(keys) == len(set(keys))
    out = [r for r in rules if r.direction == "egress" and r.group in NODES]
    assert {(r.group, r.protocol, r.cidr) for r in out} == {(g, "-1", ANYWHERE) for g in NODES}
    # the load balancer sends only to node groups, never to an address range
    assert all(r.peer_group in NODES for r in rules if r.direction == "egress" and r.group == "lb")


def test_without_workers_the_managers_serve_published_ports() -> None:
    exposure = Exposure(docker_api=False, ssh=False, published=((80, "tcp"),), has_workers=False, load_balancer=True)
    assert service_targets(exposure) == ("managers",)
    node_rules = [r for r in rules_for(exposure) if r.port == 80 and r.group in NODES]
    assert [(r.group, r.peer_group) for r in node_rules] == [("managers", "lb")]


@settings(deadline=None)
@given(exposures)
def test_without_workers_nothing_flows_to_or_from_their_group(exposure: Exposure) -> None:
    if exposure.has_workers:
        return
    assert not any("workers" in (r.group, r.peer_group) for r in rules_for(exposure) if r.direction == "ingress")


def test_esp_is_ip_protocol_50_without_ports() -> None:
    exposure = Exposure(docker_api=False, ssh=False, published=(), has_workers=True, load_balancer=False)
    esp = [r for r in rules_for(exposure) if r.protocol == "50"]
    assert len(esp) == 4 and all(r.port is None for r in esp)
