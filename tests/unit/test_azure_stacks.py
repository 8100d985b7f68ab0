"""The Azure program as a user runs it: every stack family through `run_stack`, then the
graph checked for references, address space, firewalls, scale sets, balancer, access."""

from __future__ import annotations

import base64
import copy
import gzip
import ipaddress
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from cryptography import x509
from shipped import azure_model_of

from components.azure.store import CA_CERT, MANAGER_TOKEN, NEAR_EXPIRY, SERVER_CERT, SERVER_KEY, WORKER_TOKEN
from components.common.node_paths import NODE_SCRIPT
from swarmstack.config.cron import parse_cron, to_systemd
from swarmstack.config.load import read_stack_file
from swarmstack.engine.azure import DEPLOYER_OBJECT_ID, AzureBackend
from swarmstack.engine.graph import Graph, Resource
from swarmstack.engine.local import RandomBackend, TlsBackend
from swarmstack.engine.run import run_stack

SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEqCwt0cWh5Lqu6ZN5Yr0tRNxW8mDgG1ePMlq1Fdo4yR admin@example"
ADMINS = ["203.0.113.0/24", "198.51.100.7/32"]

VMSS = "azure-native:compute:VirtualMachineScaleSet"
NSG = "azure-native:network:NetworkSecurityGroup"
ASG = "azure-native:network:ApplicationSecurityGroup"
SUBNET = "azure-native:network:Subnet"
VNET = "azure-native:network:VirtualNetwork"
LB = "azure-native:network:LoadBalancer"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
SECRET = "azure-native:keyvault:Secret"
SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
SECRETS_OFFICER = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"


def cluster_of(stack: str) -> dict[str, Any]:
    return copy.deepcopy(read_stack_file(stack)[1])


def family(name: str) -> tuple[str, dict[str, Any], AzureBackend]:
    """The config and the (possibly pre-seeded) Azure of one stack family."""
    backend = AzureBackend("westeurope")
    if name == "dev":
        return "dev-azure", cluster_of("dev-azure"), backend
    if name == "prod":
        return "prod-azure", cluster_of("prod-azure"), backend
    config = cluster_of("dev-azure")
    cluster = config["swarmstack:cluster"]
    if name == "ssh-spot":  # a key given, SSH for admins, one single-size Spot pool, API off
        cluster["access"] = {"sshPublicKey": SSH_KEY, "adminCidrs": ADMINS}
        cluster["workers"] = [{"name": "cheap", "count": 2, "instanceType": "Standard_D2s_v5", "spot": True}]
    elif name == "no-workers":  # managers only, the TLS API on, prune of volumes, 3 zones behind a NAT
        cluster["managers"]["count"] = 3
        cluster["workers"] = []
        cluster["network"] = {"new": {"cidr": "10.60.0.0/22", "zones": 3, "nat": "single"}}
        cluster["dockerApi"] = {"enabled": True}
        cluster["access"] = {"adminCidrs": ADMINS}
        cluster["prune"] = {"schedule": "15 3 * * sun", "volumes": True}
    elif name == "existing":  # an existing VNet in another resource group, an internal balancer
        config = cluster_of("prod-azure")
        cluster = config["swarmstack:cluster"]
        vnet_id, subnets = backend.seed_network("network-rg", "shared", ["10.70.0.0/16"], {
            "managers": "10.70.1.0/24", "workers": "10.70.2.0/24", "lb": "10.70.3.0/24"})
        cluster["network"] = {"existing": {"networkId": vnet_id, "privateSubnetIds": list(subnets.values())}}
        cluster["loadBalancer"]["public"] = False
    elif name == "no-lb":  # no balancer at all, no logging
        cluster["loadBalancer"] = {"enabled": False}
        cluster["logging"] = {"enabled": False}
    else:
        raise ValueError(name)
    return f"{name}-azure", config, backend


FAMILIES = ["dev", "prod", "ssh-spot", "no-workers", "existing", "no-lb"]
_GRAPHS: dict[str, tuple[Graph, dict[str, Any], AzureBackend]] = {}


@pytest.fixture(params=FAMILIES, scope="module")
def run(request: pytest.FixtureRequest) -> tuple[Graph, dict[str, Any], AzureBackend]:
    name = request.param
    if name not in _GRAPHS:
        stack, config, backend = family(name)
        if name == "existing":  # its own pre-seeded Azure
            graph = run_stack(stack, config, backends={"azure-native": backend, "tls": TlsBackend(),  # type: ignore[dict-item]
                                                       "random": RandomBackend()})
        else:  # a fresh Azure: the run is built once per test run (tests/unit/shipped.py)
            graph, backend = azure_model_of(stack, config)
        _GRAPHS[name] = (graph, config["swarmstack:cluster"], backend)
    return _GRAPHS[name]


def arm_ids(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from arm_ids(inner, f"{path}.{key}")
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from arm_ids(inner, f"{path}[{index}]")
    elif isinstance(value, str) and value.startswith("/subscriptions/"):
        yield path, value


def known_ids(graph: Graph, backend: AzureBackend) -> set[str]:
    known = {key for key, stored in backend.index.items() if stored.type != "roleAssignments"}
    for resource in graph.custom:
        known.add(resource.id.lower())
        for _, value in arm_ids(resource.outputs):
            if value.lower().startswith(resource.id.lower() + "/"):
                known.add(value.lower())  # sub-resources: pools, probes, frontends, rules
    return known


def nsg_rules(graph: Graph, role: str) -> list[dict[str, Any]]:
    return graph.one(NSG, f"{graph_name(graph)}-{role}").inputs["securityRules"]


def graph_name(graph: Graph) -> str:
    return graph.one("azure-native:resources:ResourceGroup", next(
        r.name for r in graph.of_type("azure-native:resources:ResourceGroup"))).name[:-3]


def allowed(rules: list[dict[str, Any]], port: int | None, protocol: str) -> list[dict[str, Any]]:
    wanted = "*" if port is None else str(port)
    return [r for r in rules if r["access"] == "Allow" and r["protocol"] == protocol
            and r["destinationPortRange"] == wanted]


def sources(rule: dict[str, Any], asg_names: dict[str, str]) -> set[str]:
    if rule.get("sourceApplicationSecurityGroups"):
        return {asg_names[g["id"]] for g in rule["sourceApplicationSecurityGroups"]}
    if rule.get("sourceAddressPrefixes"):
        return set(rule["sourceAddressPrefixes"])
    return {rule["sourceAddressPrefix"]}


def asg_roles(graph: Graph) -> dict[str, str]:
    return {r.id: r.outputs["name"].rsplit("-", 1)[-1] for r in graph.of_type(ASG)}


def scale_sets(graph: Graph) -> dict[str, Resource]:
    return {r.inputs["tags"]["swarmstack:pool"]: r for r in graph.of_type(VMSS)}


# ---------------------------------------------------------------- references and addresses

def test_every_reference_resolves(run: tuple[Graph, dict, AzureBackend]) -> None:
    graph, _, backend = run
    known = known_ids(graph, backend)
    for resource in graph.custom:
        for path, value in arm_ids(resource.inputs):
            if "/providers/Microsoft.Authorization/roleDefinitions/" in value:
                continue
            assert value.lower() in known, f"{resource.type} {resource.name}: {path} -> {value}"


def test_subnets_lie_inside_the_vnet_and_apart(run: tuple[Graph, dict, AzureBackend]) -> None:
    graph, cluster, backend = run
    subnets = [s for s in backend.index.values() if s.type == "subnets"]
    vnets = {v.id.lower(): v for v in backend.index.values() if v.type == "virtualNetworks"}
    for subnet in subnets:
        space = vnets[subnet.facts["vnet"].lower()].facts["space"]
        assert any(subnet.facts["net"].subnet_of(s) for s in space)
    for index, a in enumerate(subnets):
        for b in subnets[index + 1:]:
            assert not a.facts["net"].overlaps(b.facts["net"])
    if "new" in cluster["network"]:
        assert [s.inputs["subnetName"] for s in graph.of_type(SUBNET)] == ["managers", "workers", "lb"]
        cidr = ipaddress.IPv4Network(cluster["network"]["new"]["cidr"])
        assert all(ipaddress.IPv4Network(s.inputs["addressPrefix"]).subnet_of(cidr) for s in graph.of_type(SUBNET))
    else:
        assert not graph.of_type(VNET) and not graph.of_type(SUBNET)


def test_node_subnets_carry_their_nsg_and_the_nat_when_there_is_one(run: tuple[Graph, dict, AzureBackend]) -> None:
    graph, cluster, _ = run
    if "new" not in cluster["network"]:
        return
    nat = cluster["network"]["new"]["nat"] != "none"
    nsgs = {r.outputs["name"].rsplit("-", 1)[-1]: r.id for r in graph.of_type(NSG)}
    for subnet in graph.of_type(SUBNET):
        role = subnet.inputs["subnetName"]
        if role == "lb":
            assert "natGateway" not in subnet.inputs
            continue
        assert subnet.inputs["networkSecurityGroup"]["id"] == nsgs[role]
        assert ("natGateway" in subnet.inputs) == nat
        assert subnet.inputs["defaultOutboundAccess"] is False


# ---------------------------------------------------------------- firewalls

def test_swarm_ports_only_between_the_node_groups(run: tuple[Graph, dict, AzureBackend]) -> None:
    graph, _, _ = run
    names = asg_roles(graph)
    for role in ("managers", "workers"):
        rules = nsg_rules(graph, role)
        for port, protocol in ((7946, "Tcp"), (7946, "Udp"), (4789, "Udp"), (None, "Esp")):
            found = allowed(rules, port, protocol)
            assert len(found) == 1 and sources(found[0], names) == {"managers", "workers"}, (role, port)
        management = allowed(rules, 2377, "Tcp")
        if role == "managers":
            assert len(management) == 1 and sources(management[0], names) == {"managers", "workers"}
        else:
            assert management == []


def test_2375_never_and_the_vnet_closed_by_default(run: tuple[Graph, dict, AzureBackend]) -> None:
    graph, _, _ = run
    for role in ("managers", "workers"):
        rules = nsg_rules(graph, role)
        assert not allowed(rules, 2375, "Tcp")
        first, last = min(rules, key=lambda r: r["priority"]), max(rules, key=lambda r: r["priority"])
        assert (first["access"], first["destinationPortRange"], first["priority"]) == ("Deny", "2375", 100)
        assert (last["access"], last["protocol"], last["sourceAddressPrefix"], last["priority"]) == (
            "Deny", "*", "*", 4096)
        assert all(r["direction"] == "Inbound" for r in rules)


def test_docker_api_and_ssh_from_admins_only(run: tuple[Graph, dict, AzureBackend]) -> None:
    graph, cluster, _ = run
    names = asg_roles(graph)
    admins = set(cluster.get("access", {}).get("adminCidrs", []))
    api = cluster.get("dockerApi", {}).get("enabled", False)
    ssh = "sshPublicKey" in cluster.get("access", {})
    lb = cluster.get("loadBalancer", {}).get("enabled", True)
    for role in ("managers", "workers"):
        rules = nsg_rules(graph, role)
        api_sources = set().union(*(sources(r, names) for r in allowed(rules, 2376, "Tcp")))
        if api and role == "managers":
            assert api_sources == admins | ({"AzureLoadBalancer"} if lb else set())
        else:
            assert api_sources == set()
        ssh_sources = set().union(*(sources(r, names) for r in allowed(rules, 22, "Tcp")))
        assert ssh_sources == (admins if ssh else set())


def test_published_ports_from_clients_and_the_balancer(run: tuple[Graph, dict, AzureBackend]) -> None:
    graph, cluster, _ = run
    names = asg_roles(graph)
    lb = cluster.get("loadBalancer", {})
    target = "workers" if cluster.get("workers") else "managers"
    clients = "Internet" if lb.get("public", True) else "VirtualNetwork"
    for item in lb.get("ports", []):
        protocol = item.get("protocol", "tcp").capitalize()
        for role in ("managers", "workers"):
            found = set().union(*(sources(r, names) for r in allowed(nsg_rules(graph, role), item["port"], protocol)))
            expected = {"AzureLoadBalancer", clients} if role == target and lb.get("enabled", True) else set()
            assert found == expected, (role, item)


# ---------------------------------------------------------------- scale sets

def test_scale_sets_use_ssh_keys_only_and_spread_over_zones(run: tuple[Graph, dict, AzureBackend]) -> None:
    graph, cluster, _ = run
    zones = cluster["network"].get("new", {}).get("zones") or len(cluster["network"]["existing"]["privateSubnetIds"])
    for pool, scale_set in scale_sets(graph).items():
        profile = scale_set.inputs["virtualMachineProfile"]
        linux = profile["osProfile"]["linuxConfiguration"]
        assert linux["disablePasswordAuthentication"] is True
        assert "adminPassword" not in profile["osProfile"]
        keys = linux["ssh"]["publicKeys"]
        assert len(keys) == 1 and keys[0]["keyData"].startswith(("ssh-rsa ", "ssh-ed25519 "))
        if "sshPublicKey" in cluster.get("access", {}):
            assert keys[0]["keyData"] == cluster["access"]["sshPublicKey"]
        assert scale_set.inputs["zones"] == ["1", "2", "3"][: min(zones, 3)], pool
        assert profile["securityProfile"]["encryptionAtHost"] is True
        # Repairs replace only what reports itself Unhealthy (a node that never joined), after
        # a grace longer than the node's own deadline; Spot machines are evicted, not repaired.
        spot = profile.get("priority") == "Spot"
        assert scale_set.inputs["automaticRepairsPolicy"] == (
            {"enabled": False, "gracePeriod": "PT30M", "repairAction": "Replace"} if spot
            else {"enabled": True, "gracePeriod": "PT30M", "repairAction": "Replace"})
        (health,) = [e for e in profile["extensionProfile"]["extensions"] if e["type"] == "ApplicationHealthLinux"]
        assert health["settings"] == {"protocol": "http", "port": 8585, "requestPath": "/health.json",
                                      "intervalInSeconds": 5, "numberOfProbes": 1, "gracePeriod": 900}
        assert scale_set.inputs["identity"]["type"] == "UserAssigned"
        if scale_set.inputs.get("orchestrationMode", "Uniform") == "Uniform":
            assert scale_set.inputs["overprovision"] is False
            assert scale_set.inputs.get("singlePlacementGroup") is (None if pool == "managers" else False)


def test_managers_fixed_count_balanced_zones_and_the_longest_drain(run: tuple[Graph, dict, AzureBackend]) -> None:
    graph, cluster, _ = run
    managers = scale_sets(graph)["managers"]
    assert managers.inputs["sku"]["capacity"] == cluster["managers"]["count"]
    assert managers.inputs.get("zoneBalance") is (True if len(managers.inputs["zones"]) > 1 else None)
    notice = managers.inputs["virtualMachineProfile"]["scheduledEventsProfile"]["terminateNotificationProfile"]
    assert notice == {"enable": True, "notBeforeTimeout": "PT15M"}


def test_spot_pools_are_evicted_by_delete_at_any_price_and_get_no_terminate_notice(
        run: tuple[Graph, dict, AzureBackend]) -> None:
    graph, cluster, _ = run
    by_pool = scale_sets(graph)
    for pool in cluster.get("workers", []):
        profile = by_pool[pool["name"]].inputs["virtualMachineProfile"]
        if pool.get("spot"):
            assert (profile["priority"], profile["evictionPolicy"], profile["billingProfile"]) == (
                "Spot", "Delete", {"maxPrice": -1})
            assert "scheduledEventsProfile" not in profile
        else:
            assert profile["priority"] == "Regular" and "evictionPolicy" not in profile
            notice = profile["scheduledEventsProfile"]["terminateNotificationProfile"]["notBeforeTimeout"]
            assert re.fullmatch(r"PT(\d+)M", notice) and 5 <= int(notice[2:-1]) <= 15
        sizes = [pool["instanceType"]] if isinstance(pool["instanceType"], str) else pool["instanceType"]
        scale_set = by_pool[pool["name"]].inputs
        if len(sizes) > 1:
            assert scale_set["orchestrationMode"] == "Flexible"
            assert [s["name"] for s in scale_set["skuProfile"]["vmSizes"]] == sizes
        else:
            assert scale_set["sku"]["name"] == sizes[0]


def test_no_ssh_key_means_a_generated_one_and_no_private_key_anywhere(run: tuple[Graph, dict, AzureBackend]) -> None:
    graph, cluster, _ = run
    generated = [r for r in graph.of_type("tls:index/privateKey:PrivateKey") if r.name.endswith("-ssh")]
    assert bool(generated) == ("sshPublicKey" not in cluster.get("access", {}))
    for key, value in graph.outputs.items():
        if key not in graph.secret_outputs:
            assert "PRIVATE KEY" not in repr(value), key
    for resource in graph.custom:
        if resource.type.startswith("azure-native:") and resource.type != SECRET:
            assert "PRIVATE KEY" not in repr(resource.inputs), resource.name


# ---------------------------------------------------------------- balancer

def test_every_balancer_rule_has_its_probe_and_the_right_pool(run: tuple[Graph, dict, AzureBackend]) -> None:
    graph, cluster, _ = run
    lb_cfg = cluster.get("loadBalancer", {})
    balancers = graph.of_type(LB)
    if not lb_cfg.get("enabled", True):
        assert balancers == [] and "loadBalancerAddress" not in graph.outputs
        return
    (lb,) = balancers
    probes = {p["name"]: p for p in lb.outputs["probes"]}
    rules = lb.outputs["loadBalancingRules"]
    expected = {(p["port"], p.get("protocol", "tcp").capitalize()) for p in lb_cfg.get("ports", [])}
    if cluster.get("dockerApi", {}).get("enabled"):
        expected.add((2376, "Tcp"))
    assert {(r["frontendPort"], r["protocol"]) for r in rules} == expected
    target = "workers" if cluster.get("workers") else "managers"
    for rule in rules:
        probe = probes[rule["probe"]["id"].rsplit("/", 1)[-1]]
        assert probe["protocol"] == "Tcp"
        assert probe["port"] == (rule["backendPort"] if rule["protocol"] == "Tcp" else 7946)
        pool = rule["backendAddressPool"]["id"].rsplit("/", 1)[-1]
        assert pool == ("managers" if rule["frontendPort"] == 2376 else target)
    pools = {p["id"]: p["name"] for p in lb.outputs["backendAddressPools"]}
    for pool_name, scale_set in scale_sets(graph).items():
        ip = scale_set.inputs["virtualMachineProfile"]["networkProfile"]["networkInterfaceConfigurations"][0][
            "ipConfigurations"][0]
        joined = {pools[p["id"]] for p in ip.get("loadBalancerBackendAddressPools", [])}
        role = "managers" if pool_name == "managers" else "workers"
        assert joined <= {role}
    front = lb.outputs["frontendIPConfigurations"][0]
    assert ("publicIPAddress" in front) == lb_cfg.get("public", True)


# ---------------------------------------------------------------- the store and who may read it

def grants(graph: Graph) -> list[tuple[str, str, str]]:
    """(role of the principal, role definition guid, scope) of every role assignment; the
    principal running the deployment is `deployer`."""
    principals = {r.outputs["principalId"]: r.outputs["name"].rsplit("-", 1)[-1]
                  for r in graph.of_type("azure-native:managedidentity:UserAssignedIdentity")}
    principals[DEPLOYER_OBJECT_ID] = "deployer"
    return [(principals[r.inputs["principalId"]], r.inputs["roleDefinitionId"].rsplit("/", 1)[-1], r.inputs["scope"])
            for r in graph.of_type(ROLE_ASSIGNMENT)]


def test_workers_read_only_the_worker_token(run: tuple[Graph, dict, AzureBackend]) -> None:
    graph, _, _ = run
    vault = graph.of_type("azure-native:keyvault:Vault")[0]
    secret_ids = {r.outputs["name"]: r.id for r in graph.of_type(SECRET)}
    worker_vault = [(d, s) for who, d, s in grants(graph) if who == "workers" and s.startswith(vault.id)]
    assert worker_vault == [(SECRETS_USER, secret_ids[WORKER_TOKEN])]
    manager_vault = sorted((d, s.rsplit("/", 1)[-1]) for who, d, s in grants(graph)
                           if who == "managers" and s.startswith(vault.id))
    expected = [(SECRETS_OFFICER, MANAGER_TOKEN), (SECRETS_OFFICER, WORKER_TOKEN)]
    if SERVER_KEY in secret_ids:
        expected += [(SECRETS_USER, SERVER_KEY), (SECRETS_USER, CA_CERT), (SECRETS_USER, SERVER_CERT)]
    assert manager_vault == sorted(expected)
    assert all(s.startswith(graph.one("azure-native:resources:ResourceGroup",
                                      f"{graph_name(graph)}-rg").id) for _, _, s in grants(graph))


def test_the_deployer_may_delete_the_secrets_and_keeps_that_grant_until_they_are_gone(
        run: tuple[Graph, dict, AzureBackend]) -> None:
    graph, _, _ = run
    vault = graph.of_type("azure-native:keyvault:Vault")[0]
    assert [(d, s) for who, d, s in grants(graph) if who == "deployer"] == [(SECRETS_OFFICER, vault.id)]
    (grant,) = [r for r in graph.of_type(ROLE_ASSIGNMENT) if r.inputs["principalId"] == DEPLOYER_OBJECT_ID]
    for secret in graph.of_type(SECRET):
        assert grant.urn in secret.dependencies, secret.name  # created first, deleted last


def test_the_vault_is_rbac_with_soft_delete_and_purge_protection_in_production(
        run: tuple[Graph, dict, AzureBackend]) -> None:
    graph, cluster, _ = run
    props = graph.of_type("azure-native:keyvault:Vault")[0].inputs["properties"]
    assert props["enableRbacAuthorization"] is True and props["enableSoftDelete"] is True
    assert props.get("enablePurgeProtection") is (True if cluster.get("production") else None)
    account = graph.of_type("azure-native:storage:StorageAccount")[0].inputs
    assert account["allowSharedKeyAccess"] is False and account["allowBlobPublicAccess"] is False


def test_the_docker_api_pki_holds_together(run: tuple[Graph, dict, AzureBackend]) -> None:
    graph, cluster, _ = run
    if not cluster.get("dockerApi", {}).get("enabled"):
        assert "clientTls" not in graph.outputs
        assert not [s for s in graph.of_type(SECRET) if s.outputs["name"] == SERVER_KEY]
        return
    assert "clientTls" in graph.secret_outputs
    bundle = graph.outputs["clientTls"]
    ca = x509.load_pem_x509_certificate(bundle["ca.pem"].encode())
    client = x509.load_pem_x509_certificate(bundle["cert.pem"].encode())
    assert client.issuer == ca.subject
    server = next(r for r in graph.of_type("tls:index/locallySignedCert:LocallySignedCert")
                  if r.name.endswith("server"))
    cert = x509.load_pem_x509_certificate(server.outputs["certPem"].encode())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    if "loadBalancerDns" in graph.outputs:
        assert graph.outputs["loadBalancerDns"] in names.get_values_for_type(x509.DNSName)
        assert graph.outputs["dockerHost"] == f"tcp://{graph.outputs['loadBalancerDns']}:2376"
    key_secret = next(s for s in graph.of_type(SECRET) if s.outputs["name"] == SERVER_KEY)
    server_key = next(r for r in graph.of_type("tls:index/privateKey:PrivateKey") if r.name.endswith("server"))
    assert key_secret.inputs["properties"]["value"] == server_key.outputs["privateKeyPem"]


def test_running_managers_read_the_docker_api_certificates_from_key_vault(run: tuple[Graph, dict, AzureBackend]) -> None:
    """A renewed certificate reaches a running manager on its next converge run: all three
    files come from Key Vault, none from the custom data (applied only when a machine is
    made). Only the managers' identity reads them."""
    graph, cluster, _ = run
    secrets = {s.outputs["name"]: s for s in graph.of_type(SECRET)}
    tls_secrets = (CA_CERT, SERVER_CERT, SERVER_KEY)
    if not cluster.get("dockerApi", {}).get("enabled"):
        assert not set(tls_secrets) & set(secrets)
        return
    bundle = graph.outputs["clientTls"]
    assert secrets[CA_CERT].inputs["properties"]["value"] == bundle["ca.pem"]
    server = next(r for r in graph.of_type("tls:index/locallySignedCert:LocallySignedCert") if r.name.endswith("server"))
    assert secrets[SERVER_CERT].inputs["properties"]["value"] == server.outputs["certPem"]
    managers = next(r for r in graph.of_type("azure-native:managedidentity:UserAssignedIdentity")
                    if r.name.endswith("managers")).outputs["principalId"]
    for name in tls_secrets:
        readers = [g.inputs["principalId"] for g in graph.of_type(ROLE_ASSIGNMENT)
                   if g.inputs["scope"] == secrets[name].id]
        assert readers == [managers], name
    for scale_set in graph.of_type(VMSS):
        data = gzip.decompress(base64.b64decode(
            scale_set.inputs["virtualMachineProfile"]["osProfile"]["customData"])).decode()
        assert "BEGIN CERTIFICATE" not in data
        assert not [f["path"] for f in yaml.safe_load(data)["write_files"] if f["path"].startswith("/etc/docker/tls")]


def test_a_certificate_warns_thirty_days_before_its_end(run: tuple[Graph, dict, AzureBackend]) -> None:
    """Key Vault's SecretNearExpiry (30 days before a secret's `exp`) becomes an Azure Monitor
    alert; the certificates' secrets carry their end and are written after the subscriptions
    (Key Vault publishes only for versions written after a subscription exists)."""
    graph, cluster, _ = run
    topics = graph.of_type("azure-native:eventgrid:SystemTopic")
    subscriptions = graph.of_type("azure-native:eventgrid:SystemTopicEventSubscription")
    if not cluster.get("dockerApi", {}).get("enabled"):
        assert not topics and not subscriptions
        return

    vault = graph.of_type("azure-native:keyvault:Vault")[0]
    [topic] = topics
    assert (topic.inputs["source"], topic.inputs["topicType"]) == (vault.id, "Microsoft.KeyVault.vaults")
    secrets = {s.outputs["name"]: s for s in graph.of_type(SECRET)}
    certs = {CA_CERT: graph.outputs["clientTls"]["ca.pem"],
             SERVER_CERT: secrets[SERVER_CERT].inputs["properties"]["value"]}
    assert sorted((s.inputs["filter"]["subjectBeginsWith"], s.inputs["filter"]["subjectEndsWith"])
                  for s in subscriptions) == sorted((name, name) for name in certs)
    for subscription in subscriptions:
        name = subscription.inputs["filter"]["subjectBeginsWith"]
        assert subscription.inputs["filter"]["includedEventTypes"] == [NEAR_EXPIRY]
        assert subscription.inputs["eventDeliverySchema"] == "CloudEventSchemaV1_0"
        destination = subscription.inputs["destination"]
        assert destination["endpointType"] == "MonitorAlert" and destination["severity"] == "Sev2"
        end = x509.load_pem_x509_certificate(certs[name].encode()).not_valid_after_utc
        assert secrets[name].inputs["properties"]["attributes"]["expires"] == int(end.timestamp())
        assert end.strftime("%Y-%m-%d") in destination["description"]
        assert ("rotate it" in destination["description"]) == (name == CA_CERT)
        assert subscription.urn in secrets[name].dependencies


def test_alarms_reach_an_action_group_on_azure() -> None:
    """`alarms` on Azure: an action group the quorum alert and the expiry alerts name."""
    stack, config, backend = family("no-workers")
    config["swarmstack:cluster"]["alarms"] = {"email": ["ops@example.com"], "https": ["https://hooks.example.com/a"]}
    graph = run_stack(stack, config, backends={"azure-native": backend, "tls": TlsBackend(),  # type: ignore[dict-item]
                                               "random": RandomBackend()})
    [group] = graph.of_type("azure-native:monitor:ActionGroup")
    assert group.inputs["location"] == "Global" and len(group.inputs["groupShortName"]) <= 12
    assert [r["emailAddress"] for r in group.inputs["emailReceivers"]] == ["ops@example.com"]
    assert [r["serviceUri"] for r in group.inputs["webhookReceivers"]] == ["https://hooks.example.com/a"]
    [quorum] = graph.of_type("azure-native:monitor:ScheduledQueryRule")
    assert quorum.inputs["actions"]["actionGroups"] == [group.id]
    for subscription in graph.of_type("azure-native:eventgrid:SystemTopicEventSubscription"):
        assert subscription.inputs["destination"]["actionGroups"] == [group.id]


@pytest.mark.parametrize("change, message", [
    (lambda c: c.update(eventDeliverySchema="EventGridSchema"), "needs eventDeliverySchema CloudEventSchemaV1_0"),
    (lambda c: c["filter"].update(includedEventTypes=["Microsoft.Storage.BlobCreated"]), "not Key Vault events"),
    (lambda c: c["destination"].update(severity="High"), "severity must be Sev0 to Sev4"),
])
def test_the_model_refuses_what_event_grid_refuses(change: Any, message: str) -> None:
    from swarmstack.engine.mocks import EngineError

    backend = AzureBackend("westeurope")
    group = backend.rg_id("rg")
    backend.create("azure-native:resources:ResourceGroup", "rg", {"resourceGroupName": "rg", "location": "westeurope"})
    vault, _ = backend.create("azure-native:keyvault:Vault", "v", {
        "resourceGroupName": "rg", "vaultName": "kv-events-1", "properties": {
            "tenantId": backend.tenant_id, "sku": {"family": "A", "name": "standard"}, "enableRbacAuthorization": True}})
    with pytest.raises(EngineError, match="must be the source's"):
        backend.create("azure-native:eventgrid:SystemTopic", "t0", {
            "resourceGroupName": "rg", "systemTopicName": "elsewhere", "location": "northeurope", "source": vault,
            "topicType": "Microsoft.KeyVault.vaults"})
    backend.create("azure-native:eventgrid:SystemTopic", "t", {
        "resourceGroupName": "rg", "systemTopicName": "events", "location": "westeurope", "source": vault,
        "topicType": "Microsoft.KeyVault.vaults"})
    subscription = {"resourceGroupName": "rg", "systemTopicName": "events", "eventSubscriptionName": "near-expiry",
                    "eventDeliverySchema": "CloudEventSchemaV1_0",
                    "filter": {"includedEventTypes": [NEAR_EXPIRY]},
                    "destination": {"endpointType": "MonitorAlert", "severity": "Sev2"}}
    change(subscription)
    with pytest.raises(EngineError, match=message):
        backend.create("azure-native:eventgrid:SystemTopicEventSubscription", "s", subscription)
    assert group


# ---------------------------------------------------------------- logs and user data

def test_logs_retention_agent_and_quorum_alert(run: tuple[Graph, dict, AzureBackend]) -> None:
    graph, cluster, _ = run
    if not cluster.get("logging", {}).get("enabled", True):
        assert not graph.of_type("azure-native:operationalinsights:Workspace")
        return
    workspace = graph.of_type("azure-native:operationalinsights:Workspace")[0]
    assert workspace.inputs["retentionInDays"] == cluster["logging"]["retentionDays"]
    associations = graph.of_type("azure-native:monitor:DataCollectionRuleAssociation")
    assert {a.inputs["resourceUri"] for a in associations} == {s.id for s in graph.of_type(VMSS)}
    alert = graph.of_type("azure-native:monitor:ScheduledQueryRule")[0].inputs
    condition = alert["criteria"]["allOf"][0]
    assert (condition["operator"], condition["threshold"]) == ("LessThan", cluster["managers"]["count"] // 2 + 1)
    assert graph.outputs["logWorkspaceId"] == workspace.id


def cloud_config(scale_set: Resource) -> dict[str, Any]:
    data = gzip.decompress(base64.b64decode(scale_set.inputs["virtualMachineProfile"]["osProfile"]["customData"])).decode()
    assert data.startswith("#cloud-config\n")
    return yaml.safe_load(data)


def test_user_data_carries_the_store_and_the_prune_schedule(run: tuple[Graph, dict, AzureBackend]) -> None:
    graph, cluster, _ = run
    vault = graph.outputs["keyVaultName"]
    prune = cluster.get("prune", {})
    for pool, scale_set in scale_sets(graph).items():
        files = {f["path"]: f["content"] for f in cloud_config(scale_set)["write_files"]}
        script = files[NODE_SCRIPT]
        assert vault in script
        timer = files["/etc/systemd/system/swarmstack-prune.timer"]
        assert f"OnCalendar={to_systemd(parse_cron(prune.get('schedule', '42 1 * * *')))}" in timer
        assert ("docker volume prune" in script) == bool(prune.get("volumes"))
        assert ("/etc/systemd/system/swarmstack-cleanup.timer" in files) == (pool == "managers")
        assert "PRIVATE KEY" not in "".join(files.values())


def test_the_exports_say_how_to_get_a_shell(run: tuple[Graph, dict, AzureBackend]) -> None:
    graph, _, _ = run
    shell = graph.outputs["managerShell"]
    assert shell.startswith(f"az vmss run-command invoke --resource-group {graph.outputs['resourceGroup']} "
                            f"--name {graph.outputs['managerScaleSet']}")
    assert set(graph.outputs["nsgIds"]) == {"managers", "workers"}
    assert graph.outputs["vnetId"].split("/")[-2] == "virtualNetworks"


def test_the_cluster_registers_the_same_summary_as_on_aws(run: tuple[Graph, dict, AzureBackend]) -> None:
    graph, cluster, _ = run
    (component,) = [r for r in graph.resources if r.type == "swarmstack:azure:Cluster"]
    assert component.inputs["cloud"] == "azure"
    assert component.inputs["managerCount"] == cluster["managers"]["count"]
    assert component.inputs["dockerApi"] == cluster.get("dockerApi", {}).get("enabled", False)


def test_a_provided_ca_signs_the_server_and_client_certificates() -> None:
    import datetime

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "my ca")])
    now = datetime.datetime.now(datetime.UTC)
    ca = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
          .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(key, hashes.SHA256()))
    ca_pem = ca.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    config = cluster_of("prod-azure")
    config["swarmstack:cluster"]["dockerApi"] = {"enabled": True, "ca": "provided", "caCertPem": ca_pem}
    config["swarmstack:dockerApiCaKey"] = key_pem
    graph = run_stack("ca-azure", config, backends={"azure-native": AzureBackend("westeurope"),  # type: ignore[dict-item]
                                                    "tls": TlsBackend(), "random": RandomBackend()})
    bundle = graph.outputs["clientTls"]
    assert bundle["ca.pem"] == ca_pem
    client = x509.load_pem_x509_certificate(bundle["cert.pem"].encode())
    assert client.issuer == name
    assert not graph.of_type("tls:index/selfSignedCert:SelfSignedCert")
    assert all("PRIVATE KEY" not in repr(r.inputs) for r in graph.custom if r.type.startswith("azure-native:")
               and r.type != SECRET)


def test_a_subnet_of_another_vnet_is_refused_naming_the_stack_file() -> None:
    """The program refuses an existing subnet outside the named VNet as every config problem
    reads: the file, the key, the value, what is wrong (it named neither file nor value)."""
    stack, config, backend = family("existing")
    _, others = backend.seed_network("network-rg", "other", ["10.71.0.0/16"], {"stray": "10.71.1.0/24"})
    subnets = config["swarmstack:cluster"]["network"]["existing"]["privateSubnetIds"]
    subnets[1] = others["stray"]
    with pytest.raises(Exception) as caught:
        run_stack(stack, config, backends={"azure-native": backend, "tls": TlsBackend(),  # type: ignore[dict-item]
                                           "random": RandomBackend()})
    message = str(caught.value)
    assert message.startswith(f"stacks/Pulumi.{stack}.yaml: swarmstack:cluster.network.existing.privateSubnetIds = "
                              f'["{subnets[0]}", "{others["stray"]}", '), message
    assert f"{others['stray']} is not a subnet of network.existing.networkId" in message, message
