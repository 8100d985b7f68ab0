"""Shared volumes on Azure: a premium Azure Files NFS 4.1 share every node can mount with
Docker's own `local` volume driver (`type=nfs`). The Azure side of `components/aws/volumes.py`.

- NFS shares live only in premium `FileStorage` accounts (Premium_LRS; Premium_ZRS for
  production stacks, so a zone's loss keeps the data reachable).
- NFS has no user authentication: access is the network's. The account's firewall denies by
  default and allows the managers' and workers' subnets only, through their `Microsoft.Storage`
  service endpoints (`network.py` puts them on the node subnets; an existing VNet's node
  subnets must have them, or Azure refuses the rule). No IP rules, no trusted-service bypass.
- Secure transfer (`enableHttpsTrafficOnly`) is off: with it on, NFS mounts fail (Azure Files
  NFS without the AZNFS helper has no encryption in transit). Nothing in the account speaks
  HTTP: shared keys are refused and nothing but the share lives there.
- `rootSquash: NoRootSquash`: Docker and most containers write as root, and the share's root
  directory belongs to root; squashing would leave every new volume read-only. Only the
  nodes can reach the share, and root on a node owns the swarm already.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native as azure

from components.azure.store import storage_account_name

SHARE = "volumes"
"""The NFS share's name."""
MOUNT_OPTIONS = "vers=4,minorversion=1,sec=sys"
"""Azure's documented NFS mount options for Linux."""
MINIMUM_QUOTA_GIB = 100
"""A premium share is provisioned in GiB, at least 100."""


def file_host(account: str) -> str:
    """The NFS server: the account's file endpoint host. Pure."""
    return f"{account}.file.core.windows.net"


def export_path(account: str, share: str = SHARE) -> str:
    """What NFS mounts: `/<account>/<share>`. Pure."""
    return f"/{account}/{share}"


def volume_create_command(account: str, name: str = "shared") -> str:
    """The `docker volume create` that mounts the share with Docker's local driver. Pure."""
    return (f"docker volume create --driver local --opt type=nfs "
            f"--opt o=addr={file_host(account)},{MOUNT_OPTIONS} --opt device=:{export_path(account)} {name}")


@dataclass(frozen=True)
class SharedVolumesArgs:
    """What the NFS share needs."""

    cluster: str
    """The cluster's name (the account name's first part)."""
    suffix: pulumi.Input[str]
    """The cluster's random suffix (account names are global); `v` follows it, so the name
    differs from the store's account (`swarm_store.py`) however the cluster part is cut."""
    resource_group: pulumi.Input[str]
    """Name of the cluster's resource group."""
    location: str
    """Azure region."""
    node_subnet_ids: list[pulumi.Input[str]]
    """The managers' and workers' subnets: the only networks that may reach the share."""
    quota_gib: int
    """The share's provisioned size in GiB (100 to 102400)."""
    production: bool
    """Production: zone-redundant and protected from `pulumi destroy`."""
    tags: dict[str, str]
    """Tags for the account."""


class SharedVolumes(pulumi.ComponentResource):
    """A premium FileStorage account, reachable from the node subnets only, with one NFS share."""

    account_name: pulumi.Output[str]
    host: pulumi.Output[str]
    export: pulumi.Output[str]

    def __init__(self, name: str, args: SharedVolumesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("swarmstack:azure:SharedVolumes", name, None, opts)
        if args.quota_gib < MINIMUM_QUOTA_GIB:
            raise ValueError(f"quota_gib {args.quota_gib} is below the premium minimum of {MINIMUM_QUOTA_GIB}")
        protect = pulumi.ResourceOptions(parent=self, protect=args.production)
        account = azure.storage.StorageAccount(
            f"{name}-account", resource_group_name=args.resource_group, location=args.location,
            account_name=pulumi.Output.from_input(args.suffix).apply(
                lambda s: storage_account_name(args.cluster, f"{s}v")),
            kind="FileStorage", sku=azure.storage.SkuArgs(
                name=azure.storage.SkuName.PREMIUM_ZRS if args.production else azure.storage.SkuName.PREMIUM_LRS),
            enable_https_traffic_only=False, minimum_tls_version="TLS1_2", allow_blob_public_access=False,
            allow_shared_key_access=False, public_network_access="Enabled",
            network_rule_set=azure.storage.NetworkRuleSetArgs(
                default_action=azure.storage.DefaultAction.DENY, bypass="None", ip_rules=[],
                virtual_network_rules=[azure.storage.VirtualNetworkRuleArgs(virtual_network_resource_id=subnet,
                                                                            action=azure.storage.Action.ALLOW)
                                       for subnet in args.node_subnet_ids]),
            tags=args.tags, opts=protect)
        azure.storage.FileShare(
            f"{name}-share", resource_group_name=args.resource_group, account_name=account.name,
            share_name=SHARE, enabled_protocols="NFS", root_squash="NoRootSquash", share_quota=args.quota_gib,
            opts=protect)
        self.account_name = account.name
        self.host = account.name.apply(file_host)
        self.export = account.name.apply(export_path)
        self.register_outputs({"accountName": self.account_name, "host": self.host, "export": self.export})
