"""The Standard load balancer in front of the swarm: published ports to the workers
(the managers when there are none), the TLS Docker API to the managers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import pulumi
import pulumi_azure_native as azure

from components.common.ports import DOCKER_TLS_PORT, GOSSIP_PORT


@dataclass(frozen=True)
class LbRule:
    """One forwarding rule and the probe that decides which nodes get its traffic."""

    name: str
    """Rule and probe name, e.g. `tcp-443`."""
    protocol: Literal["Tcp", "Udp"]
    """Forwarded protocol."""
    port: int
    """Frontend and backend port (the swarm's routing mesh listens on the same port)."""
    pool: Literal["managers", "workers"]
    """Backend pool that receives the traffic."""
    probe_port: int
    """TCP port probed; for UDP the swarm's gossip port (Azure has no UDP probe)."""


def lb_rules(published: tuple[tuple[int, Literal["tcp", "udp"]], ...], docker_api: bool,
             has_workers: bool) -> list[LbRule]:
    """The balancer's rules. Pure: one per published port, plus the Docker API."""
    services: Literal["managers", "workers"] = "workers" if has_workers else "managers"
    rules = [LbRule(f"{protocol}-{port}", "Tcp" if protocol == "tcp" else "Udp", port, services,
                    port if protocol == "tcp" else GOSSIP_PORT)
             for port, protocol in published]
    if docker_api:
        rules.append(LbRule(f"tcp-{DOCKER_TLS_PORT}-docker-api", "Tcp", DOCKER_TLS_PORT, "managers", DOCKER_TLS_PORT))
    return rules


def _pool_id(pool: str) -> Callable[[Any], str]:
    def find(items: Any) -> str:
        return str(next(item.id for item in items or [] if item.name == pool))
    return find


@dataclass(frozen=True)
class LoadBalancerArgs:
    """What the balancer forwards and where it listens."""

    resource_group: pulumi.Input[str]
    """Name of the cluster's resource group."""
    resource_group_id: pulumi.Input[str]
    """Id of the resource group (the balancer's own parts are named by id)."""
    location: str
    """Azure region."""
    public: bool
    """Internet-facing with a public IP, or internal in `subnet_id`."""
    subnet_id: pulumi.Input[str]
    """The load balancer subnet, for an internal frontend."""
    zones: list[str]
    """Zones of the frontend (zone-redundant when more than one)."""
    rules: list[LbRule]
    """What to forward (see `lb_rules`)."""
    dns_label: pulumi.Input[str]
    """DNS label of the public IP (`<label>.<region>.cloudapp.azure.com`)."""
    tags: dict[str, str]
    """Tags for every resource."""


class LoadBalancer(pulumi.ComponentResource):
    """A Standard SKU balancer: one frontend, a pool per node role it serves, a rule and
    a TCP probe per port."""

    address: pulumi.Output[str]
    """The frontend's IP address, public or private."""
    fqdn: pulumi.Output[str] | None
    """The public IP's DNS name (None when internal)."""
    pool_ids: dict[str, pulumi.Output[str]]
    """Backend pool id by node role."""

    def __init__(self, name: str, args: LoadBalancerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("swarmstack:azure:LoadBalancer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        lb_name = name
        base = pulumi.Output.concat(args.resource_group_id, "/providers/Microsoft.Network/loadBalancers/", lb_name)

        def part(kind: str, part_name: str) -> azure.network.SubResourceArgs:
            return azure.network.SubResourceArgs(id=pulumi.Output.concat(base, f"/{kind}/{part_name}"))

        zones = args.zones if len(args.zones) > 1 else None
        self.fqdn = None
        if args.public:
            address = azure.network.PublicIPAddress(
                f"{name}-ip", resource_group_name=args.resource_group, location=args.location,
                public_ip_address_name=f"{name}-ip", sku=azure.network.PublicIPAddressSkuArgs(name="Standard"),
                public_ip_allocation_method="Static", zones=zones,
                dns_settings=azure.network.PublicIPAddressDnsSettingsArgs(domain_name_label=args.dns_label),
                tags=args.tags, opts=child)
            frontend = azure.network.FrontendIPConfigurationArgs(
                name="front", public_ip_address=azure.network.PublicIPAddressArgs(id=address.id))
            self.fqdn = address.dns_settings.apply(lambda d: (d.fqdn or "") if d else "")
        else:
            frontend = azure.network.FrontendIPConfigurationArgs(
                name="front", subnet=azure.network.SubnetArgs(id=args.subnet_id),
                private_ip_allocation_method="Dynamic", zones=zones)
        pools = sorted({rule.pool for rule in args.rules})
        balancer = azure.network.LoadBalancer(
            name, resource_group_name=args.resource_group, location=args.location, load_balancer_name=lb_name,
            sku=azure.network.LoadBalancerSkuArgs(name="Standard", tier="Regional"),
            frontend_ip_configurations=[frontend],
            backend_address_pools=[azure.network.BackendAddressPoolArgs(name=pool) for pool in pools],
            probes=[azure.network.ProbeArgs(name=rule.name, protocol="Tcp", port=rule.probe_port,
                                            interval_in_seconds=5, number_of_probes=2, probe_threshold=2)
                    for rule in args.rules],
            load_balancing_rules=[azure.network.LoadBalancingRuleArgs(
                name=rule.name, protocol=rule.protocol, frontend_port=rule.port, backend_port=rule.port,
                frontend_ip_configuration=part("frontendIPConfigurations", "front"),
                backend_address_pool=part("backendAddressPools", rule.pool),
                probe=part("probes", rule.name), disable_outbound_snat=True, enable_floating_ip=False,
                idle_timeout_in_minutes=4, load_distribution="Default") for rule in args.rules],
            tags=args.tags, opts=child)
        if args.public:
            self.address = address.ip_address.apply(lambda ip: ip or "")
        else:
            self.address = balancer.frontend_ip_configurations.apply(
                lambda fronts: (fronts or [])[0].private_ip_address or "")
        self.pool_ids = {pool: balancer.backend_address_pools.apply(_pool_id(pool)) for pool in pools}
        self.register_outputs({"address": self.address, "poolIds": self.pool_ids})
