"""The blob container the managers back the swarm's raft state up to: only the managers can
write it and nobody else can read it. The Azure side of `components/aws/backup.py`.

A backup is the manager's `/var/lib/docker/swarm`; with autolock off it holds the raft
log's encryption keys (secrets, configs, join tokens, the CA key): as sensitive as a
manager's disk. The container `backups` lives in the cluster's storage account
(`store.py`), which already refuses public blob access, shared keys and plain HTTP,
and encrypts at rest (Microsoft-managed keys):

- blob versioning on the account, so an overwritten or deleted backup is kept as a version;
- the container's public access `None`;
- a lifecycle management policy: a backup is deleted `retentionDays` after it was written,
  a version NONCURRENT_DAYS after it was made;
- the managers' identity is Storage Blob Data Contributor on this container only (data
  plane, Entra ID tokens); workers get nothing. Reading a backup needs a data role: an
  Owner or Contributor of the subscription has none until they grant themselves one,
  which the activity log records.

`pulumi destroy`: the container lives in the stack's storage account, which goes with
the stack. A production stack protects the container, so a destroy stops there until
someone has copied the backups out and run `pulumi state unprotect` (docs/azure.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native as azure

from components.azure.identity import role_definition

CONTAINER = "backups"
"""The container's name (the managers' `backup_store` ends in it)."""
PREFIX = "swarm/"
"""Where the managers keep their backups in the container, as on AWS."""
NONCURRENT_DAYS = 3
"""Days a previous version of a backup stays before the lifecycle policy deletes it."""
BLOB_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
"""Storage Blob Data Contributor: read, write and delete blobs (and their versions)."""


def management_policy(retention_days: int) -> azure.storage.ManagementPolicySchemaArgsDict:
    """The account's lifecycle management policy: base blobs under the container's
    backups deleted after `retention_days`, versions after NONCURRENT_DAYS. Pure."""
    if retention_days < 1:
        raise ValueError(f"retention_days {retention_days} must be at least 1")
    return {"rules": [{
        "name": "expire-backups", "enabled": True, "type": "Lifecycle",
        "definition": {
            "filters": {"blob_types": ["blockBlob"], "prefix_match": [f"{CONTAINER}/{PREFIX}"]},
            "actions": {
                "base_blob": {"delete": {"days_after_modification_greater_than": retention_days}},
                "version": {"delete": {"days_after_creation_greater_than": NONCURRENT_DAYS}},
            },
        },
    }]}


def store_url(blob_endpoint: str) -> str:
    """The container's URL from the account's blob endpoint (`https://<account>.blob.core.windows.net/`). Pure."""
    return f"{blob_endpoint.rstrip('/')}/{CONTAINER}"


@dataclass(frozen=True)
class BackupContainerArgs:
    """What the backup container needs."""

    resource_group: pulumi.Input[str]
    """Name of the cluster's resource group."""
    account_name: pulumi.Input[str]
    """The cluster's storage account (`SwarmStore.storage_account`)."""
    blob_endpoint: pulumi.Input[str]
    """The account's blob endpoint."""
    subscription_id: pulumi.Input[str]
    """For role definition ids."""
    manager_principal: pulumi.Input[str]
    """Object id of the managers' identity: the only one granted the container."""
    retention_days: int
    """Days a backup is kept (`backup.retentionDays`)."""
    production: bool
    """Production: the container is protected, so `pulumi destroy` cannot delete the backups unnoticed."""


class BackupContainer(pulumi.ComponentResource):
    """A private, versioned blob container with an expiry policy, writable by the managers only."""

    store: pulumi.Output[str]
    """`https://<account>.blob.core.windows.net/backups`: the managers' `backup_store`."""
    container_id: pulumi.Output[str]

    def __init__(self, name: str, args: BackupContainerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("swarmstack:azure:BackupContainer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        service = azure.storage.BlobServiceProperties(
            f"{name}-blob-service", resource_group_name=args.resource_group, account_name=args.account_name,
            blob_services_name="default", is_versioning_enabled=True, opts=child)
        container = azure.storage.BlobContainer(
            f"{name}-container", resource_group_name=args.resource_group, account_name=args.account_name,
            container_name=CONTAINER, public_access=azure.storage.PublicAccess.NONE,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[service], protect=args.production))
        lifecycle = azure.storage.ManagementPolicy(
            f"{name}-lifecycle", resource_group_name=args.resource_group, account_name=args.account_name,
            management_policy_name="default", policy=management_policy(args.retention_days),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[service]))
        grant = azure.authorization.RoleAssignment(
            f"{name}-managers", principal_id=args.manager_principal, principal_type="ServicePrincipal",
            role_definition_id=role_definition(args.subscription_id, BLOB_CONTRIBUTOR), scope=container.id,
            description="swarm managers: write and read the raft backups", opts=child)
        self.container_id = container.id
        # Ready once versioning, expiry and the grant are in place.
        self.store = pulumi.Output.all(args.blob_endpoint, lifecycle.id, grant.id).apply(lambda v: store_url(v[0]))
        self.register_outputs({"store": self.store})
