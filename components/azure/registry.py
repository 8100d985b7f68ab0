"""The cluster's private registry on Azure: one Azure Container Registry, pulled from by the
nodes' managed identities (`AcrPull` on the registry) and by nobody without Entra ID.

- SKU `Standard`: Entra (managed identity) authentication, 100 GiB included and webhooks, at a
  quarter of Premium's price. Premium adds what this cluster does not use: private endpoints
  and firewall rules (the nodes reach the registry through their NAT or public addresses, as
  they reach Key Vault and Table storage), geo-replication and customer-managed keys. Images
  are encrypted at rest with Microsoft-managed keys on every SKU.
- The admin user is off: no shared user name and password exists to leak; anonymous pull is
  off: an image is only pulled with an Entra token.
- `AcrPull` (pull only: no push, no delete) for both node identities, scoped to this
  registry, not its resource group. Nodes pull without a stored password through the
  registry tool the custom data carries (`userdata/templates/node/registry.sh.j2`, run by
  `swarmstack-registry.timer` at boot and every 30 minutes): root's Docker CLI asks it, as the
  credential helper `docker-credential-swarmstack`, and it exchanges the node identity's
  Entra token for an ACR refresh token; on the swarm's leader it re-sends fresh credentials
  to the registry's services (the swarm never refreshes them; ACR's last a few hours). The
  scale sets wait for this component (registry and role assignments) before they boot.

Repositories appear on first push; `keepImages` and `immutableTags` are ECR settings
(the config refuses them on Azure).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi
import pulumi_azure_native as azure

from components.azure.identity import role_definition

ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
"""The built-in `AcrPull` role: pull images, nothing else."""
SKU = "Standard"
REGISTRY_NAME = re.compile(r"^[a-zA-Z0-9]{5,50}$")
"""5 to 50 letters and digits, globally unique (the login server is `<name>.azurecr.io`)."""


def registry_name(cluster: str, suffix: str) -> str:
    """`<cluster letters and digits>reg<suffix>`: 5 to 50 letters and digits. Pure."""
    name = f"{re.sub(r'[^a-z0-9]', '', cluster.lower())}reg{suffix}"[:50]
    if not REGISTRY_NAME.match(name):
        raise ValueError(f"registry name {name!r} must be 5 to 50 letters and digits")
    return name


@dataclass(frozen=True)
class RegistryArgs:
    """Where the registry goes and who pulls from it."""

    cluster: str
    """The cluster's name (the registry's name starts with it)."""
    suffix: pulumi.Input[str]
    """The stack's random suffix: registry names are global across Azure."""
    resource_group: pulumi.Input[str]
    """Name of the cluster's resource group."""
    location: str
    """Azure region."""
    subscription_id: pulumi.Input[str]
    """For the role definition id."""
    pullers: dict[str, pulumi.Input[str]]
    """Role (`managers`, `workers`) → the principal id of the identity that pulls."""
    tags: dict[str, str]
    """Tags for the registry."""


class Registry(pulumi.ComponentResource):
    """An Azure Container Registry with the admin user and anonymous pull off, and `AcrPull`
    for the node identities."""

    address: pulumi.Output[str]
    """The login server, `<name>.azurecr.io`."""
    registry_name: pulumi.Output[str]
    """The registry's name (what `az acr login --name` takes)."""

    def __init__(self, name: str, args: RegistryArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("swarmstack:azure:Registry", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        registry = azure.containerregistry.Registry(
            name, registry_name=pulumi.Output.from_input(args.suffix).apply(lambda s: registry_name(args.cluster, s)),
            resource_group_name=args.resource_group, location=args.location, sku={"name": SKU},
            admin_user_enabled=False, anonymous_pull_enabled=False, tags=args.tags, opts=child)
        for role, principal in args.pullers.items():
            azure.authorization.RoleAssignment(
                f"{name}-{role}-pull", principal_id=principal, principal_type="ServicePrincipal",
                role_definition_id=role_definition(args.subscription_id, ACR_PULL), scope=registry.id,
                description=f"swarm {role}: pull images from the cluster's registry", opts=child)
        self.address = registry.login_server
        self.registry_name = registry.name
        self.register_outputs({"address": self.address})
