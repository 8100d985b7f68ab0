"""Who the nodes are to Azure: a user-assigned managed identity per role."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native as azure

from swarmstack.config.tags import ROLE_TAG

ROLES = ("managers", "workers")
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"


def role_definition(subscription_id: pulumi.Input[str], guid: str) -> pulumi.Output[str]:
    """The full id of a built-in role definition."""
    return pulumi.Output.concat("/subscriptions/", subscription_id,
                                "/providers/Microsoft.Authorization/roleDefinitions/", guid)


@dataclass(frozen=True)
class IdentityArgs:
    """Where the identities go."""

    resource_group: pulumi.Input[str]
    """Name of the cluster's resource group."""
    resource_group_id: pulumi.Input[str]
    """Id of the cluster's resource group: the managers may read it (to see which machines exist)."""
    subscription_id: pulumi.Input[str]
    """For role definition ids."""
    location: str
    """Azure region."""
    tags: dict[str, str]
    """Tags for every resource."""


class Identities(pulumi.ComponentResource):
    """One identity for the managers and one for all worker pools.

    What each may do with the swarm's secrets is granted next to the secrets
    (`store.py`); here only the managers' Reader on the cluster's own resource
    group, so that they can tell a machine that is gone from one that is down.
    """

    ids: dict[str, pulumi.Output[str]]
    """Resource id by role (for the scale sets' `identity`)."""
    principal_ids: dict[str, pulumi.Output[str]]
    """Object id by role (for role assignments)."""
    client_ids: dict[str, pulumi.Output[str]]
    """Client id by role (what a node asks IMDS for a token with)."""

    def __init__(self, name: str, args: IdentityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("swarmstack:azure:Identities", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.ids, self.principal_ids, self.client_ids = {}, {}, {}
        for role in ROLES:
            identity = azure.managedidentity.UserAssignedIdentity(
                f"{name}-{role}", resource_group_name=args.resource_group, location=args.location,
                resource_name_=f"{name}-{role}", tags={**args.tags, ROLE_TAG: role}, opts=child)
            self.ids[role] = identity.id
            self.principal_ids[role] = identity.principal_id
            self.client_ids[role] = identity.client_id
        azure.authorization.RoleAssignment(
            f"{name}-managers-reader", principal_id=self.principal_ids["managers"], principal_type="ServicePrincipal",
            role_definition_id=role_definition(args.subscription_id, READER), scope=args.resource_group_id,
            description="swarm managers: see the cluster's own machines", opts=child)
        self.register_outputs({"ids": self.ids, "principalIds": self.principal_ids})
