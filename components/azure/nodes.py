"""One scale set of swarm nodes: the managers, or one worker pool."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_azure_native as azure

from components.common.hooks import CONVERGE_DEADLINE, HEALTH_PATH, HEALTH_PORT, REPAIR_GRACE
from swarmstack.config.tags import POOL_TAG, ROLE_TAG

ADMIN_USER = "swarmadmin"
DEFAULT_IMAGE = {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"}
_PREMIUM = re.compile(r"^Standard_[A-Z]+\d+[a-z]*s[a-z]*(_|$)")


def os_disk_type(sizes: list[str]) -> str:
    """Premium SSD when every size supports it (an `s` among its feature letters), else Standard SSD. Pure."""
    return "Premium_LRS" if sizes and all(_PREMIUM.match(size) for size in sizes) else "StandardSSD_LRS"


def terminate_notice(role: Literal["manager", "worker"], spot: bool) -> str | None:
    """How long Azure waits for a node to drain before deleting it; None on Spot. Pure.

    Managers get the most (PT15M: drain, demote, leave one at a time); workers PT10M.
    Spot machines are evicted with a 30 s Scheduled Events notice instead.
    """
    if spot:
        return None
    return "PT15M" if role == "manager" else "PT10M"


def computer_name_prefix(cluster: str, role: str) -> str:
    """The host name prefix of a scale set's machines (Azure appends a 6-character instance id). Pure."""
    return re.sub(r"-+", "-", f"{cluster}-{role}")[:50].strip("-")


@dataclass(frozen=True)
class NodePoolArgs:
    """Everything one scale set needs."""

    role: Literal["manager", "worker"]
    """Swarm role of every node."""
    pool: str
    """`managers` or the worker pool's name."""
    resource_group: pulumi.Input[str]
    """Name of the cluster's resource group."""
    location: str
    """Azure region."""
    sizes: list[str]
    """VM sizes: one, or several for a Spot pool (instance mix)."""
    count: int
    """How many machines."""
    disk_gib: int
    """OS disk size."""
    zones: list[str]
    """Zones to spread over ("1", "2", "3")."""
    spot: bool
    """Spot priority, evicted (deleted) when Azure needs the capacity back."""
    subnet_id: pulumi.Input[str]
    """The role's subnet."""
    nsg_id: pulumi.Input[str]
    """The role's NSG (on the NIC too, so it holds in an existing VNet)."""
    asg_id: pulumi.Input[str]
    """The role's application security group."""
    backend_pool_ids: list[pulumi.Input[str]]
    """Load balancer pools the nodes join."""
    identity_id: pulumi.Input[str]
    """The role's user-assigned identity."""
    ssh_public_key: pulumi.Input[str]
    """OpenSSH public key of `swarmadmin` (Azure requires one when passwords are off)."""
    custom_data: pulumi.Input[str]
    """Base64 cloud-init user data."""
    public_addresses: bool
    """Give each node a public IP (egress when there is no NAT gateway)."""
    computer_name_prefix: str
    """Host name prefix."""
    collection_rule_id: pulumi.Input[str] | None
    """Data collection rule the Azure Monitor Agent follows; None: no agent."""
    boot_dependencies: list[pulumi.Resource] = field(default_factory=list)
    """What the machines read or need from their first boot (role assignments of their
    identity, the Key Vault secrets; components stand for their children): the scale
    set depends on all of it, so RBAC grants and secrets exist before a machine boots."""
    image: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_IMAGE))
    """Marketplace image reference, or `{"id": …}`."""
    tags: dict[str, str] = field(default_factory=dict)
    """Tags for every resource."""


class NodePool(pulumi.ComponentResource):
    """A scale set with no password, encryption at host, zones, and a drain window."""

    scale_set_name: pulumi.Output[str]
    scale_set_id: pulumi.Output[str]

    def __init__(self, name: str, args: NodePoolArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("swarmstack:azure:NodePool", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        mix = len(args.sizes) > 1
        if mix and not args.spot:
            raise pulumi.RunError(f"{args.pool}: several VM sizes are only used by Spot pools")
        flexible = mix
        notice = terminate_notice(args.role, args.spot)
        ip_config = azure.compute.VirtualMachineScaleSetIPConfigurationArgs(
            name="ip", primary=True, subnet=azure.compute.ApiEntityReferenceArgs(id=args.subnet_id),
            load_balancer_backend_address_pools=[azure.compute.SubResourceArgs(id=p) for p in args.backend_pool_ids],
            application_security_groups=[azure.compute.SubResourceArgs(id=args.asg_id)],
            public_ip_address_configuration=azure.compute.VirtualMachineScaleSetPublicIPAddressConfigurationArgs(
                name="public", idle_timeout_in_minutes=4,
                sku=azure.compute.PublicIPAddressSkuArgs(name="Standard", tier="Regional"))
            if args.public_addresses else None)
        # The node reports its own health (userdata: node_ready / mark_unhealthy) with Rich
        # Health States: only an explicit "Unhealthy" (a node that could not join within its
        # deadline) starts a repair; an unreachable endpoint is "Unknown" and left alone.
        extensions = [azure.compute.VirtualMachineScaleSetExtensionArgs(
            name="ApplicationHealth", publisher="Microsoft.ManagedServices", type="ApplicationHealthLinux",
            type_handler_version="2.0", auto_upgrade_minor_version=True,
            settings={"protocol": "http", "port": HEALTH_PORT, "requestPath": HEALTH_PATH, "intervalInSeconds": 5,
                      "numberOfProbes": 1, "gracePeriod": CONVERGE_DEADLINE})]
        if args.collection_rule_id is not None:
            extensions.append(azure.compute.VirtualMachineScaleSetExtensionArgs(
                name="AzureMonitorLinuxAgent", publisher="Microsoft.Azure.Monitor", type="AzureMonitorLinuxAgent",
                type_handler_version="1.0", auto_upgrade_minor_version=True, enable_automatic_upgrade=True,
                settings={"authentication": {"managedIdentity": {"identifier-name": "mi_res_id",
                                                                 "identifier-value": args.identity_id}}}))
        profile = azure.compute.VirtualMachineScaleSetVMProfileArgs(
            os_profile=azure.compute.VirtualMachineScaleSetOSProfileArgs(
                computer_name_prefix=args.computer_name_prefix, admin_username=ADMIN_USER,
                custom_data=args.custom_data,
                linux_configuration=azure.compute.LinuxConfigurationArgs(
                    disable_password_authentication=True, provision_vm_agent=True,
                    ssh=azure.compute.SshConfigurationArgs(public_keys=[azure.compute.SshPublicKeyArgs(
                        path=f"/home/{ADMIN_USER}/.ssh/authorized_keys", key_data=args.ssh_public_key)]))),
            storage_profile=azure.compute.VirtualMachineScaleSetStorageProfileArgs(
                image_reference=azure.compute.ImageReferenceArgs(**args.image),
                os_disk=azure.compute.VirtualMachineScaleSetOSDiskArgs(
                    create_option="FromImage", caching=azure.compute.CachingTypes.READ_WRITE,
                    disk_size_gb=args.disk_gib, delete_option="Delete",
                    managed_disk=azure.compute.VirtualMachineScaleSetManagedDiskParametersArgs(
                        storage_account_type=os_disk_type(args.sizes)))),
            network_profile=azure.compute.VirtualMachineScaleSetNetworkProfileArgs(
                network_api_version="2020-11-01" if flexible else None,
                network_interface_configurations=[azure.compute.VirtualMachineScaleSetNetworkConfigurationArgs(
                    name="nic", primary=True, enable_ip_forwarding=False,
                    network_security_group=azure.compute.SubResourceArgs(id=args.nsg_id),
                    ip_configurations=[ip_config])]),
            security_profile=azure.compute.SecurityProfileArgs(encryption_at_host=True),
            diagnostics_profile=azure.compute.DiagnosticsProfileArgs(
                boot_diagnostics=azure.compute.BootDiagnosticsArgs(enabled=True)),
            scheduled_events_profile=azure.compute.ScheduledEventsProfileArgs(
                terminate_notification_profile=azure.compute.TerminateNotificationProfileArgs(
                    enable=True, not_before_timeout=notice)) if notice else None,
            priority="Spot" if args.spot else "Regular",
            eviction_policy="Delete" if args.spot else None,
            billing_profile=azure.compute.BillingProfileArgs(max_price=-1) if args.spot else None,
            extension_profile=azure.compute.VirtualMachineScaleSetExtensionProfileArgs(extensions=extensions)
            if extensions else None)
        scale_set = azure.compute.VirtualMachineScaleSet(
            name, resource_group_name=args.resource_group, location=args.location, vm_scale_set_name=name,
            sku=azure.compute.SkuArgs(name="Mix" if mix else args.sizes[0], capacity=args.count,
                                      tier=None if mix else "Standard"),
            sku_profile=azure.compute.SkuProfileArgs(
                vm_sizes=[azure.compute.SkuProfileVMSizeArgs(name=size) for size in args.sizes],
                allocation_strategy="CapacityOptimized") if mix else None,
            orchestration_mode="Flexible" if flexible else "Uniform",
            platform_fault_domain_count=1 if flexible else None,
            # Overprovisioned extra machines would run the user data and join the swarm.
            overprovision=False if not flexible else None,
            # Worker pools may grow past 100 machines, which one placement group cannot hold.
            single_placement_group=False if not flexible and args.role == "worker" else None,
            upgrade_policy=azure.compute.UpgradePolicyArgs(mode=azure.compute.UpgradeMode.MANUAL)
            if not flexible else None,
            zones=list(args.zones),
            zone_balance=True if len(args.zones) > 1 and args.role == "manager" else None,
            # A node is Unhealthy only when it never joined (so it holds no raft seat): replacing
            # it is safe for managers too. Spot machines are evicted, not repaired.
            automatic_repairs_policy=azure.compute.AutomaticRepairsPolicyArgs(
                enabled=not args.spot, grace_period=REPAIR_GRACE, repair_action="Replace"),
            identity=azure.compute.VirtualMachineScaleSetIdentityArgs(
                type=azure.compute.ResourceIdentityType.USER_ASSIGNED, user_assigned_identities=[args.identity_id]),
            virtual_machine_profile=profile,
            tags={**args.tags, ROLE_TAG: args.role, POOL_TAG: args.pool},
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.boot_dependencies)))
        if args.collection_rule_id is not None:
            azure.monitor.DataCollectionRuleAssociation(
                f"{name}-logs", resource_uri=scale_set.id, association_name=f"{name}-logs",
                data_collection_rule_id=args.collection_rule_id,
                description="ship the swarm's syslog facilities to Log Analytics", opts=child)
        self.scale_set_name = scale_set.name
        self.scale_set_id = scale_set.id
        self.register_outputs({"scaleSetName": self.scale_set_name})
