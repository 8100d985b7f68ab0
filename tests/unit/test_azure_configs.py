"""Any valid Azure config, run through the real program and the engine's Azure model:
the model accepts the graph, and the invariants that matter hold for every one."""

from __future__ import annotations

from typing import Any

from examples import examples
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from swarmstack.config.load import validate
from swarmstack.config.problems import ConfigError
from swarmstack.deploy_order import problems as deploy_order_problems
from swarmstack.engine.azure import AzureBackend
from swarmstack.engine.local import RandomBackend, TlsBackend
from swarmstack.engine.run import run_stack

SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEqCwt0cWh5Lqu6ZN5Yr0tRNxW8mDgG1ePMlq1Fdo4yR admin@example"
SIZES = ["Standard_D2s_v5", "Standard_D4as_v5", "Standard_B2s"]


@st.composite
def clusters(draw: st.DrawFn) -> dict[str, Any]:
    managers = draw(st.sampled_from([1, 3, 5]))
    zones = 3 if managers > 1 else draw(st.integers(1, 3))
    pools = []
    for index in range(draw(st.integers(0, 2))):
        spot = draw(st.booleans())
        sizes = draw(st.lists(st.sampled_from(SIZES), min_size=1, max_size=2 if spot else 1, unique=True))
        pools.append({"name": f"pool{index}", "count": draw(st.integers(0, 3)), "instanceType": sizes, "spot": spot})
    api = draw(st.booleans())
    ssh = draw(st.booleans())
    ports = draw(st.lists(st.tuples(st.sampled_from([80, 443, 8080, 5353]), st.sampled_from(["tcp", "udp"])),
                          unique=True, max_size=3))
    lb_enabled = draw(st.booleans()) if (ports or api) else False
    cluster: dict[str, Any] = {
        "cloud": "azure", "name": draw(st.from_regex(r"[a-z][a-z0-9-]{1,27}", fullmatch=True)),
        "production": draw(st.booleans()),
        "managers": {"count": managers, "instanceType": draw(st.sampled_from(SIZES))},
        "workers": pools,
        "network": {"new": {"cidr": draw(st.sampled_from(["10.20.0.0/16", "10.1.0.0/22", "192.168.0.0/24"])),
                            "zones": zones, "nat": draw(st.sampled_from(["none", "single"]))}},
        "access": {"adminCidrs": ["203.0.113.0/24"] if (api or ssh) else [],
                   **({"sshPublicKey": SSH_KEY} if ssh else {})},
        "dockerApi": {"enabled": api},
        "loadBalancer": {"enabled": lb_enabled, "public": draw(st.booleans()),
                         "ports": [{"port": p, "protocol": proto} for p, proto in ports]},
        "logging": {"enabled": draw(st.booleans()), "retentionDays": draw(st.sampled_from([30, 90, 730]))},
        "prune": {"volumes": draw(st.booleans())},
    }
    return cluster


@settings(max_examples=examples(3, 12), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cluster=clusters())
def test_every_valid_config_builds_a_graph_azure_would_accept(cluster: dict[str, Any]) -> None:
    config = {"azure-native:location": "westeurope", "swarmstack:cluster": cluster}
    try:
        validate("any-azure", "generated", config)
    except ConfigError:
        assume(False)
    graph = run_stack("any-azure", config, backends={"azure-native": AzureBackend("westeurope"),  # type: ignore[dict-item]
                                                     "tls": TlsBackend(), "random": RandomBackend()})
    # role assignments, secrets and NAT exist before any scale set; the deployer can delete the secrets
    assert deploy_order_problems(graph) == []
    for nsg in graph.of_type("azure-native:network:NetworkSecurityGroup"):
        rules = nsg.inputs["securityRules"]
        assert len({r["priority"] for r in rules}) == len(rules)
        assert not [r for r in rules if r["access"] == "Allow" and r["destinationPortRange"] in ("2375", "*")
                    and r["protocol"] in ("Tcp", "*")]
        for rule in rules:
            if rule["destinationPortRange"] in ("2377", "7946", "4789") or rule["protocol"] == "Esp":
                assert rule.get("sourceApplicationSecurityGroups"), rule["name"]
            if rule["destinationPortRange"] in ("22", "2376") and "sourceAddressPrefixes" in rule:
                assert rule["sourceAddressPrefixes"] == ["203.0.113.0/24"]
    for scale_set in graph.of_type("azure-native:compute:VirtualMachineScaleSet"):
        linux = scale_set.inputs["virtualMachineProfile"]["osProfile"]["linuxConfiguration"]
        assert linux["disablePasswordAuthentication"] is True and linux["ssh"]["publicKeys"]
    workers = {r.outputs["principalId"] for r in graph.of_type("azure-native:managedidentity:UserAssignedIdentity")
               if r.outputs["name"].endswith("-workers")}
    vault = graph.of_type("azure-native:keyvault:Vault")[0].id
    worker_vault_scopes = [r.inputs["scope"].rsplit("/", 1)[-1] for r in graph.of_type(
        "azure-native:authorization:RoleAssignment") if r.inputs["principalId"] in workers
        and r.inputs["scope"].startswith(vault)]
    assert worker_vault_scopes == ["swarm-worker-token"]
