"""Shared volumes (`sharedVolumes`): the file system is encrypted at rest, and NFS reaches
it from the swarm's own networks only. NFS has no user authentication in either cloud as
Docker's local driver mounts it, so who can reach port 2049 is who can read and write."""

from __future__ import annotations

from typing import Any

from pulumi_policy import EnforcementLevel, ResourceValidationArgs, StackValidationArgs

from ._flows import flows
from ._props import as_list, dig, is_unknown, need, plain, truthy
from ._rules import Report, of_types, resource_rule, stack_rule

EFS = "aws:efs/fileSystem:FileSystem"
MOUNT_TARGET = "aws:efs/mountTarget:MountTarget"
STORAGE_ACCOUNT = "azure-native:storage:StorageAccount"
FILE_SHARE = "azure-native:storage:FileShare"
NFS_PORT = 2049


def _efs_encrypted(args: ResourceValidationArgs, report: Report) -> None:
    props = plain(args.props)
    if not truthy(need(props.get("encrypted", False), "encrypted")):
        report(f"file system {args.name}: encrypted is not true, so its files (and their backups) are stored "
               "unencrypted; EFS encrypts only when the file system is created")


efs_encrypted = resource_rule(
    name="efs-encrypted",
    resource_types=(EFS,),
    description="EFS file systems are encrypted at rest.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_efs_encrypted,
    remediation_steps="Set encrypted: true and kmsKeyId: the cluster's key (this replaces the file system: copy "
                      "the data out first).",
)


def _mount_target_groups(args: StackValidationArgs) -> set[str]:
    groups: set[str] = set()
    for target in of_types(args.resources, MOUNT_TARGET):
        for group in as_list(need(plain(target.props).get("securityGroups"), target.name, "securityGroups")):
            groups.add(str(need(group, target.name, "securityGroups[]")))
    return groups


def _nfs_not_open_to_cidrs(args: StackValidationArgs, report: Report) -> None:
    groups = _mount_target_groups(args)
    if not groups:
        args.not_applicable("the stack has no EFS mount targets")
    for resource in args.resources:
        props = plain(resource.props)
        group = props.get("securityGroupId") if "securityGroupId" in props else props.get("id")
        if is_unknown(group) or str(group) not in groups:
            continue
        for flow in flows(resource.resource_type, props):
            if not flow.covers(NFS_PORT, ("tcp",)):
                continue
            for source in flow.sources:
                if source.kind in ("cidr", "prefix-list", "unknown"):
                    report(f"{resource.name}: {flow.where} lets {source} reach NFS ({NFS_PORT}/tcp) on the shared "
                           "volumes' mount targets, which have no other access control", resource.urn)


nfs_not_open_to_cidrs = stack_rule(
    name="nfs-not-open-to-cidrs",
    description="The groups of EFS mount targets admit NFS (2049) from security groups only, never from an "
                "address range.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_nfs_not_open_to_cidrs,
    remediation_steps="Replace the range with referencedSecurityGroupId: the managers' and workers' groups.",
)


def _nfs_accounts(args: StackValidationArgs) -> set[str]:
    names: set[str] = set()
    for share in of_types(args.resources, FILE_SHARE):
        props = plain(share.props)
        if need(props.get("enabledProtocols", "SMB"), share.name, "enabledProtocols") == "NFS":
            names.add(str(need(props.get("accountName"), share.name, "accountName")))
    return names


def _nfs_account_network_closed(args: StackValidationArgs, report: Report) -> None:
    accounts = _nfs_accounts(args)
    if not accounts:
        args.not_applicable("the stack has no NFS file shares")
    for resource in of_types(args.resources, STORAGE_ACCOUNT):
        props: dict[str, Any] = plain(resource.props)
        if str(props.get("name", props.get("accountName"))) not in accounts:
            continue
        action = dig(props, "networkRuleSet", "defaultAction", default="Allow")  # Azure's default: Allow
        if need(action, resource.name, "networkRuleSet.defaultAction") != "Deny":
            report(f"storage account {resource.name} holds an NFS share but its network default action is "
                   f"{action}: any network that reaches the account may mount it", resource.urn)
        rules = need(dig(props, "networkRuleSet", "ipRules", default=[]), resource.name, "networkRuleSet.ipRules")
        for index, rule in enumerate(as_list(rules)):
            value = dig(rule, "iPAddressOrRange", default=dig(rule, "ipAddressOrRange", default="(unknown)"))
            report(f"storage account {resource.name} holds an NFS share and its networkRuleSet.ipRules[{index}] "
                   f"admits {value}; admit the node subnets only (virtualNetworkRules)", resource.urn)


nfs_account_network_closed = stack_rule(
    name="nfs-account-network-closed",
    description="A storage account with an NFS share denies by default and admits subnets, not address ranges.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_nfs_account_network_closed,
    remediation_steps="Set networkRuleSet: {defaultAction: Deny, ipRules: [], virtualNetworkRules: the node "
                      "subnets (with the Microsoft.Storage service endpoint)}.",
)

RESOURCE_POLICIES = [efs_encrypted]
STACK_POLICIES = [nfs_not_open_to_cidrs, nfs_account_network_closed]
SCANNER_EQUIVALENTS = {
    "efs-encrypted": "CKV_AWS_42, AWS-0037",
    "nfs-not-open-to-cidrs": "none",
    "nfs-account-network-closed": "CKV_AZURE_35",
}
"""Scanner ids of the same checks, merged into `pack.SCANNER_EQUIVALENTS`."""
