"""Pure logic of the Azure cluster: NSG rules and priorities, the subnet plan, names,
load balancer rules, disks and drain windows. Plain cases and properties."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from components.azure.firewall import LAST_PRIORITY, assign_priorities, node_rules
from components.azure.load_balancer import lb_rules
from components.azure.network import subnet_plan
from components.azure.nodes import os_disk_type, terminate_notice
from components.azure.observability import quorum_query
from components.azure.store import KEY_VAULT_NAME, STORAGE_ACCOUNT_NAME, key_vault_name, storage_account_name
from components.common.managers import quorum
from components.common.ports import Exposure

ADMINS = ("203.0.113.0/24",)
FULL = Exposure(docker_api=True, ssh=True, published=((80, "tcp"), (443, "tcp"), (5353, "udp")),
                has_workers=True, load_balancer=True)


def by_port(rules):  # type: ignore[no-untyped-def]
    out: dict[tuple[str, int | None], list] = {}
    for rule in rules:
        if rule.access == "Allow":
            out.setdefault((rule.protocol, rule.port), []).append(rule.source)
    return out


# ---------------------------------------------------------------- NSG rules

def test_managers_get_swarm_management_from_both_node_groups_only() -> None:
    rules = by_port(node_rules("managers", FULL, ADMINS, lb_public=True))
    assert [(s.kind, s.values) for s in rules[("Tcp", 2377)]] == [("asg", ("managers", "workers"))]


def test_workers_never_get_swarm_management() -> None:
    assert ("Tcp", 2377) not in by_port(node_rules("workers", FULL, ADMINS, lb_public=True))


@pytest.mark.parametrize("role", ["managers", "workers"])
def test_gossip_vxlan_and_esp_come_from_the_node_groups_only(role: str) -> None:
    rules = by_port(node_rules(role, FULL, ADMINS, lb_public=True))  # type: ignore[arg-type]
    for key in (("Tcp", 7946), ("Udp", 7946), ("Udp", 4789), ("Esp", None)):
        assert [(s.kind, s.values) for s in rules[key]] == [("asg", ("managers", "workers"))], key


def test_docker_api_from_admins_and_the_balancer_probe_only_on_managers() -> None:
    managers = by_port(node_rules("managers", FULL, ADMINS, lb_public=True))
    assert sorted((s.kind, s.values) for s in managers[("Tcp", 2376)]) == [
        ("cidrs", ADMINS), ("tag", ("AzureLoadBalancer",))]
    assert ("Tcp", 2376) not in by_port(node_rules("workers", FULL, ADMINS, lb_public=True))


def test_ssh_only_from_admins_and_only_when_there_is_a_key() -> None:
    assert [(s.kind, s.values) for s in by_port(node_rules("workers", FULL, ADMINS, True))[("Tcp", 22)]] == [
        ("cidrs", ADMINS)]
    no_ssh = Exposure(**{**FULL.__dict__, "ssh": False})
    assert ("Tcp", 22) not in by_port(node_rules("workers", no_ssh, ADMINS, True))


def test_published_ports_reach_workers_from_clients_and_probes() -> None:
    rules = by_port(node_rules("workers", FULL, ADMINS, lb_public=True))
    for key in (("Tcp", 80), ("Tcp", 443), ("Udp", 5353)):
        assert sorted(s.values[0] for s in rules[key]) == ["AzureLoadBalancer", "Internet"]
    internal = by_port(node_rules("workers", FULL, ADMINS, lb_public=False))
    assert sorted(s.values[0] for s in internal[("Tcp", 80)]) == ["AzureLoadBalancer", "VirtualNetwork"]


def test_published_ports_go_to_managers_when_there_are_no_workers() -> None:
    alone = Exposure(**{**FULL.__dict__, "has_workers": False})
    assert ("Tcp", 80) in by_port(node_rules("managers", alone, ADMINS, True))
    assert ("Tcp", 80) not in by_port(node_rules("managers", FULL, ADMINS, True))


@pytest.mark.parametrize("role", ["managers", "workers"])
def test_2375_is_denied_first_and_everything_else_last(role: str) -> None:
    rules = node_rules(role, FULL, ADMINS, lb_public=True)  # type: ignore[arg-type]
    assert (rules[0].access, rules[0].port, rules[0].priority) == ("Deny", 2375, 100)
    assert (rules[-1].access, rules[-1].port, rules[-1].protocol, rules[-1].priority) == ("Deny", None, "*", 4096)
    assert not any(r.access == "Allow" and r.port == 2375 for r in rules)


@given(docker_api=st.booleans(), ssh=st.booleans(), has_workers=st.booleans(), lb=st.booleans(),
       ports=st.lists(st.tuples(st.integers(1, 65535).filter(lambda p: p not in (22, 2375, 2376, 2377, 4789, 7946)),
                                st.sampled_from(["tcp", "udp"])), unique=True, max_size=60),
       public=st.booleans(), role=st.sampled_from(["managers", "workers"]))
def test_rules_have_unique_names_and_priorities_in_range(docker_api: bool, ssh: bool, has_workers: bool,
                                                        lb: bool, ports: list, public: bool, role: str) -> None:
    exposure = Exposure(docker_api, ssh, tuple(ports), has_workers, lb)
    rules = node_rules(role, exposure, ADMINS, public)  # type: ignore[arg-type]
    priorities = [r.priority for r in rules]
    assert len(set(priorities)) == len(priorities)
    assert all(100 <= p <= 4096 for p in priorities)
    assert priorities == sorted(priorities)
    assert len({r.name for r in rules}) == len(rules)
    assert not any(r.access == "Allow" and r.port == 2375 for r in rules)


@given(st.integers(0, LAST_PRIORITY - 1 - 110 + 1))
def test_assign_priorities_fit_between_the_deny_rules(count: int) -> None:
    priorities = assign_priorities(count)
    assert len(priorities) == count == len(set(priorities))
    assert all(110 <= p <= LAST_PRIORITY - 1 for p in priorities)
    assert priorities == sorted(priorities)


def test_assign_priorities_spaces_by_ten_while_it_can_and_refuses_too_many() -> None:
    assert assign_priorities(3) == [110, 120, 130]
    assert assign_priorities(0) == []
    with pytest.raises(ValueError, match="do not fit"):
        assign_priorities(LAST_PRIORITY - 110 + 1)


# ---------------------------------------------------------------- subnets

def test_subnet_plan_gives_a_quarter_per_role() -> None:
    assert subnet_plan("10.50.0.0/16") == {"managers": "10.50.0.0/18", "workers": "10.50.64.0/18",
                                            "lb": "10.50.128.0/18"}


@given(st.integers(0, 2**24 - 1), st.integers(16, 26))
def test_subnet_plan_is_inside_and_disjoint(seed: int, prefix: int) -> None:
    cidr = ipaddress.IPv4Network((seed << 8, prefix), strict=False)
    plan = subnet_plan(str(cidr))
    nets = [ipaddress.IPv4Network(v) for v in plan.values()]
    assert all(n.subnet_of(cidr) for n in nets)
    assert all(not a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1:])
    assert all(n.prefixlen <= 29 for n in nets)  # Azure's smallest subnet


# ---------------------------------------------------------------- names

@given(cluster=st.from_regex(r"[a-z][a-z0-9-]{1,27}", fullmatch=True),
       suffix=st.from_regex(r"[a-z0-9]{4,8}", fullmatch=True))
def test_global_names_are_always_valid(cluster: str, suffix: str) -> None:
    assert KEY_VAULT_NAME.match(key_vault_name(cluster, suffix))
    assert STORAGE_ACCOUNT_NAME.match(storage_account_name(cluster, suffix))
    assert key_vault_name(cluster, suffix).endswith(suffix)


def test_names_keep_the_cluster_recognisable() -> None:
    assert key_vault_name("prod", "abc123") == "prod-abc123"
    assert storage_account_name("my-prod", "abc123") == "myprodabc123"
    assert key_vault_name("a--very-long-cluster-name-x", "abc123") == "a-very-long-clust-abc123"


# ---------------------------------------------------------------- balancer, disks, drain, quorum

def test_lb_rules_probe_each_port_and_send_the_api_to_managers() -> None:
    rules = lb_rules(((80, "tcp"), (53, "udp")), docker_api=True, has_workers=True)
    assert [(r.name, r.pool, r.probe_port) for r in rules] == [
        ("tcp-80", "workers", 80), ("udp-53", "workers", 7946), ("tcp-2376-docker-api", "managers", 2376)]
    assert {r.pool for r in lb_rules(((80, "tcp"),), docker_api=False, has_workers=False)} == {"managers"}


def test_premium_disks_only_when_every_size_supports_them() -> None:
    assert os_disk_type(["Standard_D4s_v5", "Standard_D4as_v5"]) == "Premium_LRS"
    assert os_disk_type(["Standard_B2s"]) == "Premium_LRS"
    assert os_disk_type(["Standard_D4_v5"]) == "StandardSSD_LRS"
    assert os_disk_type(["Standard_D4s_v5", "Standard_A2_v2"]) == "StandardSSD_LRS"


def test_terminate_notice_is_in_azures_window_and_never_on_spot() -> None:
    assert terminate_notice("manager", spot=False) == "PT15M"
    assert terminate_notice("worker", spot=False) == "PT10M"
    assert terminate_notice("worker", spot=True) is None


def test_quorum_is_a_raft_majority() -> None:
    assert [quorum(n) for n in (1, 3, 5, 7)] == [1, 2, 3, 4]
    assert 'startswith "prod-mgr"' in quorum_query("prod-mgr")
