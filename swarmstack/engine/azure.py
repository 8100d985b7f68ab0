"""The Azure model: our own semantic checks of `azure-native:*` resources.

There is no moto for Azure, so this module is the cloud. It keeps every resource the
program creates under a realistic ARM id and refuses, with the message Azure would
give in spirit, what Azure Resource Manager would refuse:

- every reference resolves: any `/subscriptions/…` string in the inputs (a subnet, an
  NSG, a backend pool, an identity, a role assignment's scope) names a resource, or a
  sub-resource (a load balancer's pool, probe or frontend), that exists in the model;
  every `resourceGroupName` names a resource group; role definitions are built-ins;
- address spaces: subnets inside their VNet's space and not overlapping each other;
- NSG rules: names unique, priorities 100..4096 unique per direction, ports valid,
  one kind of source and destination;
- load balancers: a probe for every rule, references within the same balancer;
- scale sets: SSH keys when password authentication is off, zones from "1", "2", "3",
  Spot settings complete, the terminate notification window PT5M..PT15M and not on
  Spot, NICs, ASGs and subnets consistent;
- names Azure checks: Key Vault (3-24, globally unique), storage account (3-24
  lowercase, globally unique), container registry (5-50 letters and digits, globally
  unique; anonymous pull not on Basic, no public access only on Premium), secret, table
  and blob container names, public IP DNS labels;
- blob storage: the blob service and lifecycle policy are the account's singletons
  named `default`; a container's public access is refused on an account that disallows
  it; lifecycle rules (1..100, unique names) filter block or append blobs, start every
  prefix with a container name and take whole days 0..99999;
- Log Analytics retention 30..730 days; data collection rules' flows name declared
  destinations.

What is not modelled (quotas, capacity, the data plane of Key Vault and Table
storage, the RBAC evaluation itself) is listed in `docs/azure.md`.

Handlers register with `@handles(type)` and invokes with `@answers(token)`, as in
`aws.py`; an unknown type or invoke raises `UnsupportedByEngine`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from swarmstack.engine.mocks import EngineError, UnsupportedByEngine, registrar

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
TENANT = "72f988bf-0000-0000-0000-000000000000"
DEPLOYER_OBJECT_ID = "11111111-1111-1111-1111-111111111111"

Outputs = dict[str, Any]
Handler = Callable[["AzureBackend", str, dict[str, Any]], tuple[str, Outputs]]
Invoke = Callable[["AzureBackend", dict[str, Any]], Outputs]

HANDLERS: dict[str, Handler] = {}
INVOKES: dict[str, Invoke] = {}

ZONES = ("1", "2", "3")
LOCATIONS = {
    # Public Azure regions (az account list-locations, physical ones).
    "australiacentral", "australiacentral2", "australiaeast", "australiasoutheast", "austriaeast",
    "belgiumcentral", "brazilsouth", "brazilsoutheast", "canadacentral", "canadaeast", "centralindia",
    "centralus", "chilecentral", "eastasia", "eastus", "eastus2", "francecentral", "francesouth",
    "germanynorth", "germanywestcentral", "indonesiacentral", "israelcentral", "italynorth", "japaneast",
    "japanwest", "jioindiacentral", "jioindiawest", "koreacentral", "koreasouth", "malaysiawest",
    "mexicocentral", "newzealandnorth", "northcentralus", "northeurope", "norwayeast", "norwaywest",
    "polandcentral", "qatarcentral", "southafricanorth", "southafricawest", "southcentralus", "southeastasia",
    "southindia", "spaincentral", "swedencentral", "switzerlandnorth", "switzerlandwest", "uaecentral",
    "uaenorth", "uksouth", "ukwest", "westcentralus", "westeurope", "westindia", "westus", "westus2", "westus3",
}

# Built-in role definitions the model knows, and the kinds of scope each makes sense on.
ROLE_DEFINITIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "acdd72a7-3385-48ef-bd42-f606fba81ae7": ("Reader", ("resourceGroups", "*")),
    "4633458b-17de-408a-b874-0445c86b69e6": ("Key Vault Secrets User", ("vaults", "secrets", "resourceGroups")),
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7": ("Key Vault Secrets Officer", ("vaults", "secrets", "resourceGroups")),
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": ("Storage Table Data Contributor",
                                             ("tables", "storageAccounts", "resourceGroups")),
    "76199698-9eea-4c19-bc75-cec21354c6b6": ("Storage Table Data Reader",
                                             ("tables", "storageAccounts", "resourceGroups")),
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": ("Storage Blob Data Contributor",
                                             ("containers", "storageAccounts", "resourceGroups")),
    "3913510d-42f4-4e42-8a64-420c390055eb": ("Monitoring Metrics Publisher", ("*",)),
    "9980e02c-c2be-4d73-94e8-173b1dc7cf3c": ("Virtual Machine Contributor",
                                             ("virtualMachineScaleSets", "resourceGroups")),
    "7f951dda-4ed3-4680-a7ca-43fe172d538d": ("AcrPull", ("registries", "resourceGroups")),
}
KEY_VAULT_NAME = re.compile(r"^[a-zA-Z](?!.*--)[a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$")
STORAGE_ACCOUNT_NAME = re.compile(r"^[a-z0-9]{3,24}$")
REGISTRY_NAME = re.compile(r"^[a-zA-Z0-9]{5,50}$")
REGISTRY_SKUS = ("Basic", "Standard", "Premium")
SECRET_NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,62}$")
CONTAINER_NAME = re.compile(r"^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$")
POLICY_RULE_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,254}[A-Za-z0-9])?$")
RESOURCE_GROUP_NAME = re.compile(r"^[-\w._()]{1,89}[-\w_()]$")
DNS_LABEL = re.compile(r"^[a-z][a-z0-9-]{1,61}[a-z0-9]$")
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
VM_SIZE = re.compile(r"^Standard_[A-Z][A-Za-z0-9_-]*$")
ISO_MINUTES = re.compile(r"^PT(\d+)M$")
ISO_DURATION = re.compile(r"^P(T(\d+H)?(\d+M)?|(\d+D))$")
SSH_KEY = re.compile(r"^(ssh-rsa|ssh-ed25519|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/=]+( .*)?\s*$")
RESERVED_ADMIN_NAMES = {"administrator", "admin", "user", "user1", "test", "user2", "test1", "user3",
                        "admin1", "1", "123", "a", "actuser", "adm", "admin2", "aspnet", "backup",
                        "console", "david", "guest", "john", "owner", "root", "server", "sql",
                        "support", "support_388945a0", "sys", "test2", "test3", "user4", "user5"}
NSG_PROTOCOLS = {"Tcp", "Udp", "Icmp", "Esp", "Ah", "*"}
SYSLOG_FACILITIES = {"auth", "authpriv", "cron", "daemon", "mark", "kern", "local0", "local1", "local2",
                     "local3", "local4", "local5", "local6", "local7", "lpr", "mail", "news", "syslog",
                     "user", "uucp", "*"}


handles = registrar(HANDLERS)
"""`@handles("aws:ec2/vpc:Vpc")`: the handler of one resource type."""
answers = registrar(INVOKES)
"""`@answers("aws:index/getRegion:getRegion")`: the answer to one invoke."""


@dataclass
class Stored:
    """One resource (or sub-resource) in the model."""

    type: str
    name: str
    id: str
    outputs: dict[str, Any]
    parent: Stored | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    """What handlers share that is not an output (e.g. the VNet of a subnet)."""

    @property
    def kind(self) -> str:
        """The last collection in the id: `virtualNetworks`, `subnets`, `secrets`."""
        return self.id.split("/")[-2]


STAND_IN_CIDR = "10.240.0.0/16"
"""The range of an existing VNet's offline stand-in (`AzureBackend.with_existing_network`)."""
VNET_ID = re.compile(r"/subscriptions/(?P<subscription>[^/]+)/resourceGroups/(?P<group>[^/]+)"
                     r"/providers/Microsoft\.Network/virtualNetworks/(?P<vnet>[^/]+)", re.IGNORECASE)


class AzureBackend:
    """One subscription, for one run of the program."""

    def __init__(self, location: str, subscription_id: str = SUBSCRIPTION, tenant_id: str = TENANT):
        if location not in LOCATIONS:
            raise EngineError(f"azure-native:location '{location}' is not an Azure region the model knows "
                              f"({', '.join(sorted(LOCATIONS))})")
        self.location = location
        self.subscription_id = subscription_id
        self.tenant_id = tenant_id
        self.index: dict[str, Stored] = {}
        """Every resource and sub-resource by lower-cased ARM id."""
        self.principals: set[str] = {DEPLOYER_OBJECT_ID}
        self.global_names: dict[str, set[str]] = {"vaults": set(), "storageAccounts": set(), "registries": set()}
        self.asg_vnets: dict[str, str] = {}
        """Which VNet the NICs of each ASG live in (all must share one)."""
        self.pool_vnets: dict[str, str] = {}
        """Which VNet the NICs of each load balancer backend pool live in (all must share one)."""

    # ------------------------------------------------------------ ids and lookups

    def rg_id(self, group: str) -> str:
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{group}"

    def arm_id(self, group: str, provider: str, *path: str) -> str:
        return f"{self.rg_id(group)}/providers/{provider}/" + "/".join(path)

    def add(self, stored: Stored) -> Stored:
        key = stored.id.lower()
        if key in self.index:
            raise EngineError(f"{stored.type} '{stored.name}': a resource with id {stored.id} exists already")
        self.index[key] = stored
        return stored

    def get(self, rid: str) -> Stored | None:
        return self.index.get(str(rid).lower())

    def resolve(self, rid: str, where: str, kinds: tuple[str, ...] = ()) -> Stored:
        found = self.get(rid)
        if found is None:
            raise EngineError(f"{where}: refers to {rid}, which does not exist")
        if kinds and found.kind not in kinds:
            raise EngineError(f"{where}: refers to {rid}, a {found.kind}, where a {' or '.join(kinds)} is required")
        return found

    def group(self, inputs: dict[str, Any], where: str) -> str:
        group = inputs.get("resourceGroupName")
        if not group:
            raise EngineError(f"{where}: resourceGroupName is required")
        if self.get(self.rg_id(group)) is None:
            raise EngineError(f"{where}: resource group '{group}' does not exist")
        return str(group)

    def where(self, type_: str, name: str) -> str:
        return f"{type_.split(':')[-1]} '{name}'"

    def location_of(self, inputs: dict[str, Any], where: str) -> str:
        location = str(inputs.get("location") or self.location)
        if location not in LOCATIONS:
            raise EngineError(f"{where}: location '{location}' is not an Azure region")
        return location

    def check_references(self, value: Any, where: str, path: str = "") -> None:
        """Every ARM id anywhere in the inputs must exist (role definitions: be built-ins)."""
        if isinstance(value, dict):
            for key, inner in value.items():
                self.check_references(inner, where, f"{path}.{key}" if path else key)
        elif isinstance(value, list):
            for index, inner in enumerate(value):
                self.check_references(inner, where, f"{path}[{index}]")
        elif isinstance(value, str) and value.lower().startswith("/subscriptions/"):
            if "/providers/microsoft.authorization/roledefinitions/" in value.lower():
                guid = value.rsplit("/", 1)[-1].lower()
                if guid not in ROLE_DEFINITIONS:
                    raise EngineError(f"{where}: {path} names role definition {guid}, not a built-in role "
                                      "the model knows")
                if not value.lower().startswith(f"/subscriptions/{self.subscription_id}/"):
                    raise EngineError(f"{where}: {path} names a role definition of another subscription")
                return
            if self.get(value) is None:
                raise EngineError(f"{where}: {path} refers to {value}, which does not exist")

    # ------------------------------------------------------------ the Backend protocol

    def create(self, type_: str, name: str, inputs: dict[str, Any]) -> tuple[str, Outputs]:
        handler = HANDLERS.get(type_)
        if handler is None:
            raise UnsupportedByEngine(f"{type_} '{name}': the engine has no model of this Azure resource type")
        rid, outputs = handler(self, name, inputs)
        return rid, {**inputs, **outputs, "id": rid}

    def invoke(self, token: str, args: dict[str, Any]) -> Outputs:
        fn = INVOKES.get(token)
        if fn is None:
            raise UnsupportedByEngine(f"{token}: the engine has no model of this Azure invoke")
        return fn(self, args)

    # ------------------------------------------------------------ fixtures

    @classmethod
    def with_existing_network(cls, location: str, vnet_id: str, subnet_ids: list[str]) -> AzureBackend:
        """A subscription holding a stand-in for the VNet a stack names as existing
        (`network.existing`), with its very ids, so that `swarmstack plan` can run a
        brownfield stack offline: the subscription, resource group, VNet and subnets the
        ids name, the VNet `STAND_IN_CIDR` with a /24 a subnet. Only the ids are the
        user's; `pulumi preview` reads the real VNet. Ids that are not a VNet's and its
        subnets' are left for the program to refuse."""
        found = VNET_ID.fullmatch(vnet_id)
        if found is None:
            return cls(location)
        backend = cls(location, subscription_id=found["subscription"])
        subnets: dict[str, str] = {}
        for subnet_id in subnet_ids:
            if subnet_id.lower().startswith(vnet_id.lower() + "/subnets/"):
                subnets.setdefault(subnet_id.rsplit("/", 1)[-1], f"10.240.{len(subnets)}.0/24")
        backend.seed_network(found["group"], found["vnet"], [STAND_IN_CIDR], subnets)
        return backend

    def seed_network(self, group: str, vnet: str, address_prefixes: list[str], subnets: dict[str, str],
                     location: str | None = None) -> tuple[str, dict[str, str]]:
        """Put an existing resource group, VNet and subnets in the model (the `existing` family's world)."""
        if self.get(self.rg_id(group)) is None:
            self.create("azure-native:resources:ResourceGroup", group,
                        {"resourceGroupName": group, "location": location or self.location})
        vid, _ = self.create("azure-native:network:VirtualNetwork", vnet, {
            "resourceGroupName": group, "virtualNetworkName": vnet, "location": location or self.location,
            "addressSpace": {"addressPrefixes": address_prefixes}})
        ids = {}
        for subnet, prefix in subnets.items():
            sid, _ = self.create("azure-native:network:Subnet", f"{vnet}-{subnet}", {
                "resourceGroupName": group, "virtualNetworkName": vnet, "subnetName": subnet,
                "addressPrefix": prefix})
            ids[subnet] = sid
        return vid, ids


# ---------------------------------------------------------------- helpers

def name_of(inputs: dict[str, Any], key: str, pulumi_name: str) -> str:
    """The Azure name: given explicitly, or auto-named from the Pulumi name as the provider does."""
    given = inputs.get(key)
    if given:
        return str(given)
    return f"{pulumi_name}{hashlib.sha256(pulumi_name.encode()).hexdigest()[:8]}"


def uid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(parts)))


def as_int(value: Any, where: str, what: str) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise EngineError(f"{where}: {what} must be a number, got {value!r}") from None
    if number != int(number):
        raise EngineError(f"{where}: {what} must be a whole number, got {value!r}")
    return int(number)


def ref_id(value: Any) -> str | None:
    """The id of a `{id: …}` sub-resource reference."""
    if isinstance(value, dict) and value.get("id"):
        return str(value["id"])
    return None


def port_range(value: Any, where: str, what: str) -> tuple[int, int] | None:
    """None for `*`; (low, high) otherwise; refuses anything outside 0..65535."""
    text = str(value if not isinstance(value, float) else int(value))
    if text == "*":
        return None
    match = re.fullmatch(r"(\d+)(?:-(\d+))?", text)
    if not match:
        raise EngineError(f"{where}: {what} '{text}' is not a port, a range a-b or *")
    low, high = int(match.group(1)), int(match.group(2) or match.group(1))
    if not 0 <= low <= high <= 65535:
        raise EngineError(f"{where}: {what} '{text}' is outside 0-65535 or runs backwards")
    return low, high


def network(text: Any, where: str, what: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(str(text), strict=True)
    except ValueError as err:
        raise EngineError(f"{where}: {what} '{text}' is not a valid IPv4 prefix ({err})") from None


def common(backend: AzureBackend, type_: str, name: str, inputs: dict[str, Any],
           arm_type: str, azure_name: str) -> Outputs:
    return {"name": azure_name, "type": arm_type, "provisioningState": "Succeeded",
            "azureApiVersion": "2024-05-01", "location": backend.location_of(inputs, backend.where(type_, name))}


# ---------------------------------------------------------------- invokes

@answers("azure-native:authorization:getClientConfig")
def _client_config(az: AzureBackend, args: dict[str, Any]) -> Outputs:
    return {"clientId": "22222222-2222-2222-2222-222222222222", "objectId": DEPLOYER_OBJECT_ID,
            "subscriptionId": az.subscription_id, "tenantId": az.tenant_id}


@answers("azure-native:network:getVirtualNetwork")
def _get_vnet(az: AzureBackend, args: dict[str, Any]) -> Outputs:
    where = f"getVirtualNetwork {args.get('virtualNetworkName')}"
    group = az.group(args, where)
    found = az.resolve(az.arm_id(group, "Microsoft.Network", "virtualNetworks", str(args["virtualNetworkName"])),
                       where)
    return dict(found.outputs)


@answers("azure-native:network:getSubnet")
def _get_subnet(az: AzureBackend, args: dict[str, Any]) -> Outputs:
    where = f"getSubnet {args.get('subnetName')}"
    group = az.group(args, where)
    found = az.resolve(az.arm_id(group, "Microsoft.Network", "virtualNetworks", str(args["virtualNetworkName"]),
                                 "subnets", str(args["subnetName"])), where)
    return dict(found.outputs)


# ---------------------------------------------------------------- resource groups

@handles("azure-native:resources:ResourceGroup")
def _resource_group(az: AzureBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    where = az.where("ResourceGroup", name)
    group = name_of(i, "resourceGroupName", name)
    if not RESOURCE_GROUP_NAME.match(group):
        raise EngineError(f"{where}: '{group}' is not a valid resource group name (1-90 letters, digits, "
                          "-_.() and not ending with a dot)")
    rid = az.rg_id(group)
    out = {**common(az, "ResourceGroup", name, i, "Microsoft.Resources/resourceGroups", group)}
    az.add(Stored("resourceGroups", group, rid, out))
    return rid, out


# ---------------------------------------------------------------- network

def _prefixes_of_vnet(vnet: Stored) -> list[ipaddress.IPv4Network]:
    return vnet.facts["space"]


def _place_subnet(az: AzureBackend, vnet: Stored, subnet_name: str, prefix: Any, where: str) -> ipaddress.IPv4Network:
    net = network(prefix, where, "addressPrefix")
    if not any(net.subnet_of(space) for space in _prefixes_of_vnet(vnet)):
        raise EngineError(f"{where}: subnet {net} is not inside the address space of VNet '{vnet.name}' "
                          f"({', '.join(map(str, _prefixes_of_vnet(vnet)))})")
    if net.prefixlen > 29:
        raise EngineError(f"{where}: subnet {net} is smaller than /29, Azure's smallest")
    for other_name, other in vnet.facts["subnets"].items():
        if other_name != subnet_name and net.overlaps(other):
            raise EngineError(f"{where}: subnet {net} overlaps subnet '{other_name}' ({other}) of VNet '{vnet.name}'")
    if subnet_name in vnet.facts["subnets"]:
        raise EngineError(f"{where}: VNet '{vnet.name}' has a subnet named '{subnet_name}' already")
    vnet.facts["subnets"][subnet_name] = net
    return net


def _subnet_outputs(az: AzureBackend, vnet: Stored, subnet_name: str, net: ipaddress.IPv4Network,
                    i: dict[str, Any], where: str) -> tuple[str, Outputs]:
    sid = f"{vnet.id}/subnets/{subnet_name}"
    for key in ("networkSecurityGroup", "natGateway", "routeTable"):
        if i.get(key) is not None:
            target = ref_id(i[key])
            kind = {"networkSecurityGroup": "networkSecurityGroups", "natGateway": "natGateways",
                    "routeTable": "routeTables"}[key]
            az.resolve(target or "", f"{where}: {key}", (kind,))
    for endpoint in i.get("serviceEndpoints") or []:
        service = endpoint.get("service", "")
        if not re.fullmatch(r"Microsoft\.[A-Za-z]+", service):
            raise EngineError(f"{where}: service endpoint '{service}' is not a Microsoft.* service")
    out = {"name": subnet_name, "type": "Microsoft.Network/virtualNetworks/subnets", "id": sid,
           "addressPrefix": str(net), "provisioningState": "Succeeded"}
    az.add(Stored("subnets", subnet_name, sid, {**i, **out}, parent=vnet,
                  facts={"vnet": vnet.id, "net": net, "location": vnet.outputs["location"]}))
    return sid, out


@handles("azure-native:network:VirtualNetwork")
def _vnet(az: AzureBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    where = az.where("VirtualNetwork", name)
    group = az.group(i, where)
    vnet_name = name_of(i, "virtualNetworkName", name)
    prefixes = (i.get("addressSpace") or {}).get("addressPrefixes") or []
    space = [network(p, where, "addressSpace prefix") for p in prefixes]
    if not space:
        raise EngineError(f"{where}: addressSpace.addressPrefixes needs at least one prefix")
    for a_index, a in enumerate(space):
        for b in space[a_index + 1:]:
            if a.overlaps(b):
                raise EngineError(f"{where}: address prefixes {a} and {b} overlap")
    rid = az.arm_id(group, "Microsoft.Network", "virtualNetworks", vnet_name)
    out = common(az, "VirtualNetwork", name, i, "Microsoft.Network/virtualNetworks", vnet_name)
    vnet = az.add(Stored("virtualNetworks", vnet_name, rid, {**i, **out, "id": rid},
                         facts={"space": space, "subnets": {}}))
    subnets = []
    for inline in i.get("subnets") or []:
        sub_name = str(inline.get("name") or "")
        net = _place_subnet(az, vnet, sub_name, inline.get("addressPrefix"), f"{where}: subnet '{sub_name}'")
        _, sub_out = _subnet_outputs(az, vnet, sub_name, net, inline, f"{where}: subnet '{sub_name}'")
        subnets.append({**inline, **sub_out})
    out["subnets"] = subnets
    out["resourceGuid"] = uid(rid)
    vnet.outputs.update(out)
    return rid, out


@handles("azure-native:network:Subnet")
def _subnet(az: AzureBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    where = az.where("Subnet", name)
    group = az.group(i, where)
    vnet_name = i.get("virtualNetworkName")
    if not vnet_name:
        raise EngineError(f"{where}: virtualNetworkName is required")
    vnet = az.resolve(az.arm_id(group, "Microsoft.Network", "virtualNetworks", str(vnet_name)), where)
    subnet_name = name_of(i, "subnetName", name)
    if i.get("addressPrefixes"):
        raise EngineError(f"{where}: use addressPrefix (one IPv4 prefix); the model does not take addressPrefixes")
    net = _place_subnet(az, vnet, subnet_name, i.get("addressPrefix"), where)
    return _subnet_outputs(az, vnet, subnet_name, net, i, where)


@handles("azure-native:network:ApplicationSecurityGroup")
def _asg(az: AzureBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    where = az.where("ApplicationSecurityGroup", name)
    group = az.group(i, where)
    asg_name = name_of(i, "applicationSecurityGroupName", name)
    rid = az.arm_id(group, "Microsoft.Network", "applicationSecurityGroups", asg_name)
    out = {**common(az, "ApplicationSecurityGroup", name, i, "Microsoft.Network/applicationSecurityGroups", asg_name),
           "resourceGuid": uid(rid)}
    az.add(Stored("applicationSecurityGroups", asg_name, rid, {**i, **out}))
    return rid, out


def _check_rule(az: AzureBackend, rule: dict[str, Any], where: str) -> None:
    for key, allowed in (("access", {"Allow", "Deny"}), ("direction", {"Inbound", "Outbound"}),
                         ("protocol", NSG_PROTOCOLS)):
        if rule.get(key) not in allowed:
            raise EngineError(f"{where}: {key} must be one of {', '.join(sorted(allowed))}, got {rule.get(key)!r}")
    priority = as_int(rule.get("priority"), where, "priority")
    if not 100 <= priority <= 4096:
        raise EngineError(f"{where}: priority {priority} is outside 100-4096")
    for side in ("source", "destination"):
        singles = [k for k in (f"{side}PortRange",) if rule.get(k) not in (None, "")]
        plurals = [k for k in (f"{side}PortRanges",) if rule.get(k)]
        if len(singles) + len(plurals) != 1:
            raise EngineError(f"{where}: exactly one of {side}PortRange or {side}PortRanges is required")
        for value in ([rule[singles[0]]] if singles else rule[plurals[0]]):
            span = port_range(value, where, f"{side} port")
            if rule["protocol"] in ("Esp", "Ah", "Icmp") and span is not None and side == "destination":
                raise EngineError(f"{where}: protocol {rule['protocol']} has no ports; use '*'")
        kinds = [k for k in (f"{side}AddressPrefix", f"{side}AddressPrefixes", f"{side}ApplicationSecurityGroups")
                 if rule.get(k) not in (None, "", [])]
        if len(kinds) != 1:
            raise EngineError(f"{where}: exactly one of {side}AddressPrefix, {side}AddressPrefixes or "
                              f"{side}ApplicationSecurityGroups is required, got {kinds or 'none'}")
        if kinds[0].endswith("ApplicationSecurityGroups"):
            for asg in rule[kinds[0]]:
                az.resolve(ref_id(asg) or "", f"{where}: {kinds[0]}", ("applicationSecurityGroups",))
        elif kinds[0].endswith("Prefixes"):
            for prefix in rule[kinds[0]]:
                if not re.fullmatch(r"[\d.]+(/\d+)?", str(prefix)):
                    raise EngineError(f"{where}: {kinds[0]} takes IP prefixes only, not the tag {prefix!r}")
                network(prefix if "/" in str(prefix) else f"{prefix}/32", where, kinds[0])
        else:
            value = str(rule[kinds[0]])
            if re.fullmatch(r"[\d.]+(/\d+)?", value):
                network(value if "/" in value else f"{value}/32", where, kinds[0])
            elif value != "*" and not re.fullmatch(r"[A-Za-z][A-Za-z0-9.]*", value):
                raise EngineError(f"{where}: {kinds[0]} {value!r} is neither a prefix, * nor a service tag")


@handles("azure-native:network:NetworkSecurityGroup")
def _nsg(az: AzureBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    where = az.where("NetworkSecurityGroup", name)
    group = az.group(i, where)
    nsg_name = name_of(i, "networkSecurityGroupName", name)
    names: set[str] = set()
    priorities: dict[tuple[str, int], str] = {}
    rules = []
    for rule in i.get("securityRules") or []:
        rule_name = str(rule.get("name") or "")
        rule_where = f"{where}: rule '{rule_name}'"
        if not rule_name or rule_name in names:
            raise EngineError(f"{rule_where}: rule names must be present and unique")
        names.add(rule_name)
        _check_rule(az, rule, rule_where)
        key = (rule["direction"], int(rule["priority"]))
        if key in priorities:
            raise EngineError(f"{rule_where}: priority {key[1]} ({key[0]}) is taken by rule '{priorities[key]}'; "
                              "priorities must be unique per direction")
        priorities[key] = rule_name
        rules.append({**rule, "id": f"{az.arm_id(group, 'Microsoft.Network', 'networkSecurityGroups', nsg_name)}"
                                    f"/securityRules/{rule_name}", "provisioningState": "Succeeded"})
    rid = az.arm_id(group, "Microsoft.Network", "networkSecurityGroups", nsg_name)
    out = {**common(az, "NetworkSecurityGroup", name, i, "Microsoft.Network/networkSecurityGroups", nsg_name),
           "securityRules": rules, "resourceGuid": uid(rid)}
    az.add(Stored("networkSecurityGroups", nsg_name, rid, {**i, **out}))
    return rid, out


def _zones(value: Any, where: str) -> list[str]:
    zones = [str(z) for z in value or []]
    for zone in zones:
        if zone not in ZONES:
            raise EngineError(f"{where}: zone {zone!r} is not one of 1, 2, 3")
    if len(set(zones)) != len(zones):
        raise EngineError(f"{where}: zones lists a zone twice")
    return zones


@handles("azure-native:network:PublicIPAddress")
def _public_ip(az: AzureBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    where = az.where("PublicIPAddress", name)
    group = az.group(i, where)
    ip_name = name_of(i, "publicIpAddressName", name)
    sku = (i.get("sku") or {}).get("name", "Basic")
    if sku != "Standard":
        raise EngineError(f"{where}: sku {sku!r}: Basic public IPs are retired; use Standard")
    if i.get("publicIPAllocationMethod") != "Static":
        raise EngineError(f"{where}: a Standard public IP must have publicIPAllocationMethod Static")
    _zones(i.get("zones"), where)
    rid = az.arm_id(group, "Microsoft.Network", "publicIPAddresses", ip_name)
    digest = hashlib.sha256(rid.lower().encode()).digest()
    out = {**common(az, "PublicIPAddress", name, i, "Microsoft.Network/publicIPAddresses", ip_name),
           "ipAddress": f"20.{digest[0]}.{digest[1]}.{max(digest[2], 1)}", "resourceGuid": uid(rid)}
    label = (i.get("dnsSettings") or {}).get("domainNameLabel")
    if label is not None:
        if not DNS_LABEL.match(str(label)):
            raise EngineError(f"{where}: domainNameLabel {label!r} must be 3-63 lowercase letters, digits and "
                              "dashes, starting with a letter")
        out["dnsSettings"] = {**i["dnsSettings"], "fqdn": f"{label}.{out['location']}.cloudapp.azure.com"}
    az.add(Stored("publicIPAddresses", ip_name, rid, {**i, **out}))
    return rid, out


@handles("azure-native:network:NatGateway")
def _nat_gateway(az: AzureBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    where = az.where("NatGateway", name)
    group = az.group(i, where)
    nat_name = name_of(i, "natGatewayName", name)
    if (i.get("sku") or {}).get("name") not in ("Standard", "StandardV2"):
        raise EngineError(f"{where}: sku.name must be Standard")
    if len(_zones(i.get("zones"), where)) > 1:
        raise EngineError(f"{where}: a NAT gateway lives in at most one zone")
    addresses = i.get("publicIpAddresses") or []
    if not addresses and not i.get("publicIpPrefixes"):
        raise EngineError(f"{where}: a NAT gateway needs at least one public IP address or prefix")
    for ref in addresses:
        az.resolve(ref_id(ref) or "", f"{where}: publicIpAddresses", ("publicIPAddresses",))
    minutes = i.get("idleTimeoutInMinutes")
    if minutes is not None and not 4 <= as_int(minutes, where, "idleTimeoutInMinutes") <= 120:
        raise EngineError(f"{where}: idleTimeoutInMinutes must be 4 to 120")
    rid = az.arm_id(group, "Microsoft.Network", "natGateways", nat_name)
    out = {**common(az, "NatGateway", name, i, "Microsoft.Network/natGateways", nat_name), "resourceGuid": uid(rid)}
    az.add(Stored("natGateways", nat_name, rid, {**i, **out}))
    return rid, out


@handles("azure-native:network:LoadBalancer")
def _load_balancer(az: AzureBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    where = az.where("LoadBalancer", name)
    group = az.group(i, where)
    lb_name = name_of(i, "loadBalancerName", name)
    if (i.get("sku") or {}).get("name") != "Standard":
        raise EngineError(f"{where}: sku.name must be Standard (Basic load balancers are retired)")
    rid = az.arm_id(group, "Microsoft.Network", "loadBalancers", lb_name)
    location = az.location_of(i, where)
    children: dict[str, dict[str, dict[str, Any]]] = {}

    def collect(key: str) -> list[dict[str, Any]]:
        items = []
        children[key] = {}
        for item in i.get(key) or []:
            child = str(item.get("name") or "")
            if not child or child in children[key]:
                raise EngineError(f"{where}: every item of {key} needs a unique name, got {child!r}")
            items.append({**item, "id": f"{rid}/{key}/{child}", "provisioningState": "Succeeded"})
            children[key][child] = items[-1]
        return items

    fronts = collect("frontendIPConfigurations")
    pools = collect("backendAddressPools")
    probes = collect("probes")
    rules = collect("loadBalancingRules")
    if not fronts:
        raise EngineError(f"{where}: a load balancer needs a frontend IP configuration")
    for front in fronts:
        fw = f"{where}: frontend '{front['name']}'"
        public, subnet = ref_id(front.get("publicIPAddress")), ref_id(front.get("subnet"))
        if bool(public) == bool(subnet):
            raise EngineError(f"{fw}: give a public IP address or a subnet (internal), exactly one")
        if public:
            pip = az.resolve(public, fw, ("publicIPAddresses",))
            if pip.outputs.get("location") != location:
                raise EngineError(f"{fw}: public IP is in {pip.outputs.get('location')}, the balancer in {location}")
            front["publicIPAddress"] = {"id": public}
        else:
            sub = az.resolve(subnet or "", fw, ("subnets",))
            net: ipaddress.IPv4Network = sub.facts["net"]
            if front.get("privateIPAddress"):
                address = ipaddress.IPv4Address(front["privateIPAddress"])
                if address not in net or int(address) - int(net.network_address) < 4:
                    raise EngineError(f"{fw}: private address {address} is not usable in subnet {net} "
                                      "(Azure keeps the first four addresses)")
            else:
                front["privateIPAddress"] = str(net.network_address + 4)
            front["privateIPAllocationMethod"] = front.get("privateIPAllocationMethod", "Dynamic")
        _zones(front.get("zones"), fw)
    for probe in probes:
        pw = f"{where}: probe '{probe['name']}'"
        if probe.get("protocol") not in ("Tcp", "Http", "Https"):
            raise EngineError(f"{pw}: protocol must be Tcp, Http or Https")
        port = as_int(probe.get("port"), pw, "port")
        if not 1 <= port <= 65535:
            raise EngineError(f"{pw}: port {port} is outside 1-65535")
        if probe["protocol"] != "Tcp" and not probe.get("requestPath"):
            raise EngineError(f"{pw}: an {probe['protocol']} probe needs a requestPath")
        if probe.get("intervalInSeconds") is not None and as_int(probe["intervalInSeconds"], pw, "interval") < 5:
            raise EngineError(f"{pw}: intervalInSeconds must be at least 5")
    seen: dict[tuple[str, str, int], str] = {}
    for rule in rules:
        rw = f"{where}: rule '{rule['name']}'"
        for key, collection in (("frontendIPConfiguration", "frontendIPConfigurations"),
                                ("backendAddressPool", "backendAddressPools"), ("probe", "probes")):
            target = ref_id(rule.get(key))
            if target is None:
                raise EngineError(f"{rw}: {key} is required" + (" (every rule has a health probe)"
                                                                 if key == "probe" else ""))
            if not target.lower().startswith(f"{rid}/{collection}/".lower()) or \
                    target.rsplit("/", 1)[-1] not in children[collection]:
                raise EngineError(f"{rw}: {key} {target} is not one of this load balancer's {collection}")
        if rule.get("protocol") not in ("Tcp", "Udp", "All"):
            raise EngineError(f"{rw}: protocol must be Tcp, Udp or All")
        for key in ("frontendPort", "backendPort"):
            port = as_int(rule.get(key), rw, key)
            if not (0 if rule["protocol"] == "All" else 1) <= port <= 65534:
                raise EngineError(f"{rw}: {key} {port} is outside 1-65534")
        front_id = ref_id(rule["frontendIPConfiguration"]) or ""
        key3 = (front_id.lower(), rule["protocol"], int(rule["frontendPort"]))
        if key3 in seen:
            raise EngineError(f"{rw}: frontend port {key3[2]}/{key3[1]} is used by rule '{seen[key3]}' already")
        seen[key3] = rule["name"]
        idle = rule.get("idleTimeoutInMinutes")
        if idle is not None and not 4 <= as_int(idle, rw, "idleTimeoutInMinutes") <= 100:
            raise EngineError(f"{rw}: idleTimeoutInMinutes must be 4 to 100")
    out = {**common(az, "LoadBalancer", name, i, "Microsoft.Network/loadBalancers", lb_name),
           "frontendIPConfigurations": fronts, "backendAddressPools": pools, "probes": probes,
           "loadBalancingRules": rules, "resourceGuid": uid(rid)}
    lb = az.add(Stored("loadBalancers", lb_name, rid, {**i, **out}))
    for key, items in (("frontendIPConfigurations", fronts), ("backendAddressPools", pools), ("probes", probes),
                       ("loadBalancingRules", rules)):
        for item in items:
            az.add(Stored(key, item["name"], item["id"], item, parent=lb))
    return rid, out


# ---------------------------------------------------------------- identity and access

@handles("azure-native:managedidentity:UserAssignedIdentity")
def _identity(az: AzureBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    where = az.where("UserAssignedIdentity", name)
    group = az.group(i, where)
    identity_name = name_of(i, "resourceName", name)
    if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_-]{2,127}", identity_name):
        raise EngineError(f"{where}: '{identity_name}' must be 3-128 letters, digits, - and _")
    rid = az.arm_id(group, "Microsoft.ManagedIdentity", "userAssignedIdentities", identity_name)
    out = {**common(az, "UserAssignedIdentity", name, i, "Microsoft.ManagedIdentity/userAssignedIdentities",
                    identity_name),
           "principalId": uid(rid, "principal"), "clientId": uid(rid, "client"), "tenantId": az.tenant_id}
    az.principals.add(out["principalId"])
    az.add(Stored("userAssignedIdentities", identity_name, rid, {**i, **out}))
    return rid, out


@handles("azure-native:authorization:RoleAssignment")
def _role_assignment(az: AzureBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    where = az.where("RoleAssignment", name)
    scope = str(i.get("scope") or "")
    target = az.resolve(scope, f"{where}: scope")
    definition = str(i.get("roleDefinitionId") or "")
    az.check_references(definition, where, "roleDefinitionId")
    guid = definition.rsplit("/", 1)[-1].lower()
    role, kinds = ROLE_DEFINITIONS[guid]
    if "*" not in kinds and target.kind not in kinds:
        raise EngineError(f"{where}: role '{role}' does not apply to a {target.kind} (scope {scope}); "
                          f"it applies to {', '.join(kinds)}")
    if target.kind in ("secrets", "vaults"):
        vault = target if target.kind == "vaults" else target.parent
        assert vault is not None
        if not (vault.outputs.get("properties") or {}).get("enableRbacAuthorization"):
            raise EngineError(f"{where}: vault '{vault.name}' uses access policies, not RBAC; "
                              "role assignments on it grant nothing")
    principal = str(i.get("principalId") or "")
    if principal not in az.principals:
        raise EngineError(f"{where}: principal {principal or '(none)'} is no identity the model knows")
    if i.get("principalType") not in (None, "ServicePrincipal", "User", "Group"):
        raise EngineError(f"{where}: principalType must be ServicePrincipal, User or Group")
    assignment = name_of(i, "roleAssignmentName", "") if i.get("roleAssignmentName") else uid(scope, guid, principal)
    if not GUID.match(assignment):
        raise EngineError(f"{where}: roleAssignmentName must be a GUID, got {assignment!r}")
    rid = f"{scope}/providers/Microsoft.Authorization/roleAssignments/{assignment}"
    for stored in az.index.values():
        if stored.kind == "roleAssignments" and stored.facts["key"] == (scope.lower(), guid, principal):
            raise EngineError(f"{where}: the same role is assigned to the same principal on this scope already "
                              f"('{stored.name}'); Azure refuses it with RoleAssignmentExists")
    out = {"name": assignment, "type": "Microsoft.Authorization/roleAssignments", "scope": scope,
           "roleDefinitionId": definition, "principalId": principal, "azureApiVersion": "2022-04-01"}
    az.add(Stored("roleAssignments", name, rid, {**i, **out}, facts={"key": (scope.lower(), guid, principal),
                                                                     "role": role}))
    return rid, out


@handles("azure-native:keyvault:Vault")
def _vault(az: AzureBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    where = az.where("Vault", name)
    group = az.group(i, where)
    vault_name = name_of(i, "vaultName", name)
    if not KEY_VAULT_NAME.match(vault_name):
        raise EngineError(f"{where}: vault name {vault_name!r} must be 3-24 letters, digits and single dashes, "
                          "starting with a letter and not ending with a dash")
    if vault_name.lower() in az.global_names["vaults"]:
        raise EngineError(f"{where}: vault name {vault_name!r} is taken (names are global across Azure)")
    props = dict(i.get("properties") or {})
    if props.get("tenantId") != az.tenant_id:
        raise EngineError(f"{where}: properties.tenantId {props.get('tenantId')!r} is not the subscription's "
                          f"tenant {az.tenant_id}")
    sku = props.get("sku") or {}
    if sku.get("family") != "A" or sku.get("name") not in ("standard", "premium"):
        raise EngineError(f"{where}: properties.sku must be family A, name standard or premium")
    if props.get("enableSoftDelete") is False:
        raise EngineError(f"{where}: soft delete cannot be turned off (mandatory since 2020)")
    if props.get("enablePurgeProtection") is False:
        raise EngineError(f"{where}: enablePurgeProtection can only be true or left out, never false")
    days = props.get("softDeleteRetentionInDays")
    if days is not None and not 7 <= as_int(days, where, "softDeleteRetentionInDays") <= 90:
        raise EngineError(f"{where}: softDeleteRetentionInDays must be 7 to 90")
    if not props.get("enableRbacAuthorization") and not props.get("accessPolicies"):
        raise EngineError(f"{where}: without RBAC authorization the vault needs access policies")
    az.check_references(i, where)
    rid = az.arm_id(group, "Microsoft.KeyVault", "vaults", vault_name)
    props["vaultUri"] = f"https://{vault_name}.vault.azure.net/"
    out = {**common(az, "Vault", name, i, "Microsoft.KeyVault/vaults", vault_name), "properties": props}
    az.global_names["vaults"].add(vault_name.lower())
    az.add(Stored("vaults", vault_name, rid, {**i, **out}))
    return rid, out


@handles("azure-native:keyvault:Secret")
def _secret(az: AzureBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    where = az.where("Secret", name)
    group = az.group(i, where)
    vault = az.resolve(az.arm_id(group, "Microsoft.KeyVault", "vaults", str(i.get("vaultName") or "")), where)
    secret_name = name_of(i, "secretName", name)
    if not SECRET_NAME.match(secret_name):
        raise EngineError(f"{where}: secret name {secret_name!r} must be 1-127 letters, digits and dashes")
    props = i.get("properties") or {}
    if props.get("value") in (None, ""):
        raise EngineError(f"{where}: properties.value is required")
    if len(str(props["value"]).encode()) > 25 * 1024:
        raise EngineError(f"{where}: a secret value is at most 25 KiB")
    attributes = props.get("attributes") or {}
    for key in ("expires", "notBefore"):
        if key in attributes and attributes[key] is not None:
            when = as_int(attributes[key], where, f"properties.attributes.{key}")
            if when <= 0:
                raise EngineError(f"{where}: properties.attributes.{key} is seconds since 1970 (UTC), got {when}")
    rid = f"{vault.id}/secrets/{secret_name}"
    uri = f"{vault.outputs['properties']['vaultUri']}secrets/{secret_name}"
    out = {"name": secret_name, "type": "Microsoft.KeyVault/vaults/secrets",
           "properties": {**{k: v for k, v in props.items() if k != "value"}, "secretUri": uri,
                          "secretUriWithVersion": f"{uri}/{uid(rid)[:32].replace('-', '')}"}}
    az.add(Stored("secrets", secret_name, rid, {**i, **out}, parent=vault))
    return rid, out


@handles("azure-native:containerregistry:Registry")
def _container_registry(az: AzureBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    """An Azure Container Registry: 5-50 letters and digits, unique across Azure (case-insensitive:
    the login server is the lower-cased name), a SKU, anonymous pull not on Basic."""
    where = az.where("Registry", name)
    group = az.group(i, where)
    registry = name_of(i, "registryName", name)
    if not REGISTRY_NAME.match(registry):
        raise EngineError(f"{where}: registry name {registry!r} must be 5-50 letters and digits")
    if registry.lower() in az.global_names["registries"]:
        raise EngineError(f"{where}: registry name {registry!r} is taken (names are global across Azure)")
    sku = (i.get("sku") or {}).get("name")
    if sku not in REGISTRY_SKUS:
        raise EngineError(f"{where}: sku.name {sku!r} must be one of {', '.join(REGISTRY_SKUS)}")
    if i.get("anonymousPullEnabled") and sku == "Basic":
        raise EngineError(f"{where}: anonymous pull needs the Standard or Premium SKU")
    if i.get("publicNetworkAccess") == "Disabled" and sku != "Premium":
        raise EngineError(f"{where}: publicNetworkAccess Disabled (private endpoints) needs the Premium SKU")
    az.check_references(i, where)
    rid = az.arm_id(group, "Microsoft.ContainerRegistry", "registries", registry)
    out = {**common(az, "Registry", name, i, "Microsoft.ContainerRegistry/registries", registry),
           "loginServer": f"{registry.lower()}.azurecr.io", "adminUserEnabled": bool(i.get("adminUserEnabled")),
           "anonymousPullEnabled": bool(i.get("anonymousPullEnabled"))}
    az.global_names["registries"].add(registry.lower())
    az.add(Stored("registries", registry, rid, {**i, **out}))
    return rid, out


@handles("azure-native:storage:StorageAccount")
def _storage_account(az: AzureBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    where = az.where("StorageAccount", name)
    group = az.group(i, where)
    account = name_of(i, "accountName", name)
    if not STORAGE_ACCOUNT_NAME.match(account):
        raise EngineError(f"{where}: storage account name {account!r} must be 3-24 lowercase letters and digits")
    if account in az.global_names["storageAccounts"]:
        raise EngineError(f"{where}: storage account name {account!r} is taken (names are global across Azure)")
    sku = (i.get("sku") or {}).get("name")
    if sku not in ("Standard_LRS", "Standard_ZRS", "Standard_GRS", "Standard_RAGRS", "Standard_GZRS",
                   "Standard_RAGZRS", "Premium_LRS", "Premium_ZRS"):
        raise EngineError(f"{where}: sku.name {sku!r} is not a storage SKU")
    if i.get("kind") not in ("StorageV2", "Storage", "BlobStorage", "BlockBlobStorage", "FileStorage"):
        raise EngineError(f"{where}: kind {i.get('kind')!r} is not a storage account kind")
    if i.get("kind") == "FileStorage" and not sku.startswith("Premium"):
        raise EngineError(f"{where}: a FileStorage account is premium only: sku.name Premium_LRS or Premium_ZRS, "
                          f"got {sku}")
    if i.get("kind") != "StorageV2" and sku.startswith("Standard"):
        raise EngineError(f"{where}: tables need a general-purpose account: kind StorageV2")
    if i.get("minimumTlsVersion") not in (None, "TLS1_0", "TLS1_1", "TLS1_2"):
        raise EngineError(f"{where}: minimumTlsVersion must be TLS1_0, TLS1_1 or TLS1_2")
    az.check_references(i, where)
    _check_network_rules(az, i.get("networkRuleSet"), where)
    rid = az.arm_id(group, "Microsoft.Storage", "storageAccounts", account)
    out = {**common(az, "StorageAccount", name, i, "Microsoft.Storage/storageAccounts", account),
           "primaryEndpoints": {s: f"https://{account}.{s}.core.windows.net/" for s in ("blob", "table", "queue",
                                                                                       "file")}}
    az.global_names["storageAccounts"].add(account)
    az.add(Stored("storageAccounts", account, rid, {**i, **out}))
    return rid, out


def _check_network_rules(az: AzureBackend, rules: Any, where: str) -> None:
    """A storage firewall: default action Allow or Deny, bypass from the documented set; each
    virtual network rule names a subnet whose `Microsoft.Storage` service endpoint is on (Azure
    refuses the rule otherwise) when the model holds its inputs."""
    if not rules:
        return
    if rules.get("defaultAction") not in ("Allow", "Deny"):
        raise EngineError(f"{where}: networkRuleSet.defaultAction must be Allow or Deny, "
                          f"got {rules.get('defaultAction')!r}")
    for part in str(rules.get("bypass", "AzureServices")).replace(" ", "").split(","):
        if part not in ("None", "Logging", "Metrics", "AzureServices"):
            raise EngineError(f"{where}: networkRuleSet.bypass '{part}' is not None, Logging, Metrics or AzureServices")
    for index, rule in enumerate(rules.get("virtualNetworkRules") or []):
        subnet = az.resolve(str(rule.get("virtualNetworkResourceId") or ""),
                            f"{where}: networkRuleSet.virtualNetworkRules[{index}]", ("subnets",))
        if rule.get("action", "Allow") != "Allow":
            raise EngineError(f"{where}: networkRuleSet.virtualNetworkRules[{index}].action must be Allow")
        endpoints = {e.get("service") for e in subnet.outputs.get("serviceEndpoints") or []}
        if "Microsoft.Storage" not in endpoints:
            raise EngineError(f"{where}: NetworkAclsValidationFailure: subnet {subnet.id} has no service endpoint "
                              "for Microsoft.Storage")


FILE_SHARE_NAME = re.compile(r"^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$")
"""3 to 63 lowercase letters, digits and single dashes, starting and ending with a letter or digit."""
PREMIUM_SHARE_GIB = (100, 102400)
"""A premium (FileStorage) share's provisioned size: 100 GiB to 100 TiB."""


@handles("azure-native:storage:FileShare")
def _file_share(az: AzureBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    """NFS shares only in premium FileStorage accounts with secure transfer off; quota within
    the premium range; root squash from the documented set."""
    where = az.where("FileShare", name)
    account = _account_of(az, i, where)
    share = name_of(i, "shareName", name)
    if not FILE_SHARE_NAME.match(share):
        raise EngineError(f"{where}: share name {share!r} must be 3-63 lowercase letters, digits and single dashes, "
                          "starting and ending with a letter or digit")
    protocol = i.get("enabledProtocols", "SMB")
    if protocol not in ("SMB", "NFS"):
        raise EngineError(f"{where}: enabledProtocols must be SMB or NFS, got {protocol!r}")
    premium = account.outputs.get("kind") == "FileStorage"
    if protocol == "NFS":
        if not premium:
            raise EngineError(f"{where}: NFS shares need a premium FileStorage account; '{account.name}' is "
                              f"{account.outputs.get('kind')}")
        if account.outputs.get("enableHttpsTrafficOnly", True) is not False:
            raise EngineError(f"{where}: NFS shares are unreachable while secure transfer is required: set "
                              f"enableHttpsTrafficOnly false on '{account.name}'")
    squash = i.get("rootSquash")
    if squash is not None and (protocol != "NFS" or squash not in ("NoRootSquash", "RootSquash", "AllSquash")):
        raise EngineError(f"{where}: rootSquash is for NFS shares: NoRootSquash, RootSquash or AllSquash, got "
                          f"{squash!r} on {protocol}")
    quota = as_int(i.get("shareQuota", PREMIUM_SHARE_GIB[0] if premium else 5120), where, "shareQuota")
    low, high = PREMIUM_SHARE_GIB if premium else (1, 102400)
    if not low <= quota <= high:
        raise EngineError(f"{where}: shareQuota {quota} GiB is outside {low}-{high} for a "
                          f"{'premium' if premium else 'standard'} share")
    rid = f"{account.id}/fileServices/default/shares/{share}"
    out = {"name": share, "type": "Microsoft.Storage/storageAccounts/fileServices/shares",
           "enabledProtocols": protocol, "shareQuota": quota}
    az.add(Stored("shares", share, rid, {**i, **out}, parent=account))
    return rid, out


@handles("azure-native:storage:Table")
def _table(az: AzureBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    where = az.where("Table", name)
    group = az.group(i, where)
    account = az.resolve(az.arm_id(group, "Microsoft.Storage", "storageAccounts", str(i.get("accountName") or "")),
                         where)
    table = name_of(i, "tableName", name)
    if not TABLE_NAME.match(table) or table.lower().startswith("tables"):
        raise EngineError(f"{where}: table name {table!r} must be 3-63 letters and digits, starting with a letter")
    rid = f"{account.id}/tableServices/default/tables/{table}"
    out = {"name": table, "type": "Microsoft.Storage/storageAccounts/tableServices/tables", "tableName": table}
    az.add(Stored("tables", table, rid, {**i, **out}, parent=account))
    return rid, out


def _account_of(az: AzureBackend, i: dict[str, Any], where: str) -> Stored:
    group = az.group(i, where)
    return az.resolve(az.arm_id(group, "Microsoft.Storage", "storageAccounts", str(i.get("accountName") or "")),
                      where)


@handles("azure-native:storage:BlobServiceProperties")
def _blob_service(az: AzureBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    where = az.where("BlobServiceProperties", name)
    account = _account_of(az, i, where)
    if i.get("blobServicesName", "default") != "default":
        raise EngineError(f"{where}: blobServicesName must be 'default' (one blob service per account), "
                          f"got {i.get('blobServicesName')!r}")
    for key in ("deleteRetentionPolicy", "containerDeleteRetentionPolicy"):
        policy = i.get(key) or {}
        if policy.get("enabled") and not 1 <= as_int(policy.get("days", 7), where, f"{key}.days") <= 365:
            raise EngineError(f"{where}: {key}.days must be 1 to 365")
    versioning = bool(i.get("isVersioningEnabled"))
    if versioning and account.outputs.get("isHnsEnabled"):
        raise EngineError(f"{where}: blob versioning is not supported on an account with a hierarchical namespace")
    rid = f"{account.id}/blobServices/default"
    out = {"name": "default", "type": "Microsoft.Storage/storageAccounts/blobServices"}
    az.add(Stored("blobServices", "default", rid, {**i, **out}, parent=account))
    account.facts["versioning"] = versioning
    return rid, out


@handles("azure-native:storage:BlobContainer")
def _blob_container(az: AzureBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    where = az.where("BlobContainer", name)
    account = _account_of(az, i, where)
    container = name_of(i, "containerName", name)
    if not CONTAINER_NAME.match(container):
        raise EngineError(f"{where}: container name {container!r} must be 3-63 lowercase letters, digits and "
                          "single dashes, starting and ending with a letter or digit")
    access = i.get("publicAccess", "None")
    if access not in ("None", "Blob", "Container"):
        raise EngineError(f"{where}: publicAccess must be None, Blob or Container, got {access!r}")
    if access != "None" and account.outputs.get("allowBlobPublicAccess") is False:
        raise EngineError(f"{where}: PublicAccessNotPermitted: public access is not permitted on storage account "
                          f"'{account.name}' (allowBlobPublicAccess is false)")
    rid = f"{account.id}/blobServices/default/containers/{container}"
    out = {"name": container, "type": "Microsoft.Storage/storageAccounts/blobServices/containers",
           "publicAccess": access}
    az.add(Stored("containers", container, rid, {**i, **out}, parent=account))
    return rid, out


def check_management_rule(rule: dict[str, Any]) -> str | None:
    """Why Azure Storage would refuse one lifecycle management rule, or None."""
    rule_name = str(rule.get("name") or "")
    if not POLICY_RULE_NAME.match(rule_name):
        return f"rule name {rule_name!r} must be 1-256 letters, digits and inner dashes"
    if rule.get("type", "Lifecycle") != "Lifecycle":
        return f"rule {rule_name}: type must be Lifecycle"
    definition = rule.get("definition") or {}
    filters = definition.get("filters") or {}
    blob_types = filters.get("blobTypes") or []
    if not blob_types or not set(blob_types) <= {"blockBlob", "appendBlob"}:
        return f"rule {rule_name}: filters.blobTypes must list blockBlob and/or appendBlob"
    prefixes = filters.get("prefixMatch") or []
    if len(prefixes) > 10:
        return f"rule {rule_name}: at most 10 prefixMatch entries"
    for prefix in prefixes:
        if not CONTAINER_NAME.match(str(prefix).split("/", 1)[0]):
            return f"rule {rule_name}: prefixMatch {prefix!r} must start with a container name"
    actions = definition.get("actions") or {}
    if not any(actions.get(k) for k in ("baseBlob", "snapshot", "version")):
        return f"rule {rule_name}: actions must have baseBlob, snapshot or version"
    kinds = ("baseBlob", "snapshot", "version")
    for target, action in ((t, a) for t in kinds for a in (actions.get(t) or {}).values()):
        for condition, days in (action or {}).items():
            if not condition.startswith("days"):
                continue
            if float(days) != int(float(days)) or not 0 <= int(float(days)) <= 99999:
                return f"rule {rule_name}: {target} {condition} {days} must be a whole number of days 0 to 99999"
    return None


@handles("azure-native:storage:ManagementPolicy")
def _management_policy(az: AzureBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    where = az.where("ManagementPolicy", name)
    account = _account_of(az, i, where)
    if i.get("managementPolicyName", "default") != "default":
        raise EngineError(f"{where}: managementPolicyName must be 'default', got {i.get('managementPolicyName')!r}")
    rules = (i.get("policy") or {}).get("rules") or []
    if not 1 <= len(rules) <= 100:
        raise EngineError(f"{where}: a policy has 1 to 100 rules, got {len(rules)}")
    names = [str(r.get("name") or "") for r in rules]
    if len(set(names)) != len(names):
        raise EngineError(f"{where}: rule names must be unique")
    for rule in rules:
        problem = check_management_rule(rule)
        if problem:
            raise EngineError(f"{where}: {problem}")
    rid = f"{account.id}/managementPolicies/default"
    out = {"name": "default", "type": "Microsoft.Storage/storageAccounts/managementPolicies"}
    az.add(Stored("managementPolicies", "default", rid, {**i, **out}, parent=account))
    return rid, out


# ---------------------------------------------------------------- logs and alerts

@handles("azure-native:operationalinsights:Workspace")
def _workspace(az: AzureBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    where = az.where("Workspace", name)
    group = az.group(i, where)
    workspace = name_of(i, "workspaceName", name)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]{2,61}[A-Za-z0-9]", workspace):
        raise EngineError(f"{where}: workspace name {workspace!r} must be 4-63 letters, digits and dashes")
    sku = (i.get("sku") or {}).get("name", "PerGB2018")
    if sku not in ("PerGB2018", "CapacityReservation", "LACluster"):
        raise EngineError(f"{where}: sku {sku!r} is not sold any more; use PerGB2018")
    days = as_int(i.get("retentionInDays", 30), where, "retentionInDays")
    if not 30 <= days <= 730:
        raise EngineError(f"{where}: retentionInDays {days} is outside 30-730")
    rid = az.arm_id(group, "Microsoft.OperationalInsights", "workspaces", workspace)
    out = {**common(az, "Workspace", name, i, "Microsoft.OperationalInsights/workspaces", workspace),
           "customerId": uid(rid, "customer"), "retentionInDays": days}
    az.add(Stored("workspaces", workspace, rid, {**i, **out}))
    return rid, out


@handles("azure-native:monitor:DataCollectionRule")
def _dcr(az: AzureBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    where = az.where("DataCollectionRule", name)
    group = az.group(i, where)
    rule = name_of(i, "dataCollectionRuleName", name)
    az.check_references(i, where)
    destinations = i.get("destinations") or {}
    declared = {str(d.get("name")) for d in destinations.get("logAnalytics") or []}
    if not declared:
        raise EngineError(f"{where}: destinations.logAnalytics needs at least one workspace")
    sources = i.get("dataSources") or {}
    streams: set[str] = set()
    for syslog in sources.get("syslog") or []:
        for facility in syslog.get("facilityNames") or []:
            if facility not in SYSLOG_FACILITIES:
                raise EngineError(f"{where}: syslog facility {facility!r} is not one of {sorted(SYSLOG_FACILITIES)}")
        streams.update(syslog.get("streams") or [])
    for counter in sources.get("performanceCounters") or []:
        # Data collection rule reference: samplingFrequencyInSeconds 1 to 1800 (the agent's
        # Linux counters, `Object(instance)\Counter`), streams Microsoft-Perf or Microsoft-InsightsMetrics.
        frequency = as_int(counter.get("samplingFrequencyInSeconds"), where, "samplingFrequencyInSeconds")
        if not 1 <= frequency <= 1800:
            raise EngineError(f"{where}: samplingFrequencyInSeconds {frequency} is not 1 to 1800")
        specifiers = counter.get("counterSpecifiers") or []
        if not specifiers or any(not re.fullmatch(r"[^\\()]+\([^()]*\)\\[^\\]+", str(s)) for s in specifiers):
            raise EngineError(f"{where}: counterSpecifiers {specifiers!r} must be Object(instance)\\Counter")
        for stream in counter.get("streams") or []:
            if stream not in ("Microsoft-Perf", "Microsoft-InsightsMetrics"):
                raise EngineError(f"{where}: performance counter stream {stream!r} is not Microsoft-Perf "
                                  "or Microsoft-InsightsMetrics")
        streams.update(counter.get("streams") or [])
    flows = i.get("dataFlows") or []
    if not flows:
        raise EngineError(f"{where}: dataFlows is required")
    for flow in flows:
        for dest in flow.get("destinations") or []:
            if dest not in declared:
                raise EngineError(f"{where}: data flow sends to {dest!r}, which is not a declared destination")
        for stream in flow.get("streams") or []:
            if stream not in streams:
                raise EngineError(f"{where}: data flow stream {stream!r} comes from no data source")
    rid = az.arm_id(group, "Microsoft.Insights", "dataCollectionRules", rule)
    out = {**common(az, "DataCollectionRule", name, i, "Microsoft.Insights/dataCollectionRules", rule),
           "immutableId": "dcr-" + uid(rid).replace("-", "")}
    az.add(Stored("dataCollectionRules", rule, rid, {**i, **out}))
    return rid, out


@handles("azure-native:monitor:DataCollectionRuleAssociation")
def _dcr_association(az: AzureBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    where = az.where("DataCollectionRuleAssociation", name)
    target = az.resolve(str(i.get("resourceUri") or ""), f"{where}: resourceUri")
    if target.kind not in ("virtualMachineScaleSets", "virtualMachines"):
        raise EngineError(f"{where}: resourceUri is a {target.kind}; associate machines or scale sets")
    az.resolve(str(i.get("dataCollectionRuleId") or ""), f"{where}: dataCollectionRuleId", ("dataCollectionRules",))
    association = name_of(i, "associationName", name)
    rid = f"{target.id}/providers/Microsoft.Insights/dataCollectionRuleAssociations/{association}"
    out = {"name": association, "type": "Microsoft.Insights/dataCollectionRuleAssociations"}
    az.add(Stored("dataCollectionRuleAssociations", association, rid, {**i, **out}, parent=target))
    return rid, out


@handles("azure-native:monitor:ScheduledQueryRule")
def _scheduled_query(az: AzureBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    where = az.where("ScheduledQueryRule", name)
    group = az.group(i, where)
    rule = name_of(i, "ruleName", name)
    scopes = i.get("scopes") or []
    if not scopes:
        raise EngineError(f"{where}: scopes is required")
    az.check_references(i, where)
    severity = as_int(i.get("severity"), where, "severity")
    if not 0 <= severity <= 4:
        raise EngineError(f"{where}: severity must be 0 to 4")
    for key in ("evaluationFrequency", "windowSize"):
        if not ISO_DURATION.match(str(i.get(key) or "")):
            raise EngineError(f"{where}: {key} {i.get(key)!r} is not an ISO 8601 duration such as PT5M")
    criteria = (i.get("criteria") or {}).get("allOf") or []
    if not criteria:
        raise EngineError(f"{where}: criteria.allOf needs a condition")
    for condition in criteria:
        if not condition.get("query"):
            raise EngineError(f"{where}: a condition needs a query")
        if condition.get("operator") not in ("Equals", "GreaterThan", "GreaterThanOrEqual", "LessThan",
                                             "LessThanOrEqual"):
            raise EngineError(f"{where}: operator {condition.get('operator')!r} is not a comparison")
        if condition.get("timeAggregation") not in ("Average", "Count", "Maximum", "Minimum", "Total"):
            raise EngineError(f"{where}: timeAggregation {condition.get('timeAggregation')!r} is not valid")
        if condition.get("timeAggregation") != "Count" and not condition.get("metricMeasureColumn"):
            raise EngineError(f"{where}: a {condition.get('timeAggregation')} aggregation needs metricMeasureColumn")
        for dimension in condition.get("dimensions") or []:
            if dimension.get("operator") not in ("Include", "Exclude") or not dimension.get("values"):
                raise EngineError(f"{where}: dimension {dimension.get('name')!r} needs operator Include or "
                                  "Exclude and values")
            if not re.search(rf"\bby\b[^|]*\b{re.escape(str(dimension.get('name')))}\b", condition["query"]):
                raise EngineError(f"{where}: dimension {dimension.get('name')!r} is not a column the query "
                                  "summarizes by")
    rid = az.arm_id(group, "Microsoft.Insights", "scheduledQueryRules", rule)
    out = {**common(az, "ScheduledQueryRule", name, i, "Microsoft.Insights/scheduledQueryRules", rule)}
    az.add(Stored("scheduledQueryRules", rule, rid, {**i, **out}))
    return rid, out


ACTION_GROUP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,259}")
EVENT_GRID_NAME = re.compile(r"[A-Za-z0-9-]{3,64}")
KEY_VAULT_EVENTS = {
    # https://learn.microsoft.com/azure/event-grid/event-schema-key-vault
    f"Microsoft.KeyVault.{kind}{event}" for kind in ("Certificate", "Key", "Secret")
    for event in ("NewVersionCreated", "NearExpiry", "Expired")} | {"Microsoft.KeyVault.VaultAccessPolicyChanged"}
SYSTEM_TOPIC_TYPES = {"Microsoft.KeyVault.vaults": "vaults"}
"""The topic types the model knows, and the kind of resource each takes as its source."""


@handles("azure-native:monitor:ActionGroup")
def _action_group(az: AzureBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    where = az.where("ActionGroup", name)
    group = az.group(i, where)
    group_name = name_of(i, "actionGroupName", name)
    if not ACTION_GROUP_NAME.fullmatch(group_name):
        raise EngineError(f"{where}: action group name {group_name!r} must be 1-260 letters, digits, _ . and -")
    location = str(i.get("location") or "")
    if location != "Global" and location not in LOCATIONS:
        raise EngineError(f"{where}: location {location!r} must be Global or an Azure region")
    short = str(i.get("groupShortName") or "")
    if not 1 <= len(short) <= 12:
        raise EngineError(f"{where}: groupShortName {short!r} must be 1-12 characters")
    receivers = [*(i.get("emailReceivers") or []), *(i.get("webhookReceivers") or [])]
    names = [str(r.get("name") or "") for r in receivers]
    if len(set(names)) != len(names) or "" in names:
        raise EngineError(f"{where}: every receiver needs a name, unique in the group: {names}")
    for receiver in i.get("emailReceivers") or []:
        if "@" not in str(receiver.get("emailAddress") or ""):
            raise EngineError(f"{where}: email receiver {receiver.get('name')!r} has no email address")
    for receiver in i.get("webhookReceivers") or []:
        if not str(receiver.get("serviceUri") or "").startswith("https://"):
            raise EngineError(f"{where}: webhook receiver {receiver.get('name')!r} needs an https:// serviceUri")
    rid = az.arm_id(group, "Microsoft.Insights", "actionGroups", group_name)
    out = {"name": group_name, "type": "Microsoft.Insights/actionGroups", "location": location,
           "azureApiVersion": "2023-01-01"}
    az.add(Stored("actionGroups", group_name, rid, {**i, **out}))
    return rid, out


@handles("azure-native:eventgrid:SystemTopic")
def _system_topic(az: AzureBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    where = az.where("SystemTopic", name)
    group = az.group(i, where)
    topic = name_of(i, "systemTopicName", name)
    if not EVENT_GRID_NAME.fullmatch(topic):
        raise EngineError(f"{where}: system topic name {topic!r} must be 3-64 letters, digits and dashes")
    topic_type = str(i.get("topicType") or "")
    if topic_type not in SYSTEM_TOPIC_TYPES:
        raise EngineError(f"{where}: topicType {topic_type!r} is not one the model knows: "
                          f"{', '.join(sorted(SYSTEM_TOPIC_TYPES))}")
    source = az.resolve(str(i.get("source") or ""), f"{where}: source", (SYSTEM_TOPIC_TYPES[topic_type],))
    location = az.location_of(i, where)
    if location != source.outputs.get("location"):
        raise EngineError(f"{where}: location {location!r} must be the source's ({source.outputs.get('location')!r}): "
                          "a regional resource's system topic lives in its region")
    for stored in az.index.values():
        if stored.kind == "systemTopics" and stored.outputs.get("source") == source.id:
            raise EngineError(f"{where}: source {source.name!r} has a system topic already ('{stored.name}'); "
                              "Azure allows one per source")
    rid = az.arm_id(group, "Microsoft.EventGrid", "systemTopics", topic)
    out = {**common(az, "SystemTopic", name, i, "Microsoft.EventGrid/systemTopics", topic),
           "metricResourceId": uid(rid)}
    az.add(Stored("systemTopics", topic, rid, {**i, **out}, facts={"topicType": topic_type}))
    return rid, out


@handles("azure-native:eventgrid:SystemTopicEventSubscription")
def _system_topic_subscription(az: AzureBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    where = az.where("SystemTopicEventSubscription", name)
    group = az.group(i, where)
    topic = az.resolve(az.arm_id(group, "Microsoft.EventGrid", "systemTopics", str(i.get("systemTopicName") or "")),
                       f"{where}: systemTopicName", ("systemTopics",))
    subscription = name_of(i, "eventSubscriptionName", name)
    if not EVENT_GRID_NAME.fullmatch(subscription):
        raise EngineError(f"{where}: event subscription name {subscription!r} must be 3-64 letters, digits and dashes")
    kinds = (i.get("filter") or {}).get("includedEventTypes") or []
    if topic.facts["topicType"] == "Microsoft.KeyVault.vaults":
        unknown = sorted(set(kinds) - KEY_VAULT_EVENTS)
        if unknown:
            raise EngineError(f"{where}: {', '.join(unknown)}: not Key Vault events")
    destination = i.get("destination") or {}
    if destination.get("endpointType") == "MonitorAlert":
        if topic.facts["topicType"] != "Microsoft.KeyVault.vaults":
            raise EngineError(f"{where}: an Azure Monitor alert destination takes Key Vault events only")
        if i.get("eventDeliverySchema") != "CloudEventSchemaV1_0":
            raise EngineError(f"{where}: an Azure Monitor alert destination needs eventDeliverySchema "
                              f"CloudEventSchemaV1_0, got {i.get('eventDeliverySchema')!r}")
        if destination.get("severity") not in ("Sev0", "Sev1", "Sev2", "Sev3", "Sev4"):
            raise EngineError(f"{where}: destination.severity must be Sev0 to Sev4")
        if len(str(destination.get("description") or "")) > 1024:
            raise EngineError(f"{where}: destination.description is at most 1024 characters")
        for group_id in destination.get("actionGroups") or []:
            az.resolve(str(group_id), f"{where}: destination.actionGroups", ("actionGroups",))
    elif destination.get("endpointType") is None:
        raise EngineError(f"{where}: destination.endpointType is required")
    az.check_references(i, where)
    rid = f"{topic.id}/eventSubscriptions/{subscription}"
    out = {"name": subscription, "type": "Microsoft.EventGrid/systemTopics/eventSubscriptions",
           "provisioningState": "Succeeded", "azureApiVersion": "2025-02-15"}
    az.add(Stored("eventSubscriptions", subscription, rid, {**i, **out}, parent=topic))
    return rid, out


# ---------------------------------------------------------------- scale sets

def _check_os_profile(profile: dict[str, Any], where: str) -> None:
    prefix = str(profile.get("computerNamePrefix") or "")
    if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9-]{0,57}", prefix):
        raise EngineError(f"{where}: computerNamePrefix {prefix!r} must be 1-58 letters, digits and dashes")
    user = str(profile.get("adminUsername") or "")
    if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,63}", user) or user in RESERVED_ADMIN_NAMES:
        raise EngineError(f"{where}: adminUsername {user!r} is missing, malformed or reserved by Azure")
    linux = profile.get("linuxConfiguration")
    if linux is None:
        raise EngineError(f"{where}: osProfile.linuxConfiguration is required for a Linux image")
    keys = ((linux.get("ssh") or {}).get("publicKeys")) or []
    if linux.get("disablePasswordAuthentication"):
        if profile.get("adminPassword"):
            raise EngineError(f"{where}: adminPassword is given but password authentication is disabled")
        if not keys:
            raise EngineError(f"{where}: password authentication is disabled, so at least one SSH public key "
                              "is required (Azure refuses a Linux VM with neither)")
    elif not profile.get("adminPassword"):
        raise EngineError(f"{where}: password authentication is on but there is no adminPassword")
    for key in keys:
        if not SSH_KEY.match(str(key.get("keyData") or "")):
            raise EngineError(f"{where}: SSH keyData is not an OpenSSH public key")
        if key.get("path") != f"/home/{user}/.ssh/authorized_keys":
            raise EngineError(f"{where}: SSH key path must be /home/{user}/.ssh/authorized_keys, "
                              f"got {key.get('path')!r}")
    data = profile.get("customData")
    if data is not None:
        if len(str(data)) > 87380:
            raise EngineError(f"{where}: customData is {len(str(data))} characters; Azure takes at most 87380 "
                              "(64 KiB before base64)")
        try:
            base64.b64decode(str(data), validate=True)
        except (binascii.Error, ValueError):
            raise EngineError(f"{where}: customData must be base64") from None


def _nic_configs(az: AzureBackend, profile: dict[str, Any], location: str, where: str) -> Iterator[Stored]:
    """Check the NICs and yield the subnets they sit in."""
    configs = (profile.get("networkProfile") or {}).get("networkInterfaceConfigurations") or []
    if not configs:
        raise EngineError(f"{where}: networkProfile needs a network interface configuration")
    if sum(bool(c.get("primary")) for c in configs) != 1:
        raise EngineError(f"{where}: exactly one network interface configuration must be primary")
    for config in configs:
        cw = f"{where}: NIC '{config.get('name')}'"
        nsg = ref_id(config.get("networkSecurityGroup"))
        if nsg:
            az.resolve(nsg, cw, ("networkSecurityGroups",))
        ip_configs = config.get("ipConfigurations") or []
        if not ip_configs:
            raise EngineError(f"{cw}: needs an IP configuration")
        for ip in ip_configs:
            iw = f"{cw}: ipConfiguration '{ip.get('name')}'"
            subnet = az.resolve(ref_id(ip.get("subnet")) or "", f"{iw}: subnet", ("subnets",))
            if subnet.facts["location"] != location:
                raise EngineError(f"{iw}: subnet is in {subnet.facts['location']}, the scale set in {location}")
            vnet = subnet.facts["vnet"].lower()
            for pool in ip.get("loadBalancerBackendAddressPools") or []:
                pool_id = (ref_id(pool) or "").lower()
                found = az.resolve(pool_id, f"{iw}: backend pool", ("backendAddressPools",))
                if az.pool_vnets.setdefault(pool_id, vnet) != vnet:
                    raise EngineError(f"{iw}: a backend pool's members must all be in one VNet; {pool_id} has "
                                      f"members in {az.pool_vnets[pool_id]}")
                assert found.parent is not None
                for front in found.parent.outputs.get("frontendIPConfigurations") or []:
                    front_subnet = ref_id(front.get("subnet"))
                    if front_subnet and az.resolve(front_subnet, iw).facts["vnet"].lower() != vnet:
                        raise EngineError(f"{iw}: the internal load balancer's frontend is in another VNet "
                                          "than its backend")
            for asg in ip.get("applicationSecurityGroups") or []:
                asg_id = (ref_id(asg) or "").lower()
                az.resolve(asg_id, f"{iw}: application security group", ("applicationSecurityGroups",))
                if az.asg_vnets.setdefault(asg_id, vnet) != vnet:
                    raise EngineError(f"{iw}: every NIC in an application security group must be in the same "
                                      f"VNet; {asg_id} has members in {az.asg_vnets[asg_id]}")
            public = ip.get("publicIPAddressConfiguration")
            if public is not None and (public.get("sku") or {}).get("name") not in (None, "Standard"):
                raise EngineError(f"{iw}: per-instance public IPs must be Standard")
            yield subnet


@handles("azure-native:compute:VirtualMachineScaleSet")
def _scale_set(az: AzureBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    where = az.where("VirtualMachineScaleSet", name)
    group = az.group(i, where)
    vmss = name_of(i, "vmScaleSetName", name)
    location = az.location_of(i, where)
    az.check_references(i, where)
    mode = i.get("orchestrationMode", "Uniform")
    if mode not in ("Uniform", "Flexible"):
        raise EngineError(f"{where}: orchestrationMode must be Uniform or Flexible")
    sku = i.get("sku") or {}
    capacity = as_int(sku.get("capacity", 0), where, "sku.capacity")
    if not 0 <= capacity <= 1000:
        raise EngineError(f"{where}: sku.capacity must be 0 to 1000")
    if i.get("skuProfile"):
        if mode != "Flexible" or sku.get("name") != "Mix":
            raise EngineError(f"{where}: skuProfile (several VM sizes) needs orchestrationMode Flexible and "
                              "sku.name Mix")
        sizes = [s.get("name") for s in i["skuProfile"].get("vmSizes") or []]
        if not sizes or any(not VM_SIZE.match(str(s)) for s in sizes):
            raise EngineError(f"{where}: skuProfile.vmSizes must list VM sizes such as Standard_D4s_v5")
    elif not VM_SIZE.match(str(sku.get("name") or "")):
        raise EngineError(f"{where}: sku.name {sku.get('name')!r} is not a VM size such as Standard_D2s_v5")
    if mode == "Flexible" and i.get("platformFaultDomainCount") is None:
        raise EngineError(f"{where}: a Flexible scale set needs platformFaultDomainCount")
    if mode == "Uniform" and capacity > 100 and i.get("singlePlacementGroup", True):
        raise EngineError(f"{where}: more than 100 machines need singlePlacementGroup false")
    zones = _zones(i.get("zones"), where)
    if i.get("zoneBalance") is not None and len(zones) < 2:
        raise EngineError(f"{where}: zoneBalance can only be set with more than one zone")
    identity = i.get("identity") or {}
    ids = identity.get("userAssignedIdentities") or []
    if ids and "UserAssigned" not in str(identity.get("type")):
        raise EngineError(f"{where}: userAssignedIdentities need identity.type UserAssigned")
    for identity_id in ids:
        az.resolve(identity_id, f"{where}: identity", ("userAssignedIdentities",))
    profile = i.get("virtualMachineProfile") or {}
    _check_os_profile(profile.get("osProfile") or {}, where)
    storage = profile.get("storageProfile") or {}
    image = storage.get("imageReference") or {}
    if not (image.get("id") or all(image.get(k) for k in ("publisher", "offer", "sku", "version"))):
        raise EngineError(f"{where}: imageReference needs an id or publisher, offer, sku and version")
    disk = storage.get("osDisk") or {}
    if disk.get("createOption") != "FromImage":
        raise EngineError(f"{where}: osDisk.createOption must be FromImage")
    if disk.get("diskSizeGB") is not None and not 1 <= as_int(disk["diskSizeGB"], where, "diskSizeGB") <= 4095:
        raise EngineError(f"{where}: osDisk.diskSizeGB must be 1 to 4095")
    subnets = list(_nic_configs(az, profile, location, where))
    if mode == "Flexible" and not (profile.get("networkProfile") or {}).get("networkApiVersion"):
        raise EngineError(f"{where}: a Flexible scale set's networkProfile needs networkApiVersion")
    if len({s.facts["vnet"] for s in subnets}) > 1:
        raise EngineError(f"{where}: all NICs of a scale set must be in one VNet")
    priority = profile.get("priority", "Regular")
    if priority not in ("Regular", "Spot", "Low"):
        raise EngineError(f"{where}: priority must be Regular or Spot")
    notice = ((profile.get("scheduledEventsProfile") or {}).get("terminateNotificationProfile")) or {}
    if priority == "Spot":
        if profile.get("evictionPolicy") not in ("Delete", "Deallocate"):
            raise EngineError(f"{where}: a Spot scale set needs evictionPolicy Delete or Deallocate")
        price = (profile.get("billingProfile") or {}).get("maxPrice")
        if price is None or not (float(price) == -1 or float(price) > 0):
            raise EngineError(f"{where}: a Spot scale set needs billingProfile.maxPrice -1 (pay up to on-demand) "
                              "or a positive price")
        if notice.get("enable"):
            raise EngineError(f"{where}: terminate notifications are not for Spot; Spot machines get eviction "
                              "notices through Scheduled Events")
    elif profile.get("evictionPolicy") or profile.get("billingProfile"):
        raise EngineError(f"{where}: evictionPolicy and billingProfile are only for Spot")
    if notice.get("enable"):
        match = ISO_MINUTES.match(str(notice.get("notBeforeTimeout") or ""))
        if not match or not 5 <= int(match.group(1)) <= 15:
            raise EngineError(f"{where}: terminate notification notBeforeTimeout must be PT5M to PT15M, "
                              f"got {notice.get('notBeforeTimeout')!r}")
    repairs = i.get("automaticRepairsPolicy") or {}
    if repairs.get("enabled"):
        grace = ISO_MINUTES.match(str(repairs.get("gracePeriod") or "PT30M"))
        if not grace or not 10 <= int(grace.group(1)) <= 90:
            raise EngineError(f"{where}: automatic repairs gracePeriod must be PT10M to PT90M")
        extensions = ((profile.get("extensionProfile") or {}).get("extensions")) or []
        if not any("Health" in str(e.get("type", "")) for e in extensions):
            raise EngineError(f"{where}: automatic repairs need an application health extension or probe")
    upgrade = (i.get("upgradePolicy") or {}).get("mode", "Manual")
    if upgrade not in ("Manual", "Automatic", "Rolling"):
        raise EngineError(f"{where}: upgradePolicy.mode must be Manual, Automatic or Rolling")
    rid = az.arm_id(group, "Microsoft.Compute", "virtualMachineScaleSets", vmss)
    out = {**common(az, "VirtualMachineScaleSet", name, i, "Microsoft.Compute/virtualMachineScaleSets", vmss),
           "uniqueId": uid(rid)}
    if identity:
        # ARM answers with a map from identity id to its principal and client ids.
        out["identity"] = {"type": identity.get("type"), "userAssignedIdentities": {
            identity_id: {"principalId": az.resolve(identity_id, where).outputs["principalId"],
                          "clientId": az.resolve(identity_id, where).outputs["clientId"]} for identity_id in ids}}
    az.add(Stored("virtualMachineScaleSets", vmss, rid, {**i, **out}))
    return rid, out
