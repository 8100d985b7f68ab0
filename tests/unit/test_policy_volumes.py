"""Shared volumes: each rule passes the program's own resources and fails one mutation with
its exact message."""

from __future__ import annotations

from typing import Any

from policy_testing import messages, resource

from policies import volumes

EFS = "aws:efs/fileSystem:FileSystem"
MOUNT_TARGET = "aws:efs/mountTarget:MountTarget"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
GROUP = "aws:ec2/securityGroup:SecurityGroup"
ACCOUNT = "azure-native:storage:StorageAccount"
SHARE = "azure-native:storage:FileShare"


def file_system(**changes: Any) -> Any:
    props = {"creationToken": "swarmstack-prod-volumes", "encrypted": True,
             "kmsKeyId": "arn:aws:kms:eu-west-1:123456789012:key/1", "throughputMode": "elastic"}
    props.update(changes)
    return resource(EFS, "prod-volumes-fs", props)


def test_an_encrypted_file_system_passes() -> None:
    assert messages(volumes.efs_encrypted, file_system()) == []


def test_an_unencrypted_file_system_is_refused() -> None:
    expected = ["file system prod-volumes-fs: encrypted is not true, so its files (and their backups) are stored "
                "unencrypted; EFS encrypts only when the file system is created"]
    assert messages(volumes.efs_encrypted, file_system(encrypted=False, kmsKeyId=None)) == expected
    unset = file_system()
    del unset.inputs["encrypted"], unset.outputs["encrypted"]
    assert messages(volumes.efs_encrypted, unset) == expected


def nfs_world(**rule: Any) -> list[Any]:
    """The mount targets' group, its rule from the managers, one more rule, and a mount target."""
    group = resource(GROUP, "prod-volumes-nfs", {"name": "swarmstack-prod-volumes-nfs", "vpcId": "vpc-1"})
    gid = group.outputs["id"]
    managers = {"securityGroupId": gid, "ipProtocol": "tcp", "fromPort": 2049.0, "toPort": 2049.0,
                "referencedSecurityGroupId": "sg-managers"}
    extra = {"securityGroupId": gid, "ipProtocol": "tcp", "fromPort": 2049.0, "toPort": 2049.0, **rule}
    return [group, resource(INGRESS, "prod-volumes-in-managers-tcp-2049", managers),
            resource(INGRESS, "prod-volumes-extra", extra),
            resource(MOUNT_TARGET, "prod-volumes-a", {"fileSystemId": "fs-1", "subnetId": "subnet-a",
                                                      "securityGroups": [gid]})]


def test_mount_targets_reached_from_node_groups_pass() -> None:
    assert messages(volumes.nfs_not_open_to_cidrs, *nfs_world(referencedSecurityGroupId="sg-workers")) == []


def test_a_mount_target_group_open_to_any_range_is_refused() -> None:
    for cidr in ("0.0.0.0/0", "10.20.0.0/16"):
        assert messages(volumes.nfs_not_open_to_cidrs, *nfs_world(cidrIpv4=cidr)) == [
            f"prod-volumes-extra: ingress lets {cidr} reach NFS (2049/tcp) on the shared volumes' mount targets, "
            "which have no other access control"]
    everything = nfs_world(cidrIpv4="0.0.0.0/0", ipProtocol="-1", fromPort=None, toPort=None)
    assert len(messages(volumes.nfs_not_open_to_cidrs, *everything)) == 1


def test_ranges_on_other_ports_or_groups_are_not_this_rules_business() -> None:
    assert messages(volumes.nfs_not_open_to_cidrs, *nfs_world(cidrIpv4="0.0.0.0/0", fromPort=443.0,
                                                              toPort=443.0)) == []
    other = resource(INGRESS, "elsewhere", {"securityGroupId": "sg-lb", "ipProtocol": "tcp", "fromPort": 2049.0,
                                            "toPort": 2049.0, "cidrIpv4": "0.0.0.0/0"})
    assert messages(volumes.nfs_not_open_to_cidrs, *nfs_world(referencedSecurityGroupId="sg-workers"), other) == []


def nfs_account(**rules: Any) -> list[Any]:
    rule_set = {"defaultAction": "Deny", "bypass": "None", "ipRules": [], "virtualNetworkRules": [
        {"virtualNetworkResourceId": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/"
                                     "virtualNetworks/v/subnets/managers", "action": "Allow"}]}
    rule_set.update(rules)
    account = resource(ACCOUNT, "prod-volumes-account", {
        "resourceGroupName": "rg", "accountName": "prodabc123v", "kind": "FileStorage",
        "sku": {"name": "Premium_ZRS"}, "enableHttpsTrafficOnly": False, "networkRuleSet": rule_set},
        {"name": "prodabc123v"})
    share = resource(SHARE, "prod-volumes-share", {"resourceGroupName": "rg", "accountName": "prodabc123v",
                                                   "shareName": "volumes", "enabledProtocols": "NFS",
                                                   "shareQuota": 100.0})
    return [account, share]


def test_an_nfs_account_closed_to_all_but_subnets_passes() -> None:
    assert messages(volumes.nfs_account_network_closed, *nfs_account()) == []


def test_an_nfs_account_open_by_default_is_refused() -> None:
    assert messages(volumes.nfs_account_network_closed, *nfs_account(defaultAction="Allow")) == [
        "storage account prod-volumes-account holds an NFS share but its network default action is Allow: any "
        "network that reaches the account may mount it"]
    account, share = nfs_account()
    del account.outputs["networkRuleSet"]
    assert messages(volumes.nfs_account_network_closed, account, share) == [
        "storage account prod-volumes-account holds an NFS share but its network default action is Allow: any "
        "network that reaches the account may mount it"]


def test_an_nfs_account_admitting_an_address_range_is_refused() -> None:
    assert messages(volumes.nfs_account_network_closed, *nfs_account(
        ipRules=[{"iPAddressOrRange": "203.0.113.0/24", "action": "Allow"}])) == [
        "storage account prod-volumes-account holds an NFS share and its networkRuleSet.ipRules[0] admits "
        "203.0.113.0/24; admit the node subnets only (virtualNetworkRules)"]
