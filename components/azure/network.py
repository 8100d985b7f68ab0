"""The VNet a swarm lives in: new (a subnet per role, NAT gateway for egress) or existing.

How a new VNet's address space is shared between managers, workers and the load
balancer is pure (`subnet_plan`). Azure subnets span every zone of a region, so unlike
AWS there is one subnet per role, not one per zone; the scale sets spread their
machines over zones themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_azure_native as azure

from components.common.cidr import split
from swarmstack.config.problems import Problem

ROLES = ("managers", "workers", "lb")


def subnet_plan(cidr: str) -> dict[str, str]:
    """`{"managers": …, "workers": …, "lb": …}`: the first three quarters of `cidr`.

    The fourth quarter stays free for whatever the user adds later (a bastion, a
    gateway). Raises ValueError when `cidr` is too small to cut.
    """
    return dict(zip(ROLES, split(cidr, len(ROLES)), strict=True))


@dataclass(frozen=True)
class NewNetworkArgs:
    """A VNet that the component creates."""

    resource_group: pulumi.Input[str]
    """Name of the cluster's resource group."""
    location: str
    """Azure region."""
    cidr: str
    """The VNet's address space; cut into managers, workers and load balancer subnets."""
    nat: Literal["none", "single", "perZone"]
    """`none`: nodes get public addresses; otherwise one NAT gateway for egress (see docs/azure.md)."""
    nsg_ids: dict[str, pulumi.Input[str]]
    """NSG id by role, attached to the role's subnet."""
    tags: dict[str, str]
    """Tags for every resource."""


@dataclass(frozen=True)
class ExistingNetworkArgs:
    """A VNet that exists already; nothing of it is created or changed."""

    vnet_id: str
    """The VNet resource id."""
    subnet_ids: list[str]
    """Node subnets: [managers, workers, load balancer]; fewer means roles share the last one."""
    source: str
    """The stack file, which a refusal of the subnets names (as every config problem reads)."""


def _parse_subnet_id(subnet_id: str) -> tuple[str, str, str]:
    parts = subnet_id.split("/")
    lowered = [p.lower() for p in parts]
    return (parts[lowered.index("resourcegroups") + 1], parts[lowered.index("virtualnetworks") + 1],
            parts[lowered.index("subnets") + 1])


class Network(pulumi.ComponentResource):
    """A VNet with a subnet per role, or the subnets of an existing VNet."""

    vnet_id: pulumi.Output[str]
    subnet_ids: dict[str, pulumi.Output[str]]
    """Subnet id by role: managers, workers, lb."""
    nodes_public: bool
    """True when nodes need public addresses for egress (no NAT gateway)."""

    def __init__(self, name: str, args: NewNetworkArgs | ExistingNetworkArgs,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("swarmstack:azure:Network", name, None, opts)
        if isinstance(args, ExistingNetworkArgs):
            self._existing(args)
        else:
            self._new(name, args)
        self.register_outputs({"vnetId": self.vnet_id, "subnetIds": self.subnet_ids})

    def _existing(self, args: ExistingNetworkArgs) -> None:
        # Read each subnet, so that a wrong id fails the preview rather than the scale set.
        invoke = pulumi.InvokeOptions(parent=self)
        for subnet_id in args.subnet_ids:
            if not subnet_id.lower().startswith(args.vnet_id.lower() + "/subnets/"):
                raise pulumi.RunError(Problem("network.existing.privateSubnetIds", list(args.subnet_ids),
                                              f"{subnet_id} is not a subnet of network.existing.networkId "
                                              f"{args.vnet_id}").line(args.source))
        self.subnet_ids = {}
        for index, role in enumerate(ROLES):
            subnet_id = args.subnet_ids[min(index, len(args.subnet_ids) - 1)]
            group, vnet, subnet = _parse_subnet_id(subnet_id)
            found = azure.network.get_subnet_output(resource_group_name=group, virtual_network_name=vnet,
                                                    subnet_name=subnet, opts=invoke)
            self.subnet_ids[role] = found.id
        self.vnet_id = pulumi.Output.from_input(args.vnet_id)
        self.nodes_public = False

    def _new(self, name: str, args: NewNetworkArgs) -> None:
        child = pulumi.ResourceOptions(parent=self)
        plan = subnet_plan(args.cidr)
        vnet = azure.network.VirtualNetwork(
            f"{name}-vnet", resource_group_name=args.resource_group, location=args.location,
            virtual_network_name=f"{name}-vnet",
            address_space=azure.network.AddressSpaceArgs(address_prefixes=[args.cidr]),
            tags=args.tags, opts=pulumi.ResourceOptions(parent=self, ignore_changes=["subnets"]))
        nat = None
        if args.nat != "none":
            address = azure.network.PublicIPAddress(
                f"{name}-nat", resource_group_name=args.resource_group, location=args.location,
                public_ip_address_name=f"{name}-nat", sku=azure.network.PublicIPAddressSkuArgs(name="Standard"),
                public_ip_allocation_method="Static", tags=args.tags, opts=child)
            nat = azure.network.NatGateway(
                f"{name}-nat", resource_group_name=args.resource_group, location=args.location,
                nat_gateway_name=f"{name}-nat", sku=azure.network.NatGatewaySkuArgs(name="Standard"),
                public_ip_addresses=[azure.network.SubResourceArgs(id=address.id)], idle_timeout_in_minutes=4,
                tags=args.tags, opts=child)
        self.subnet_ids = {}
        previous: list[pulumi.Resource] = []
        for role, prefix in plan.items():
            node_subnet = role in args.nsg_ids
            subnet = azure.network.Subnet(
                f"{name}-{role}", resource_group_name=args.resource_group, virtual_network_name=vnet.name,
                subnet_name=role, address_prefix=prefix,
                network_security_group=azure.network.NetworkSecurityGroupArgs(id=args.nsg_ids[role])
                if node_subnet else None,
                nat_gateway=azure.network.SubResourceArgs(id=nat.id) if nat is not None and node_subnet else None,
                service_endpoints=[azure.network.ServiceEndpointPropertiesFormatArgs(service=s)
                                   for s in ("Microsoft.KeyVault", "Microsoft.Storage")] if node_subnet else None,
                default_outbound_access=False,
                # Azure serialises changes to one VNet's subnets; create them one after another.
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(previous)))
            previous = [subnet]
            self.subnet_ids[role] = subnet.id
        self.vnet_id = vnet.id
        self.nodes_public = nat is None
