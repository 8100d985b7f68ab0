"""The engine's Azure model: it refuses what Azure Resource Manager would refuse, and
fails loudly on what it does not model."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from swarmstack.engine.azure import AzureBackend
from swarmstack.engine.local import RandomBackend, TlsBackend
from swarmstack.engine.mocks import EngineError, UnsupportedByEngine
from swarmstack.engine.run import run_stack

CONFIG = {"azure-native:location": "westeurope"}

PRELUDE = """
import pulumi
import pulumi_azure_native as azure
rg = azure.resources.ResourceGroup("rg", resource_group_name="rg", location="westeurope")
vnet = azure.network.VirtualNetwork("vnet", resource_group_name=rg.name, virtual_network_name="vnet",
                                    address_space={"address_prefixes": ["10.0.0.0/16"]})
subnet = azure.network.Subnet("nodes", resource_group_name=rg.name, virtual_network_name=vnet.name,
                              subnet_name="nodes", address_prefix="10.0.1.0/24")
"""

RULE = dict(direction="Inbound", access="Allow", protocol="Tcp", source_port_range="*",
            destination_port_range="80", source_address_prefix="Internet", destination_address_prefix="*")

KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEqCwt0cWh5Lqu6ZN5Yr0tRNxW8mDgG1ePMlq1Fdo4yR admin@example")


def run_program(tmp_path: Path, body: str, backend: AzureBackend | None = None):  # type: ignore[no-untyped-def]
    (tmp_path / "__main__.py").write_text(PRELUDE + textwrap.dedent(body))
    backends = {"azure-native": backend or AzureBackend("westeurope"), "tls": TlsBackend(),
                "random": RandomBackend()}
    return run_stack("test", CONFIG, tmp_path, backends=backends)  # type: ignore[arg-type]


def vmss(**overrides: object) -> str:
    """A scale set program; `overrides` replace parts of its virtual machine profile (as Python source)."""
    parts = {
        "os_profile": f"""{{"computer_name_prefix": "node", "admin_username": "swarmadmin",
            "linux_configuration": {{"disable_password_authentication": True, "ssh": {{"public_keys": [
                {{"path": "/home/swarmadmin/.ssh/authorized_keys", "key_data": "{KEY}"}}]}}}}}}""",
        "priority": '"Regular"',
        "scheduled_events_profile": "None",
        "eviction_policy": "None",
        "billing_profile": "None",
    }
    parts.update({k: str(v) for k, v in overrides.items()})
    zones = parts.pop("zones", '["1", "2", "3"]')
    profile = ", ".join(f'"{k}": {v}' for k, v in parts.items())
    return f"""
        azure.compute.VirtualMachineScaleSet("ss", resource_group_name=rg.name, vm_scale_set_name="ss",
            sku={{"name": "Standard_B2s", "capacity": 1}}, zones={zones},
            virtual_machine_profile={{{profile},
                "storage_profile": {{"image_reference": {{"publisher": "Canonical", "offer": "ubuntu-24_04-lts",
                                                         "sku": "server", "version": "latest"}},
                                    "os_disk": {{"create_option": "FromImage"}}}},
                "network_profile": {{"network_interface_configurations": [{{"name": "nic", "primary": True,
                    "ip_configurations": [{{"name": "ip", "subnet": {{"id": subnet.id}}}}]}}]}}}})
    """


def test_a_well_formed_scale_set_is_accepted(tmp_path: Path) -> None:
    graph = run_program(tmp_path, vmss())
    scale_set = graph.one("azure-native:compute:VirtualMachineScaleSet", "ss")
    assert scale_set.id == ("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/"
                            "Microsoft.Compute/virtualMachineScaleSets/ss")


def test_a_subnet_outside_its_vnet_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match=r"Subnet 'outside': subnet 10.1.0.0/24 is not inside the address space "
                                          r"of VNet 'vnet' \(10.0.0.0/16\)"):
        run_program(tmp_path, """
            azure.network.Subnet("outside", resource_group_name=rg.name, virtual_network_name=vnet.name,
                                 subnet_name="outside", address_prefix="10.1.0.0/24")
        """)


def test_overlapping_subnets_are_refused(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match=r"subnet 10.0.1.0/25 overlaps subnet 'nodes' \(10.0.1.0/24\)"):
        run_program(tmp_path, """
            azure.network.Subnet("overlap", resource_group_name=rg.name, virtual_network_name=vnet.name,
                                 subnet_name="overlap", address_prefix="10.0.1.0/25",
                                 opts=pulumi.ResourceOptions(depends_on=[subnet]))
        """)


def test_a_duplicate_nsg_priority_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match=r"rule 'b': priority 200 \(Inbound\) is taken by rule 'a'"):
        run_program(tmp_path, f"""
            azure.network.NetworkSecurityGroup("nsg", resource_group_name=rg.name, security_rules=[
                dict(name="a", priority=200, **{RULE!r}), dict(name="b", priority=200, **{RULE!r})])
        """)


def test_the_same_priority_in_both_directions_is_fine(tmp_path: Path) -> None:
    out = {**RULE, "direction": "Outbound"}
    run_program(tmp_path, f"""
        azure.network.NetworkSecurityGroup("nsg", resource_group_name=rg.name, security_rules=[
            dict(name="a", priority=200, **{RULE!r}), dict(name="b", priority=200, **{out!r})])
    """)


@pytest.mark.parametrize(("change", "message"), [
    ({"priority": 99}, "priority 99 is outside 100-4096"),
    ({"priority": 4097}, "priority 4097 is outside 100-4096"),
    ({"destination_port_range": "70000"}, "destination port '70000' is outside 0-65535"),
    ({"protocol": "Esp"}, "protocol Esp has no ports"),
    ({"source_address_prefixes": ["Internet"]}, "exactly one of sourceAddressPrefix"),
])
def test_malformed_nsg_rules_are_refused(tmp_path: Path, change: dict, message: str) -> None:
    rule = {**RULE, "priority": 200, **change}
    with pytest.raises(EngineError, match=message):
        run_program(tmp_path, f"""
            azure.network.NetworkSecurityGroup("nsg", resource_group_name=rg.name,
                                               security_rules=[dict(name="a", **{rule!r})])
        """)


def test_a_dangling_reference_is_refused(tmp_path: Path) -> None:
    missing = ("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/"
               "Microsoft.Network/networkSecurityGroups/nowhere")
    with pytest.raises(EngineError, match=rf"Subnet 'guarded': networkSecurityGroup: refers to {missing}, "
                                          "which does not exist"):
        run_program(tmp_path, f"""
            azure.network.Subnet("guarded", resource_group_name=rg.name, virtual_network_name=vnet.name,
                                 subnet_name="guarded", address_prefix="10.0.2.0/24",
                                 network_security_group={{"id": "{missing}"}})
        """)


def test_a_missing_resource_group_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="resource group 'elsewhere' does not exist"):
        run_program(tmp_path, """
            azure.network.ApplicationSecurityGroup("asg", resource_group_name="elsewhere")
        """)


def test_an_unknown_type_fails_loudly(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedByEngine, match=r"azure-native:cdn:Profile 'cdn': the engine has no model"):
        run_program(tmp_path, """
            azure.cdn.Profile("cdn", resource_group_name=rg.name, sku={"name": "Standard_Microsoft"})
        """)


def test_an_unknown_invoke_fails_loudly(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedByEngine, match=r"azure-native:compute:getVirtualMachine: the engine has no model"):
        run_program(tmp_path, """
            azure.compute.get_virtual_machine(resource_group_name="rg", vm_name="x")
        """)


def test_a_load_balancer_rule_needs_a_probe(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match=r"rule 'web': probe is required \(every rule has a health probe\)"):
        run_program(tmp_path, """
            ip = azure.network.PublicIPAddress("ip", resource_group_name=rg.name, sku={"name": "Standard"},
                                               public_ip_allocation_method="Static")
            base = rg.id.apply(lambda i: i + "/providers/Microsoft.Network/loadBalancers/lb")
            azure.network.LoadBalancer("lb", resource_group_name=rg.name, load_balancer_name="lb",
                sku={"name": "Standard"},
                frontend_ip_configurations=[{"name": "front", "public_ip_address": {"id": ip.id}}],
                backend_address_pools=[{"name": "pool"}],
                load_balancing_rules=[{"name": "web", "protocol": "Tcp", "frontend_port": 80, "backend_port": 80,
                    "frontend_ip_configuration": {"id": base.apply(lambda b: b + "/frontendIPConfigurations/front")},
                    "backend_address_pool": {"id": base.apply(lambda b: b + "/backendAddressPools/pool")}}])
        """)


def test_a_load_balancer_rule_must_name_its_own_probe(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match=r"probe .*/probes/other is not one of this load balancer's probes"):
        run_program(tmp_path, """
            ip = azure.network.PublicIPAddress("ip", resource_group_name=rg.name, sku={"name": "Standard"},
                                               public_ip_allocation_method="Static")
            base = rg.id.apply(lambda i: i + "/providers/Microsoft.Network/loadBalancers/lb")
            azure.network.LoadBalancer("lb", resource_group_name=rg.name, load_balancer_name="lb",
                sku={"name": "Standard"},
                frontend_ip_configurations=[{"name": "front", "public_ip_address": {"id": ip.id}}],
                backend_address_pools=[{"name": "pool"}], probes=[{"name": "web", "protocol": "Tcp", "port": 80}],
                load_balancing_rules=[{"name": "web", "protocol": "Tcp", "frontend_port": 80, "backend_port": 80,
                    "frontend_ip_configuration": {"id": base.apply(lambda b: b + "/frontendIPConfigurations/front")},
                    "backend_address_pool": {"id": base.apply(lambda b: b + "/backendAddressPools/pool")},
                    "probe": {"id": base.apply(lambda b: b + "/probes/other")}}])
        """)


def test_a_scale_set_without_passwords_needs_an_ssh_key(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="password authentication is disabled, so at least one SSH public key"):
        run_program(tmp_path, vmss(os_profile="""{"computer_name_prefix": "node", "admin_username": "swarmadmin",
            "linux_configuration": {"disable_password_authentication": True}}"""))


def test_a_scale_set_zone_must_be_1_2_or_3(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="zone '4' is not one of 1, 2, 3"):
        run_program(tmp_path, vmss(zones='["1", "4"]'))


def test_spot_needs_its_eviction_settings_and_no_terminate_notification(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="Spot scale set needs evictionPolicy"):
        run_program(tmp_path, vmss(priority='"Spot"'))
    with pytest.raises(EngineError, match="terminate notifications are not for Spot"):
        run_program(tmp_path, vmss(priority='"Spot"', eviction_policy='"Delete"', billing_profile='{"max_price": -1}',
                                   scheduled_events_profile='{"terminate_notification_profile": '
                                                            '{"enable": True, "not_before_timeout": "PT5M"}}'))


def test_the_terminate_window_is_five_to_fifteen_minutes(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="notBeforeTimeout must be PT5M to PT15M, got 'PT20M'"):
        run_program(tmp_path, vmss(scheduled_events_profile='{"terminate_notification_profile": '
                                                            '{"enable": True, "not_before_timeout": "PT20M"}}'))


@pytest.mark.parametrize(("vault_name", "message"), [
    ("kv", "must be 3-24"), ("a-vault-name-that-is-too-long", "must be 3-24"), ("kv--x", "must be 3-24"),
    ("1kv", "must be 3-24")])
def test_key_vault_names_follow_azures_rules(tmp_path: Path, vault_name: str, message: str) -> None:
    with pytest.raises(EngineError, match=message):
        run_program(tmp_path, f"""
            cfg = azure.authorization.get_client_config_output()
            azure.keyvault.Vault("kv", resource_group_name=rg.name, vault_name="{vault_name}",
                properties={{"tenant_id": cfg.tenant_id, "sku": {{"family": "A", "name": "standard"}},
                             "enable_rbac_authorization": True}})
        """)


def test_storage_account_names_are_lowercase_and_short(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="must be 3-24 lowercase letters and digits"):
        run_program(tmp_path, """
            azure.storage.StorageAccount("sa", resource_group_name=rg.name, account_name="Swarm-State",
                                         kind="StorageV2", sku={"name": "Standard_LRS"})
        """)


def test_log_retention_is_30_to_730_days(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="retentionInDays 7 is outside 30-730"):
        run_program(tmp_path, """
            azure.operationalinsights.Workspace("logs", resource_group_name=rg.name, workspace_name="logs-ws",
                                                retention_in_days=7, sku={"name": "PerGB2018"})
        """)


def test_role_assignments_need_a_known_principal_and_a_fitting_scope(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match=r"principal 99999999-.* is no identity the model knows"):
        run_program(tmp_path, """
            cfg = azure.authorization.get_client_config_output()
            azure.authorization.RoleAssignment("ra", scope=rg.id, principal_id="99999999-0000-0000-0000-000000000000",
                role_definition_id=cfg.subscription_id.apply(lambda s: f"/subscriptions/{s}/providers/"
                    "Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7"))
        """)
    with pytest.raises(EngineError, match="role 'Storage Table Data Reader' does not apply to a subnets"):
        run_program(tmp_path, """
            cfg = azure.authorization.get_client_config_output()
            me = azure.managedidentity.UserAssignedIdentity("me", resource_group_name=rg.name,
                                                            resource_name_="node-identity")
            azure.authorization.RoleAssignment("ra", scope=subnet.id, principal_id=me.principal_id,
                role_definition_id=cfg.subscription_id.apply(lambda s: f"/subscriptions/{s}/providers/"
                    "Microsoft.Authorization/roleDefinitions/76199698-9eea-4c19-bc75-cec21354c6b6"))
        """)


def test_existing_network_must_exist(tmp_path: Path) -> None:
    backend = AzureBackend("westeurope")
    _, subnets = backend.seed_network("net-rg", "shared", ["10.9.0.0/16"], {"a": "10.9.1.0/24"})
    graph = run_program(tmp_path, """
        found = azure.network.get_subnet_output(resource_group_name="net-rg", virtual_network_name="shared",
                                                subnet_name="a")
        pulumi.export("found", found.id)
    """, backend)
    assert graph.outputs["found"] == subnets["a"]
    with pytest.raises(Exception, match="does not exist"):
        run_program(tmp_path, """
            azure.network.get_subnet(resource_group_name="net-rg", virtual_network_name="shared", subnet_name="b")
        """, backend=AzureBackend("westeurope"))


def test_a_big_uniform_scale_set_needs_several_placement_groups(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="more than 100 machines need singlePlacementGroup false"):
        run_program(tmp_path, vmss().replace('"capacity": 1', '"capacity": 101'))


def test_nodes_cannot_use_a_subnet_in_another_region(tmp_path: Path) -> None:
    backend = AzureBackend("westeurope")
    _, subnets = backend.seed_network("far-rg", "far", ["10.9.0.0/16"], {"a": "10.9.1.0/24"}, location="northeurope")
    program = vmss().replace("subnet.id", repr(subnets["a"]))
    with pytest.raises(EngineError, match="subnet is in northeurope, the scale set in westeurope"):
        run_program(tmp_path, program, backend)
