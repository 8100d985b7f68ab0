"""Deploy and destroy order as rules of the dependency graph. Pure: graph in, problems out.

The Pulumi engine creates a resource only after everything it depends on, and on
`pulumi destroy` deletes it before everything it depends on. A node group that boots
before what its nodes read (a policy, a parameter, a route to the internet) strands
its first nodes; a permission that depends on the group is deleted before the group's
nodes have drained. So, for every node group of the graph:

AWS (`aws:autoscaling/group:Group`)
- its instance profile and role, every inline policy and attached policy of that role
  (lifecycle grants on other groups aside), the lifecycle grants on this group (of any
  role), the log groups its role writes to, the SSM parameters the stack keeps for its
  nodes (managers: all of `/swarmstack/<cluster>/`, the TLS material included), and
  the route table associations and routes of its subnets are (transitive)
  dependencies of the group: created before it, deleted after it;
- none of those depends on the group (it would be deleted before the nodes drain);
- the group's delete timeout (`customTimeouts.delete`, the provider's 10 minutes when
  unset) is at least its longest drain heartbeat plus the time an instance takes to
  shut down.

Azure (`azure-native:compute:VirtualMachineScaleSet`)
- every role assignment of the scale set's identities, the Key Vault secrets those
  assignments are scoped to, and its subnet with the subnet's NAT gateway are
  dependencies of the scale set;
- every Key Vault secret depends on a role assignment that lets the deploying
  principal delete it through the data plane (Key Vault Secrets Officer or
  Administrator on the vault), so that the grant outlives the secrets on destroy.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterator
from typing import Any

from swarmstack.engine.graph import Graph, Resource

ASG = "aws:autoscaling/group:Group"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
PROFILE = "aws:iam/instanceProfile:InstanceProfile"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
PARAMETER = "aws:ssm/parameter:Parameter"
ROUTE = "aws:ec2/route:Route"
ROUTE_ASSOCIATION = "aws:ec2/routeTableAssociation:RouteTableAssociation"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"

SCALE_SET = "azure-native:compute:VirtualMachineScaleSet"
IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
SECRET = "azure-native:keyvault:Secret"
VAULT = "azure-native:keyvault:Vault"
SUBNET = "azure-native:network:Subnet"
NAT_GATEWAY = "azure-native:network:NatGateway"
CLIENT_CONFIG = "azure-native:authorization:getClientConfig"

LIFECYCLE_ACTIONS = ("autoscaling:CompleteLifecycleAction", "autoscaling:RecordLifecycleActionHeartbeat")
PROVIDER_DELETE_TIMEOUT = 600
"""pulumi-aws deletes a group within 10 minutes unless `customTimeouts.delete` says otherwise."""
SHUTDOWN_MARGIN = 300
"""Seconds an instance may take to shut down once its drain hook is completed."""
KEY_VAULT_DATA_DELETERS = {
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",  # Key Vault Secrets Officer
    "00482a5a-887f-4fb3-b363-3b7fe8e74483",  # Key Vault Administrator
}


def problems(graph: Graph) -> list[str]:
    """Every deploy- or destroy-order problem of the graph, one sentence each."""
    return [*_aws(graph), *_azure(graph)]


# ------------------------------------------------------------------ helpers

def _label(resource: Resource) -> str:
    return f"{resource.type.split(':')[-1]} '{resource.name}'"


def _document(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    try:
        parsed = json.loads(str(value))
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in _as_list(document.get("Statement")) if isinstance(s, dict)]


def lifecycle_scopes(policy: Resource) -> list[str]:
    """The group ARNs (patterns) on which an inline policy grants lifecycle actions."""
    scopes: list[str] = []
    for statement in _statements(_document(policy.inputs.get("policy"))):
        actions = [str(a) for a in _as_list(statement.get("Action"))]
        if any(a in LIFECYCLE_ACTIONS for a in actions):
            scopes += [str(r) for r in _as_list(statement.get("Resource"))]
    return scopes


def _by_output(graph: Graph, type_: str, key: str, value: Any) -> list[Resource]:
    return [r for r in graph.of_type(type_) if value not in (None, "") and
            (r.outputs.get(key) == value or (key == "id" and r.id == value))]


def _tag(group: Resource, key: str) -> str | None:
    for tag in _as_list(group.inputs.get("tags")):
        if isinstance(tag, dict) and tag.get("key") == key:
            return str(tag.get("value"))
    return None


def seconds(duration: str) -> int:
    """A Go duration as Pulumi's custom timeouts take it (`20m`, `1h30m`, `90s`). Pure."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|m|s)", duration)
    if not parts or "".join(a + u for a, u in parts) != duration:
        raise ValueError(f"'{duration}' is not a duration such as 20m or 1h")
    return int(sum(float(a) * {"h": 3600, "m": 60, "s": 1}[u] for a, u in parts))


# ------------------------------------------------------------------ AWS

def _template_of(graph: Graph, group: Resource) -> Resource | None:
    spec = group.inputs.get("launchTemplate") or {}
    template_id = spec.get("id")
    if not template_id:
        mixed = (group.inputs.get("mixedInstancesPolicy") or {}).get("launchTemplate") or {}
        template_id = (mixed.get("launchTemplateSpecification") or {}).get("launchTemplateId")
    found = _by_output(graph, LAUNCH_TEMPLATE, "id", template_id)
    return found[0] if found else None


def aws_needs(graph: Graph, group: Resource) -> Iterator[tuple[Resource, str]]:
    """What the nodes of `group` read or need from their first boot to their drain, and why."""
    group_arn = str(group.outputs.get("arn", ""))
    template = _template_of(graph, group)
    role_name = ""
    if template is not None:
        profile_arn = (template.inputs.get("iamInstanceProfile") or {}).get("arn")
        for profile in _by_output(graph, PROFILE, "arn", profile_arn):
            yield profile, "the nodes' instance profile"
            role_name = str(profile.inputs.get("role") or "")
    roles = _by_output(graph, ROLE, "name", role_name)
    for role in roles:
        yield role, "the nodes' role"
    role_keys = {role_name, *(r.id for r in roles)} - {""}
    inline_arns: list[str] = []
    for policy in graph.of_type(ROLE_POLICY):
        scopes = lifecycle_scopes(policy)
        on_this_group = any(fnmatch.fnmatchcase(group_arn, scope) for scope in scopes)
        if on_this_group:
            yield policy, "a grant to complete this group's lifecycle actions"
        elif policy.inputs.get("role") in role_keys and not scopes:
            yield policy, "an inline policy of the nodes' role"
            inline_arns.append(json.dumps(_document(policy.inputs.get("policy"))))
    for attachment in graph.of_type(ATTACHMENT):
        if attachment.inputs.get("role") in role_keys:
            yield attachment, "a policy attached to the nodes' role"
    written = "\n".join(inline_arns)
    for log_group in graph.of_type(LOG_GROUP):
        arn = str(log_group.outputs.get("arn", ""))
        if arn and f'"{arn}"' in written:
            yield log_group, "a log group the nodes write to"
    cluster, node_role = _tag(group, "swarmstack:cluster"), _tag(group, "swarmstack:role")
    if cluster:
        prefix = f"/swarmstack/{cluster}/"
        for parameter in graph.of_type(PARAMETER):
            name = str(parameter.inputs.get("name") or "")
            if name.startswith(prefix) and (node_role == "manager" or not name.startswith(prefix + "tls/")):
                yield parameter, "a parameter the nodes read at boot"
    subnets = set(_as_list(group.inputs.get("vpcZoneIdentifiers")))
    tables: set[str] = set()
    for association in graph.of_type(ROUTE_ASSOCIATION):
        if association.inputs.get("subnetId") in subnets:
            yield association, "the route table association of a node subnet"
            tables.add(str(association.inputs.get("routeTableId")))
    for route in graph.of_type(ROUTE):
        if route.inputs.get("routeTableId") in tables:
            yield route, "a route of a node subnet (the way out to install packages)"


def _aws(graph: Graph) -> Iterator[str]:
    for group in graph.of_type(ASG):
        before = graph.dependencies_of(group.urn)
        for needed, why in aws_needs(graph, group):
            if needed.urn not in before:
                yield (f"{_label(group)} does not depend on {_label(needed)} ({why}): its nodes may boot "
                       "before it exists, and on destroy it may go before the nodes have drained")
            elif graph.depends_on(needed.urn, group.urn):
                yield f"{_label(needed)} ({why}) depends on {_label(group)}: destroy deletes it before the nodes drain"
        for policy in graph.of_type(ROLE_POLICY):
            if graph.depends_on(policy.urn, group.urn) and lifecycle_scopes(policy):
                yield (f"{_label(policy)} grants lifecycle actions and depends on {_label(group)}: destroy deletes "
                       "it before the nodes have completed their drain hooks")
        hooks = [h for h in _as_list(group.inputs.get("initialLifecycleHooks")) if isinstance(h, dict)]
        heartbeats = [int(h.get("heartbeatTimeout") or 3600) for h in hooks
                      if h.get("lifecycleTransition") == "autoscaling:EC2_INSTANCE_TERMINATING"]
        if heartbeats:
            delete = group.custom_timeouts.get("delete")
            timeout = seconds(delete) if delete else PROVIDER_DELETE_TIMEOUT
            needed_s = max(heartbeats) + SHUTDOWN_MARGIN
            if timeout < needed_s:
                yield (f"{_label(group)} may take {needed_s} s to empty on destroy (drain heartbeat "
                       f"{max(heartbeats)} s + {SHUTDOWN_MARGIN} s to shut down) but its delete timeout is "
                       f"{timeout} s" + ("" if delete else " (the provider's default)"))


# ------------------------------------------------------------------ Azure

def _deployer(graph: Graph) -> str | None:
    for call in graph.invokes:
        if call.token == CLIENT_CONFIG:
            return str(call.result.get("objectId") or "") or None
    return None


def azure_needs(graph: Graph, scale_set: Resource) -> Iterator[tuple[Resource, str]]:
    """What the machines of `scale_set` read or need from their first boot."""
    identity_ids = set(_as_list((scale_set.inputs.get("identity") or {}).get("userAssignedIdentities")))
    principals = {str(i.outputs.get("principalId")) for i in graph.of_type(IDENTITY)
                  if i.id in identity_ids or i.outputs.get("id") in identity_ids}
    scopes: set[str] = set()
    for assignment in graph.of_type(ROLE_ASSIGNMENT):
        if assignment.inputs.get("principalId") in principals:
            yield assignment, "a role assignment of the machines' identity"
            scopes.add(str(assignment.inputs.get("scope")))
    for secret in graph.of_type(SECRET):
        if secret.id in scopes or secret.outputs.get("id") in scopes:
            yield secret, "a Key Vault secret the machines read"
    profile = scale_set.inputs.get("virtualMachineProfile") or {}
    for nic in _as_list((profile.get("networkProfile") or {}).get("networkInterfaceConfigurations")):
        for ip in _as_list((nic or {}).get("ipConfigurations")):
            subnet_id = ((ip or {}).get("subnet") or {}).get("id")
            for subnet in _by_output(graph, SUBNET, "id", subnet_id):
                yield subnet, "the machines' subnet"
                nat_id = (subnet.inputs.get("natGateway") or {}).get("id")
                for nat in _by_output(graph, NAT_GATEWAY, "id", nat_id):
                    yield nat, "the NAT gateway of the machines' subnet (the way out)"


def _azure(graph: Graph) -> Iterator[str]:
    for scale_set in graph.of_type(SCALE_SET):
        before = graph.dependencies_of(scale_set.urn)
        for needed, why in azure_needs(graph, scale_set):
            if needed.urn not in before:
                yield (f"{_label(scale_set)} does not depend on {_label(needed)} ({why}): its machines may "
                       "boot before it exists")
    deployer = _deployer(graph)
    for secret in graph.of_type(SECRET):
        vault_name = secret.inputs.get("vaultName")
        vaults = [v for v in graph.of_type(VAULT) if v.outputs.get("name") == vault_name
                  or v.inputs.get("vaultName") == vault_name]
        vault_ids = {v.id for v in vaults} | {str(v.outputs.get("id")) for v in vaults}
        grants = [a for a in graph.of_type(ROLE_ASSIGNMENT)
                  if a.inputs.get("principalId") == deployer and a.inputs.get("scope") in vault_ids
                  and str(a.inputs.get("roleDefinitionId", "")).rsplit("/", 1)[-1] in KEY_VAULT_DATA_DELETERS]
        if not grants:
            yield (f"{_label(secret)}: the deploying principal has no data-plane role on its vault (Key Vault "
                   "Secrets Officer), so `pulumi destroy` cannot delete it")
        elif not any(graph.depends_on(secret.urn, grant.urn) for grant in grants):
            yield (f"{_label(secret)} does not depend on {_label(grants[0])}: on destroy the deployer's grant "
                   "may go first and the secret can no longer be deleted")
