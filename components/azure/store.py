"""Where the swarm keeps what its nodes share, and who may read it.

- A storage table holds the init marker: the first manager to insert the row
  `swarm/leader` (an insert fails if the row exists, so exactly one wins) runs
  `swarm init` and records its address there. Workers may read the table, managers
  may write it.
- A second table, `leaving`, is where a worker that Azure is about to delete
  writes its swarm node id (workers cannot drain themselves); the leader drains it.
  Both roles may write it, and nothing else of the store.
- A Key Vault (RBAC, soft delete, purge protection in production) holds the join
  tokens and the Docker API's CA certificate, server certificate and server key (the
  managers read them on every converge run, so renewed certificates reach running
  managers). Access is granted per secret: workers may read the worker token and
  nothing else; managers may write both tokens and read the Docker API's three. The
  token secrets start as placeholders the first manager replaces.
- The certificates' secrets carry their certificate's end as `exp`. Key Vault publishes
  `Microsoft.KeyVault.SecretNearExpiry` 30 days before it (the window in which `pulumi
  up` re-issues a leaf), and an Event Grid subscription per certificate turns it into
  an Azure Monitor alert for the cluster's action group. Key Vault publishes only for
  secret versions written after the subscription exists, so the secrets wait for it.
  An expired secret still reads (Key Vault does not enforce `exp` on a secret's get).
- The deploying principal is Key Vault Secrets Officer on the vault. ARM creates
  secrets (`vaults/secrets` PUT is a control-plane call) but refuses to delete them
  (`DisallowedResourceOperation`), so the provider deletes them through the vault's
  data plane, which needs a data role: without it `pulumi destroy` fails. Every secret
  depends on that grant, so it is created first and deleted last.
- The vault and storage account names (`key_vault_name`, `storage_account_name`, pure:
  globally unique and tightly formed) end in the stack's random suffix, drawn again
  when a stack is re-created: a soft-deleted (or purge-protected) vault of a destroyed
  stack of the same name never blocks the new one.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_azure_native as azure

from components.azure.identity import role_definition
from components.common.cert_expiry import expiry_epoch, warning_message
from components.common.names import KEY_VAULT_NAME

SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
SECRETS_OFFICER = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
TABLE_CONTRIBUTOR = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
TABLE_READER = "76199698-9eea-4c19-bc75-cec21354c6b6"

MANAGER_TOKEN = "swarm-manager-token"
WORKER_TOKEN = "swarm-worker-token"
SERVER_KEY = "docker-server-key"
CA_CERT = "docker-ca-cert"
SERVER_CERT = "docker-server-cert"
NEAR_EXPIRY = "Microsoft.KeyVault.SecretNearExpiry"
TABLE = "swarm"
LEAVING_TABLE = "leaving"
"""Workers that Azure is about to delete sign up here; the leader drains them."""
PLACEHOLDER = "pending"
"""The value a token secret has until the first manager writes the real token."""


STORAGE_ACCOUNT_NAME = re.compile(r"^[a-z0-9]{3,24}$")
"""3 to 24 lowercase letters and digits."""
SUFFIX = re.compile(r"^[a-z0-9]{4,8}$")


def _check_suffix(suffix: str) -> None:
    if not SUFFIX.match(suffix):
        raise ValueError(f"suffix {suffix!r} must be 4 to 8 lowercase letters and digits")


def key_vault_name(cluster: str, suffix: str) -> str:
    """`<cluster>-<suffix>`, the cluster part shortened and cleaned so the whole is a valid
    vault name (globally unique, tightly formed). Pure."""
    _check_suffix(suffix)
    base = re.sub(r"-+", "-", cluster).strip("-")
    base = base[: 24 - len(suffix) - 1].rstrip("-")
    if not base or not base[0].isalpha():
        base = "kv" + base
        base = base[: 24 - len(suffix) - 1].rstrip("-")
    name = f"{base}-{suffix}"
    assert KEY_VAULT_NAME.match(name), name
    return name


def storage_account_name(cluster: str, suffix: str) -> str:
    """`<cluster letters and digits><suffix>`, at most 24 lowercase characters (globally unique). Pure."""
    _check_suffix(suffix)
    base = re.sub(r"[^a-z0-9]", "", cluster.lower())[: 24 - len(suffix)]
    name = f"{base}{suffix}"
    if len(name) < 3:
        name = f"sw{name}"
    assert STORAGE_ACCOUNT_NAME.match(name), name
    return name


@dataclass(frozen=True)
class StoredTls:
    """What the managers read to serve the Docker API."""

    ca_cert_pem: pulumi.Input[str]
    server_cert_pem: pulumi.Input[str]
    server_key_pem: pulumi.Input[str]
    """A secret."""
    expiries: dict[str, pulumi.Input[str]]
    """`ca` and `server`: when each certificate ends (RFC 3339)."""


@dataclass(frozen=True)
class SwarmStoreArgs:
    """What the store needs to know."""

    cluster: str
    """Cluster name (the start of the vault and storage account names)."""
    suffix: pulumi.Input[str]
    """Random lowercase letters and digits that make the global names unique."""
    resource_group: pulumi.Input[str]
    """Name of the cluster's resource group."""
    location: str
    """Azure region."""
    tenant_id: pulumi.Input[str]
    """The directory the vault trusts."""
    subscription_id: pulumi.Input[str]
    """For role definition ids."""
    production: bool
    """Production: purge protection, 90 days of soft delete, zone-redundant storage."""
    manager_principal: pulumi.Input[str]
    """Object id of the managers' identity."""
    worker_principal: pulumi.Input[str]
    """Object id of the workers' identity."""
    deployer_principal: pulumi.Input[str] | None
    """Object id of whoever runs `pulumi up`/`destroy` (`get_client_config`): may manage
    the vault's secrets through the data plane, which deleting them needs."""
    docker_api: StoredTls | None
    """The Docker API's certificates and server key, or None without the API."""
    action_group_ids: Sequence[pulumi.Input[str]]
    """Who hears that a certificate nears its end (components/azure/observability.py)."""
    tags: dict[str, str]
    """Tags for every resource."""


class SwarmStore(pulumi.ComponentResource):
    """The init marker table and the vault of join tokens, with per-secret access."""

    vault_name: pulumi.Output[str]
    vault_uri: pulumi.Output[str]
    vault_id: pulumi.Output[str]
    storage_account: pulumi.Output[str]
    table_endpoint: pulumi.Output[str]
    blob_endpoint: pulumi.Output[str]

    def __init__(self, name: str, args: SwarmStoreArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("swarmstack:azure:SwarmStore", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        suffix = pulumi.Output.from_input(args.suffix)
        vault = azure.keyvault.Vault(
            f"{name}-vault", resource_group_name=args.resource_group, location=args.location,
            vault_name=suffix.apply(lambda s: key_vault_name(args.cluster, s)),
            properties=azure.keyvault.VaultPropertiesArgs(
                tenant_id=args.tenant_id, sku=azure.keyvault.SkuArgs(family="A", name=azure.keyvault.SkuName.STANDARD),
                enable_rbac_authorization=True, enable_soft_delete=True,
                soft_delete_retention_in_days=90 if args.production else 7,
                enable_purge_protection=True if args.production else None,
                public_network_access="Enabled"),
            tags=args.tags, opts=pulumi.ResourceOptions(parent=self, protect=args.production))
        account = azure.storage.StorageAccount(
            f"{name}-storage", resource_group_name=args.resource_group, location=args.location,
            account_name=suffix.apply(lambda s: storage_account_name(args.cluster, s)),
            kind="StorageV2", sku=azure.storage.SkuArgs(
                name=azure.storage.SkuName.STANDARD_ZRS if args.production else azure.storage.SkuName.STANDARD_LRS),
            allow_blob_public_access=False, allow_shared_key_access=False, default_to_o_auth_authentication=True,
            minimum_tls_version="TLS1_2", enable_https_traffic_only=True, tags=args.tags, opts=child)
        table = azure.storage.Table(f"{name}-table", resource_group_name=args.resource_group,
                                    account_name=account.name, table_name=TABLE, opts=child)
        leaving = azure.storage.Table(f"{name}-leaving", resource_group_name=args.resource_group,
                                      account_name=account.name, table_name=LEAVING_TABLE, opts=child)

        # The provider deletes secrets through the data plane (ARM refuses): the deployer
        # needs a data role there, granted before any secret and revoked after the last.
        officer: list[pulumi.Resource] = []
        if args.deployer_principal is not None:
            officer.append(azure.authorization.RoleAssignment(
                f"{name}-deployer-secrets", principal_id=args.deployer_principal,
                role_definition_id=role_definition(args.subscription_id, SECRETS_OFFICER), scope=vault.id,
                description="whoever deploys the stack: manage (and on destroy delete) the swarm's secrets",
                opts=child))
        after_officer = pulumi.ResourceOptions(parent=self, depends_on=officer)
        secrets = {}
        for secret in (MANAGER_TOKEN, WORKER_TOKEN):
            secrets[secret] = azure.keyvault.Secret(
                f"{name}-{secret}", resource_group_name=args.resource_group, vault_name=vault.name,
                secret_name=secret, properties=azure.keyvault.SecretPropertiesArgs(
                    value=pulumi.Output.secret(PLACEHOLDER), content_type="text/plain"),
                # The first manager writes the real token; the program must not put the placeholder back.
                opts=pulumi.ResourceOptions(parent=self, ignore_changes=["properties"], depends_on=officer))
        if args.docker_api is not None:
            tls_args = args.docker_api
            secrets[SERVER_KEY] = azure.keyvault.Secret(
                f"{name}-{SERVER_KEY}", resource_group_name=args.resource_group, vault_name=vault.name,
                secret_name=SERVER_KEY, properties=azure.keyvault.SecretPropertiesArgs(
                    value=pulumi.Output.secret(tls_args.server_key_pem), content_type="application/x-pem-file"),
                opts=after_officer)
            watched = self._expiry_alerts(name, args, vault)
            for secret, cert, pem in ((CA_CERT, "ca", tls_args.ca_cert_pem),
                                      (SERVER_CERT, "server", tls_args.server_cert_pem)):
                secrets[secret] = azure.keyvault.Secret(
                    f"{name}-{secret}", resource_group_name=args.resource_group, vault_name=vault.name,
                    secret_name=secret, properties=azure.keyvault.SecretPropertiesArgs(
                        value=pem, content_type="application/x-pem-file",
                        attributes=azure.keyvault.SecretAttributesArgs(
                            expires=pulumi.Output.from_input(tls_args.expiries[cert]).apply(expiry_epoch))),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[*officer, *watched]))

        grants = [
            ("managers", MANAGER_TOKEN, SECRETS_OFFICER, args.manager_principal),
            ("managers", WORKER_TOKEN, SECRETS_OFFICER, args.manager_principal),
            ("workers", WORKER_TOKEN, SECRETS_USER, args.worker_principal),
        ]
        for secret in (SERVER_KEY, CA_CERT, SERVER_CERT):
            if secret in secrets:
                grants.append(("managers", secret, SECRETS_USER, args.manager_principal))
        for role, secret, definition, principal in grants:
            azure.authorization.RoleAssignment(
                f"{name}-{role}-{secret}", principal_id=principal, principal_type="ServicePrincipal",
                role_definition_id=role_definition(args.subscription_id, definition), scope=secrets[secret].id,
                description=f"swarm {role}: {secret}", opts=child)
        for role, definition, principal in (("managers", TABLE_CONTRIBUTOR, args.manager_principal),
                                            ("workers", TABLE_READER, args.worker_principal)):
            azure.authorization.RoleAssignment(
                f"{name}-{role}-table", principal_id=principal, principal_type="ServicePrincipal",
                role_definition_id=role_definition(args.subscription_id, definition), scope=table.id,
                description=f"swarm {role}: the init marker table", opts=child)
        for role, principal in (("managers", args.manager_principal), ("workers", args.worker_principal)):
            azure.authorization.RoleAssignment(
                f"{name}-{role}-leaving", principal_id=principal, principal_type="ServicePrincipal",
                role_definition_id=role_definition(args.subscription_id, TABLE_CONTRIBUTOR), scope=leaving.id,
                description=f"swarm {role}: nodes about to be deleted", opts=child)

        self.vault_name = vault.name
        self.vault_id = vault.id
        self.vault_uri = vault.properties.vault_uri
        self.storage_account = account.name
        self.table_endpoint = account.primary_endpoints.table
        self.blob_endpoint = account.primary_endpoints.blob
        self.register_outputs({"vaultName": self.vault_name, "storageAccount": self.storage_account})

    def _expiry_alerts(self, name: str, args: SwarmStoreArgs,
                       vault: azure.keyvault.Vault) -> list[pulumi.Resource]:
        """The vault's events, and an alert per certificate 30 days before its end."""
        child = pulumi.ResourceOptions(parent=self)
        tls_args = args.docker_api
        assert tls_args is not None
        topic = azure.eventgrid.SystemTopic(
            f"{name}-vault-events", resource_group_name=args.resource_group, location=args.location,
            system_topic_name=f"{name}-vault-events", source=vault.id, topic_type="Microsoft.KeyVault.vaults",
            tags=args.tags, opts=child)
        made: list[pulumi.Resource] = [topic]
        for secret, cert in ((CA_CERT, "ca"), (SERVER_CERT, "server")):
            message = pulumi.Output.from_input(tls_args.expiries[cert]).apply(
                functools.partial(warning_message, args.cluster, cert))
            made.append(azure.eventgrid.SystemTopicEventSubscription(
                f"{name}-{secret}-expiry", resource_group_name=args.resource_group, system_topic_name=topic.name,
                event_subscription_name=f"{secret}-near-expiry",
                # Azure Monitor alerts take CloudEvents 1.0 only.
                event_delivery_schema="CloudEventSchemaV1_0",
                filter=azure.eventgrid.EventSubscriptionFilterArgs(
                    included_event_types=[NEAR_EXPIRY], subject_begins_with=secret, subject_ends_with=secret),
                destination=azure.eventgrid.MonitorAlertEventSubscriptionDestinationArgs(
                    endpoint_type="MonitorAlert", severity="Sev2", description=message,
                    action_groups=list(args.action_group_ids) or None),
                opts=child))
        return made
