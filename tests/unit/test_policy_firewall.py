"""Firewall rules: a passing resource, then each way of breaking it, with the exact message."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st
from policy_testing import messages, resource, summary

from policies import firewall
from policies._flows import flows

INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SG = "aws:ec2/securityGroup:SecurityGroup"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
NSG = "azure-native:network:NetworkSecurityGroup"
AZ_RULE = "azure-native:network:SecurityRule"
LISTENER = "aws:lb/listener:Listener"
AZ_LB = "azure-native:network:LoadBalancer"


def ingress(**props: object) -> dict[str, object]:
    base: dict[str, object] = {"securityGroupId": "sg-0managers", "ipProtocol": "tcp", "fromPort": 2377.0,
                               "toPort": 2377.0, "referencedSecurityGroupId": "sg-0workers",
                               "description": "swarm management from workers"}
    base.update(props)
    return {k: v for k, v in base.items() if v is not None}


def nsg_rule(**props: object) -> dict[str, object]:
    base: dict[str, object] = {"name": "swarm-management", "access": "Allow", "direction": "Inbound",
                               "protocol": "Tcp", "priority": 200.0, "sourceAddressPrefix": "VirtualNetwork",
                               "sourcePortRange": "*", "destinationAddressPrefix": "*",
                               "destinationPortRange": "2377"}
    base.update(props)
    return {k: v for k, v in base.items() if v is not None}


# --- no-plaintext-docker-api --------------------------------------------------------------------

def test_plaintext_docker_api_passes_without_2375() -> None:
    assert messages(firewall.no_plaintext_docker_api, resource(INGRESS, "ok", ingress())) == []
    assert messages(firewall.no_plaintext_docker_api,
                    resource(INGRESS, "tls", ingress(fromPort=2376.0, toPort=2376.0,
                                                     referencedSecurityGroupId=None, cidrIpv4="203.0.113.0/24"))) == []


@pytest.mark.parametrize(("props", "message"), [
    ({"fromPort": 2375.0, "toPort": 2375.0},
     "ingress allows 2375/tcp from group sg-0workers, which opens the plaintext Docker API (2375/tcp)"),
    ({"fromPort": 2375.0, "toPort": 2375.0, "referencedSecurityGroupId": None, "cidrIpv4": "10.0.0.0/8"},
     "ingress allows 2375/tcp from 10.0.0.0/8, which opens the plaintext Docker API (2375/tcp)"),
    ({"fromPort": 2000.0, "toPort": 3000.0},
     "ingress allows 2000-3000/tcp from group sg-0workers, which opens the plaintext Docker API (2375/tcp)"),
    ({"ipProtocol": "-1", "fromPort": None, "toPort": None},
     "ingress allows all traffic from group sg-0workers, which opens the plaintext Docker API (2375/tcp)"),
])
def test_plaintext_docker_api_is_refused_from_anywhere(props: dict[str, object], message: str) -> None:
    assert messages(firewall.no_plaintext_docker_api, resource(INGRESS, "bad", ingress(**props))) == [message]


def test_plaintext_docker_api_udp_is_not_the_api() -> None:
    assert messages(firewall.no_plaintext_docker_api,
                    resource(INGRESS, "udp", ingress(ipProtocol="udp", fromPort=2375.0, toPort=2375.0))) == []


def test_plaintext_docker_api_on_inline_group_rules_and_nsgs_and_load_balancers() -> None:
    group = resource(SG, "sg", {"vpcId": "vpc-1", "ingress": [
        {"protocol": "tcp", "fromPort": 2375.0, "toPort": 2375.0, "cidrBlocks": ["0.0.0.0/0"]}]})
    assert messages(firewall.no_plaintext_docker_api, group) == [
        "ingress[0] allows 2375/tcp from 0.0.0.0/0, which opens the plaintext Docker API (2375/tcp)"]
    nsg = resource(NSG, "nsg", {"securityRules": [nsg_rule(name="docker", destinationPortRange="2375")]})
    assert messages(firewall.no_plaintext_docker_api, nsg) == [
        "securityRules[0] (docker) allows 2375/tcp from VirtualNetwork, which opens the plaintext Docker API "
        "(2375/tcp)"]
    listener = resource(LISTENER, "l", {"loadBalancerArn": "arn:lb", "port": 2375.0, "protocol": "TCP"})
    assert messages(firewall.no_plaintext_docker_api, listener) == [
        "port: the load balancer forwards 2375/tcp, which exposes the plaintext Docker API (2375/tcp)"]


def test_a_denied_or_outbound_nsg_rule_opens_nothing() -> None:
    for change in ({"access": "Deny"}, {"direction": "Outbound"}):
        nsg = resource(NSG, "nsg", {"securityRules": [nsg_rule(destinationPortRange="2375", **change)]})
        assert messages(firewall.no_plaintext_docker_api, nsg) == []


def test_an_egress_rule_opens_nothing() -> None:
    rule = resource(SG_RULE, "egress", {"type": "egress", "securityGroupId": "sg-1", "protocol": "-1",
                                        "fromPort": 0.0, "toPort": 0.0, "cidrBlocks": ["0.0.0.0/0"]})
    assert messages(firewall.no_plaintext_docker_api, rule) == []


# --- docker-tls-api-not-public ---------------------------------------------------------------------

def test_tls_api_from_admins_passes() -> None:
    ok = resource(INGRESS, "api", ingress(fromPort=2376.0, toPort=2376.0, referencedSecurityGroupId=None,
                                          cidrIpv4="203.0.113.0/24"))
    assert messages(firewall.docker_tls_api_not_public, ok) == []


@pytest.mark.parametrize(("props", "message"), [
    ({"cidrIpv4": "0.0.0.0/0"}, "ingress allows 2376/tcp from 0.0.0.0/0: the TLS Docker API (2376/tcp) must be "
                                "reachable from the admins' ranges only"),
    ({"cidrIpv4": None, "cidrIpv6": "::/0"}, "ingress allows 2376/tcp from ::/0: the TLS Docker API (2376/tcp) "
                                             "must be reachable from the admins' ranges only"),
])
def test_tls_api_from_the_world_is_refused(props: dict[str, object], message: str) -> None:
    base = ingress(fromPort=2376.0, toPort=2376.0, referencedSecurityGroupId=None, cidrIpv4="203.0.113.0/24")
    base.update(props)
    bad = resource(INGRESS, "api", {k: v for k, v in base.items() if v is not None})
    assert messages(firewall.docker_tls_api_not_public, bad) == [message]


@pytest.mark.parametrize("prefix", ["*", "Internet", "0.0.0.0/0"])
def test_tls_api_from_the_internet_on_azure_is_refused(prefix: str) -> None:
    rule = resource(AZ_RULE, "api", nsg_rule(name="docker-api", destinationPortRange="2376",
                                             sourceAddressPrefix=prefix))
    assert messages(firewall.docker_tls_api_not_public, rule) == [
        f"rule (docker-api) allows 2376/tcp from {prefix}: the TLS Docker API (2376/tcp) must be reachable from "
        "the admins' ranges only"]


# --- ssh-rdp-not-public -------------------------------------------------------------------------------

def test_ssh_from_admins_passes() -> None:
    ok = resource(INGRESS, "ssh", ingress(fromPort=22.0, toPort=22.0, referencedSecurityGroupId=None,
                                          cidrIpv4="203.0.113.0/24"))
    assert messages(firewall.ssh_rdp_not_public, ok) == []


def test_ssh_and_rdp_from_the_world_are_refused() -> None:
    ssh = resource(INGRESS, "ssh", ingress(fromPort=22.0, toPort=22.0, referencedSecurityGroupId=None,
                                           cidrIpv4="0.0.0.0/0"))
    assert messages(firewall.ssh_rdp_not_public, ssh) == [
        "ingress allows 22/tcp from 0.0.0.0/0, which opens SSH (22/tcp) to the world"]
    rdp = resource(NSG, "nsg", {"securityRules": [nsg_rule(name="rdp", destinationPortRanges=["3389"],
                                                           destinationPortRange=None, sourceAddressPrefix="*")]})
    assert messages(firewall.ssh_rdp_not_public, rdp) == [
        "securityRules[0] (rdp) allows 3389/tcp from *, which opens RDP (3389/tcp) to the world"]
    wide = resource(SG, "sg", {"ingress": [{"protocol": "tcp", "fromPort": 0.0, "toPort": 65535.0,
                                            "ipv6CidrBlocks": ["::/0"]}]})
    assert messages(firewall.ssh_rdp_not_public, wide) == [
        "ingress[0] allows 0-65535/tcp from ::/0, which opens SSH (22/tcp) to the world",
        "ingress[0] allows 0-65535/tcp from ::/0, which opens RDP (3389/tcp) to the world"]


def test_an_nsg_rule_without_source_means_any() -> None:
    rule = resource(AZ_RULE, "ssh", nsg_rule(name="ssh", destinationPortRange="22", sourceAddressPrefix=None))
    assert messages(firewall.ssh_rdp_not_public, rule) == [
        "rule (ssh) allows 22/tcp from *, which opens SSH (22/tcp) to the world"]


# --- no-all-ports-to-world ---------------------------------------------------------------------------

def test_all_ports_to_the_world() -> None:
    assert messages(firewall.no_all_ports_to_world, resource(INGRESS, "ok", ingress())) == []
    bad = resource(INGRESS, "all", ingress(ipProtocol="-1", fromPort=None, toPort=None,
                                           referencedSecurityGroupId=None, cidrIpv4="0.0.0.0/0"))
    assert messages(firewall.no_all_ports_to_world, bad) == ["ingress allows all traffic from 0.0.0.0/0"]
    star = resource(AZ_RULE, "any", nsg_rule(name="any", protocol="*", destinationPortRange="*",
                                             sourceAddressPrefix="Internet"))
    assert messages(firewall.no_all_ports_to_world, star) == ["rule (any) allows all traffic from Internet"]


# --- swarm-ports-internal-only ---------------------------------------------------------------------

def test_swarm_ports_from_node_groups_pass() -> None:
    for port, protocol in ((2377.0, "tcp"), (7946.0, "tcp"), (7946.0, "udp"), (4789.0, "udp")):
        rule = resource(INGRESS, "ok", ingress(ipProtocol=protocol, fromPort=port, toPort=port))
        assert messages(firewall.swarm_ports_internal_only, rule) == []
    esp = resource(INGRESS, "esp", ingress(ipProtocol="50", fromPort=None, toPort=None))
    assert messages(firewall.swarm_ports_internal_only, esp) == []
    nsg = resource(NSG, "nsg", {"securityRules": [nsg_rule(), nsg_rule(name="vxlan", protocol="Udp",
                                                                        destinationPortRange="4789",
                                                                        sourceAddressPrefix="10.50.0.0/16")]})
    assert messages(firewall.swarm_ports_internal_only, nsg) == []


@pytest.mark.parametrize(("props", "message"), [
    ({"referencedSecurityGroupId": None, "cidrIpv4": "10.20.0.0/16"},
     "ingress allows 2377/tcp from 10.20.0.0/16, so address range 10.20.0.0/16 reaches swarm management "
     "(2377/tcp); reference the swarm's security groups (referencedSecurityGroupId), not address ranges"),
    ({"referencedSecurityGroupId": None, "cidrIpv4": "0.0.0.0/0"},
     "ingress allows 2377/tcp from 0.0.0.0/0, so the internet reaches swarm management (2377/tcp); reference "
     "the swarm's security groups (referencedSecurityGroupId), not address ranges"),
    ({"referencedSecurityGroupId": None, "prefixListId": "pl-0123"},
     "ingress allows 2377/tcp from prefix-list pl-0123, so prefix-list pl-0123 reaches swarm management "
     "(2377/tcp); reference the swarm's security groups (referencedSecurityGroupId), not address ranges"),
    ({"ipProtocol": "udp", "fromPort": 4789.0, "toPort": 4789.0, "referencedSecurityGroupId": None,
      "cidrIpv6": "::/0"},
     "ingress allows 4789/udp from ::/0, so the internet reaches the overlay VXLAN (4789/udp); reference the "
     "swarm's security groups (referencedSecurityGroupId), not address ranges"),
    ({"ipProtocol": "50", "fromPort": None, "toPort": None, "referencedSecurityGroupId": None,
      "cidrIpv4": "0.0.0.0/0"},
     "ingress allows esp from 0.0.0.0/0, so the internet reaches encrypted overlay traffic (ESP); reference "
     "the swarm's security groups (referencedSecurityGroupId), not address ranges"),
])
def test_swarm_ports_from_ranges_are_refused_on_aws(props: dict[str, object], message: str) -> None:
    assert messages(firewall.swarm_ports_internal_only, resource(INGRESS, "bad", ingress(**props))) == [message]


@pytest.mark.parametrize(("prefix", "why"), [
    ("Internet", "the internet"), ("*", "the internet"), ("AzureLoadBalancer", "the load balancer"),
    ("203.0.113.0/24", "address range 203.0.113.0/24"), ("Storage", "service tag Storage"),
])
def test_swarm_ports_from_outside_are_refused_on_azure(prefix: str, why: str) -> None:
    nsg = resource(NSG, "nsg", {"securityRules": [nsg_rule(protocol="Udp", destinationPortRange="7946",
                                                           sourceAddressPrefix=prefix)]})
    assert messages(firewall.swarm_ports_internal_only, nsg) == [
        f"securityRules[0] (swarm-management) allows 7946/udp from {prefix}, so {why} reaches swarm gossip "
        "(7946/tcp+udp); allow only the VirtualNetwork tag or the VNet's own range"]


def test_swarm_ports_are_never_published_on_a_load_balancer() -> None:
    listener = resource(LISTENER, "l", {"loadBalancerArn": "arn:lb", "port": 2377.0, "protocol": "TCP"})
    assert messages(firewall.swarm_ports_internal_only, listener) == [
        "port: the load balancer forwards 2377/tcp, which exposes swarm management (2377/tcp)"]
    lb = resource(AZ_LB, "lb", {"loadBalancingRules": [
        {"name": "http", "protocol": "Tcp", "frontendPort": 80.0, "backendPort": 80.0},
        {"name": "vxlan", "protocol": "Udp", "frontendPort": 4789.0, "backendPort": 4789.0}]})
    assert messages(firewall.swarm_ports_internal_only, lb) == [
        "loadBalancingRules[1].frontendPort: the load balancer forwards 4789/udp, which exposes the overlay VXLAN "
        "(4789/udp)",
        "loadBalancingRules[1].backendPort: the load balancer forwards 4789/udp, which exposes the overlay VXLAN "
        "(4789/udp)"]


# --- default-security-group-closed ---------------------------------------------------------------

def test_default_security_group_closed() -> None:
    kind = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
    assert messages(firewall.default_security_group_closed,
                    resource(kind, "default", {"vpcId": "vpc-1", "ingress": [], "egress": []})) == []
    opened = resource(kind, "default", {"vpcId": "vpc-1", "ingress": [
        {"protocol": "-1", "fromPort": 0.0, "toPort": 0.0, "self": True}], "egress": []})
    assert messages(firewall.default_security_group_closed, opened) == [
        "the VPC's default security group has 1 ingress rule(s); it should allow nothing, so that nothing lands "
        "in it by accident"]


def test_default_security_group_rules_in_an_odd_shape_are_counted_not_crashed_on() -> None:
    # The engine can hand a rule a value of any shape; a single rule that is not in a list is still one rule.
    kind = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
    odd = resource(kind, "default", {"vpcId": "vpc-1", "ingress": 3.0, "egress": []})
    assert messages(firewall.default_security_group_closed, odd) == [
        "the VPC's default security group has 1 ingress rule(s); it should allow nothing, so that nothing lands "
        "in it by accident"]


# --- stack: docker-tls-api-only-when-enabled -----------------------------------------------------------

def test_tls_api_only_when_the_stack_turns_it_on() -> None:
    api = resource(INGRESS, "api", ingress(fromPort=2376.0, toPort=2376.0, referencedSecurityGroupId=None,
                                           cidrIpv4="203.0.113.0/24"))
    assert messages(firewall.docker_tls_api_only_when_enabled, summary(docker_api=True), api) == []
    assert messages(firewall.docker_tls_api_only_when_enabled, summary(docker_api=False), api) == [
        "api: ingress allows 2376/tcp from 203.0.113.0/24, but the stack has the Docker API off "
        "(dockerApi.enabled: false)"]
    listener = resource(LISTENER, "api", {"loadBalancerArn": "arn:lb", "port": 2376.0, "protocol": "TCP"})
    assert messages(firewall.docker_tls_api_only_when_enabled, summary(docker_api=False), listener) == [
        "api: port forwards 2376/tcp, but the stack has the Docker API off (dockerApi.enabled: false)"]


def test_tls_api_rule_needs_the_cluster_summary() -> None:
    api = resource(INGRESS, "api", ingress(fromPort=2376.0, toPort=2376.0))
    assert messages(firewall.docker_tls_api_only_when_enabled, api) == []


# --- stack: swarm-ports-from-nodes-only ---------------------------------------------------------------

def _aws_groups() -> list:  # type: ignore[type-arg]
    managers = resource(SG, "managers", {"vpcId": "vpc-1"}, {"id": "sg-0managers"})
    workers = resource(SG, "workers", {"vpcId": "vpc-1"}, {"id": "sg-0workers"})
    lb_sg = resource(SG, "lb", {"vpcId": "vpc-1"}, {"id": "sg-0lb"})
    template = resource("aws:ec2/launchTemplate:LaunchTemplate", "managers",
                        {"vpcSecurityGroupIds": ["sg-0managers"]})
    worker_template = resource("aws:ec2/launchTemplate:LaunchTemplate", "workers",
                               {"networkInterfaces": [{"securityGroups": ["sg-0workers"]}]})
    nlb = resource("aws:lb/loadBalancer:LoadBalancer", "nlb", {"loadBalancerType": "network",
                                                              "securityGroups": ["sg-0lb"]})
    return [managers, workers, lb_sg, template, worker_template, nlb]


def test_swarm_ports_from_node_groups_pass_the_stack_rule() -> None:
    rules = [resource(INGRESS, "from-workers", ingress()),
             resource(INGRESS, "from-self", ingress(referencedSecurityGroupId="sg-0managers"))]
    assert messages(firewall.swarm_ports_from_nodes_only, *_aws_groups(), *rules) == []


def test_swarm_ports_from_the_load_balancer_group_or_another_group_are_refused() -> None:
    from_lb = resource(INGRESS, "from-lb", ingress(referencedSecurityGroupId="sg-0lb"))
    from_bastion = resource(INGRESS, "from-bastion", ingress(ipProtocol="udp", fromPort=4789.0, toPort=4789.0,
                                                             referencedSecurityGroupId="sg-0bastion"))
    assert messages(firewall.swarm_ports_from_nodes_only, *_aws_groups(), from_lb, from_bastion) == [
        "from-lb: ingress lets the load balancer's group sg-0lb reach swarm management (2377/tcp)",
        "from-bastion: ingress lets group sg-0bastion, which no swarm node runs in, reach the overlay VXLAN "
        "(4789/udp)"]


def test_swarm_ports_from_outside_the_vnet_are_refused() -> None:
    vnet = resource("azure-native:network:VirtualNetwork", "vnet",
                    {"addressSpace": {"addressPrefixes": ["10.50.0.0/16"]}})
    inside = resource(NSG, "nsg", {"securityRules": [nsg_rule(sourceAddressPrefix="10.50.0.0/24")]})
    assert messages(firewall.swarm_ports_from_nodes_only, vnet, inside) == []
    outside = resource(NSG, "nsg", {"securityRules": [nsg_rule(sourceAddressPrefix="10.60.0.0/16")]})
    assert messages(firewall.swarm_ports_from_nodes_only, vnet, outside) == [
        "nsg: securityRules[0] (swarm-management) lets 10.60.0.0/16, outside the VNet (10.50.0.0/16), reach swarm "
        "management (2377/tcp)"]


@pytest.mark.parametrize("odd", [3.0, True])
def test_swarm_ports_rule_reads_group_and_range_lists_of_an_odd_shape_without_crashing(odd: object) -> None:
    # A list the engine hands over as a single value is read as a list of one: nothing crashes.
    template = resource("aws:ec2/launchTemplate:LaunchTemplate", "odd", {"vpcSecurityGroupIds": odd,
                                                                        "networkInterfaces": odd})
    nic = resource("aws:ec2/launchTemplate:LaunchTemplate", "odd-nic", {"networkInterfaces": [
        {"securityGroups": odd}]})
    nlb = resource("aws:lb/loadBalancer:LoadBalancer", "odd-nlb", {"securityGroups": odd})
    from_lb = resource(INGRESS, "from-lb", ingress(referencedSecurityGroupId="sg-0lb"))
    assert messages(firewall.swarm_ports_from_nodes_only, *_aws_groups(), template, nic, nlb, from_lb) == [
        "from-lb: ingress lets the load balancer's group sg-0lb reach swarm management (2377/tcp)"]
    vnet = resource("azure-native:network:VirtualNetwork", "vnet", {"addressSpace": {"addressPrefixes": odd}})
    inside = resource(NSG, "nsg", {"securityRules": [nsg_rule(sourceAddressPrefix="10.50.0.0/24")]})
    assert messages(firewall.swarm_ports_from_nodes_only, vnet, inside) == []  # no range known: none judged


# --- stack: esp-between-nodes ----------------------------------------------------------------------------

def test_esp_between_nodes() -> None:
    esp = resource(INGRESS, "esp", ingress(ipProtocol="50", fromPort=None, toPort=None))
    assert messages(firewall.esp_between_nodes, resource(INGRESS, "mgmt", ingress()), esp) == []
    assert messages(firewall.esp_between_nodes, resource(INGRESS, "mgmt", ingress())) == [
        "no rule allows ESP (IP protocol 50) between the swarm's nodes, so encrypted overlay networks "
        "(--opt encrypted) will silently drop traffic"]
    azure = resource(NSG, "nsg", {"securityRules": [nsg_rule(name="esp", protocol="Esp", destinationPortRange="*")]})
    assert messages(firewall.esp_between_nodes, azure) == []


def test_esp_rule_is_silent_without_firewalls() -> None:
    assert messages(firewall.esp_between_nodes, resource("aws:ec2/vpc:Vpc", "vpc", {"cidrBlock": "10.0.0.0/16"})) == []


# --- the port arithmetic, for any range --------------------------------------------------------------

ports = st.integers(0, 65535)


@given(ports, ports, ports, st.sampled_from(["tcp", "udp"]))
def test_a_range_covers_exactly_its_ports_on_both_clouds(a: int, b: int, port: int, protocol: str) -> None:
    low, high = min(a, b), max(a, b)
    aws = flows(INGRESS, ingress(ipProtocol=protocol, fromPort=float(low), toPort=float(high)))
    azure = flows(AZ_RULE, nsg_rule(protocol=protocol.capitalize(),
                                    destinationPortRange=f"{low}-{high}" if low != high else str(low)))
    for found in (aws, azure):
        assert len(found) == 1
        assert found[0].covers(port, (protocol,)) == (low <= port <= high)
        assert not found[0].covers(port, ("esp",))


@given(st.integers(0, 32), st.integers(0, 2**32 - 1))
def test_only_a_zero_length_prefix_is_the_world(prefix: int, address: int) -> None:
    network = ipaddress.ip_network((address, prefix), strict=False)
    rule = ingress(referencedSecurityGroupId=None, cidrIpv4=str(network))
    assert flows(INGRESS, rule)[0].sources[0].is_world == (prefix == 0)
