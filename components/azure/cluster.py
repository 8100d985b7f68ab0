"""The whole swarm on Azure: wires resource group, network, firewall, identities, the
swarm's store, nodes (scale sets), load balancer, TLS, observability and raft backups,
and exports what a person needs.

Shaped like `components/aws/cluster.py`; where Azure differs (ASGs instead of
security-group references, a subnet per role instead of per zone, one NAT gateway,
Key Vault plus a table instead of SSM), the component shows it rather than hiding it.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_azure_native as azure
import pulumi_random as random
import pulumi_tls as tls

from components.azure.backup import BackupContainer, BackupContainerArgs
from components.azure.firewall import Firewall, FirewallArgs
from components.azure.identity import Identities, IdentityArgs
from components.azure.load_balancer import LoadBalancer, LoadBalancerArgs, lb_rules
from components.azure.metrics import NodeMetrics, NodeMetricsArgs
from components.azure.network import ExistingNetworkArgs, Network, NewNetworkArgs
from components.azure.nodes import DEFAULT_IMAGE, NodePool, NodePoolArgs, computer_name_prefix
from components.azure.observability import Logs, LogsArgs, Monitoring, MonitoringArgs
from components.azure.registry import Registry, RegistryArgs
from components.azure.store import StoredTls, SwarmStore, SwarmStoreArgs
from components.azure.tls import DockerTls, DockerTlsArgs
from components.azure.volumes import MINIMUM_QUOTA_GIB, SharedVolumes, SharedVolumesArgs, volume_create_command
from components.common.managers import manager_plan
from components.common.ports import Exposure
from components.common.summary import cluster_summary, cluster_tags
from swarmstack.config.load import StackConfig
from userdata import NodeUserData, encode, render
from userdata.params import address_pool_for, pool_labels_of, worker_poll_for

ZONES = ("1", "2", "3")


def exposure_of(settings: StackConfig) -> Exposure:
    """The port matrix's view of the cluster."""
    cfg = settings.cluster
    return Exposure(
        docker_api=cfg.docker_api.enabled,
        ssh=cfg.access.ssh_public_key is not None and bool(cfg.access.admin_cidrs),
        published=tuple((p.port, p.protocol) for p in cfg.load_balancer.ports) if cfg.load_balancer.enabled else (),
        has_workers=bool(cfg.workers), load_balancer=cfg.load_balancer.enabled)


def zones_of(settings: StackConfig) -> list[str]:
    """Azure zones to spread over: the first `zone_count`, at most 3."""
    return list(ZONES[: min(settings.cluster.zone_count, len(ZONES))])


def image_of(settings: StackConfig) -> dict[str, str]:
    image = settings.cluster.image
    if image.id:
        return {"id": image.id}
    if image.publisher and image.offer and image.sku:
        return {"publisher": image.publisher, "offer": image.offer, "sku": image.sku, "version": "latest"}
    return dict(DEFAULT_IMAGE)


def network_args(settings: StackConfig, resource_group: pulumi.Input[str],
                 nsg_ids: dict[str, pulumi.Output[str]]) -> NewNetworkArgs | ExistingNetworkArgs:
    cfg = settings.cluster
    if cfg.network.existing is not None:
        e = cfg.network.existing
        return ExistingNetworkArgs(vnet_id=e.network_id, subnet_ids=list(e.private_subnet_ids))
    n = cfg.network.new
    assert n is not None
    return NewNetworkArgs(resource_group=resource_group, location=settings.region, cidr=n.cidr, nat=n.nat,
                          nsg_ids=dict(nsg_ids), tags=cluster_tags(settings))


class Cluster(pulumi.ComponentResource):
    """A self-forming Docker Swarm on Azure."""

    exports: dict[str, Any]

    def __init__(self, name: str, settings: StackConfig, ca_key: pulumi.Output[str] | None = None,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("swarmstack:azure:Cluster", name, cluster_summary(settings), opts)
        cfg = settings.cluster
        manager = manager_plan(cfg)
        child = pulumi.ResourceOptions(parent=self)
        location = settings.region
        tags = cluster_tags(settings)
        client = azure.authorization.get_client_config_output(opts=pulumi.InvokeOptions(parent=self))
        exposure = exposure_of(settings)
        zones = zones_of(settings)

        group = azure.resources.ResourceGroup(f"{name}-rg", resource_group_name=f"swarmstack-{name}",
                                              location=location, tags=tags, opts=child)
        rg = group.name
        suffix = random.RandomString(f"{name}-suffix", length=6, special=False, upper=False, opts=child)
        # Drawn once per deployment, as on AWS; the store (vault, storage account) is new with
        # each deployment too, so a re-created stack forms a new swarm.
        generation = random.RandomId(f"{name}-generation", byte_length=4, opts=child).hex

        firewall = Firewall(name, FirewallArgs(
            resource_group=rg, location=location, exposure=exposure, admin_cidrs=tuple(cfg.access.admin_cidrs),
            lb_public=cfg.load_balancer.public, tags=tags), opts=child)
        network = Network(name, network_args(settings, rg, firewall.nsg_ids), opts=child)
        identities = Identities(f"{name}-identity", IdentityArgs(
            resource_group=rg, resource_group_id=group.id, subscription_id=client.subscription_id,
            location=location, tags=tags), opts=child)

        registry = Registry(f"{name}-registry", RegistryArgs(
            cluster=name, suffix=suffix.result, resource_group=rg, location=location,
            subscription_id=client.subscription_id, pullers=dict(identities.principal_ids), tags=tags),
            opts=child) if cfg.registry.enabled else None

        balancer = None
        if cfg.load_balancer.enabled:
            balancer = LoadBalancer(f"{name}-lb", LoadBalancerArgs(
                resource_group=rg, resource_group_id=group.id, location=location, public=cfg.load_balancer.public,
                subnet_id=network.subnet_ids["lb"], zones=zones,
                rules=lb_rules(exposure.published, exposure.docker_api, exposure.has_workers),
                dns_label=suffix.result.apply(lambda s: f"{name}-swarm-{s}"), tags=tags), opts=child)

        docker_tls = None
        if cfg.docker_api.enabled:
            docker_tls = DockerTls(f"{name}-docker-api", DockerTlsArgs(
                cluster=name, ip_addresses=[balancer.address] if balancer else [],
                dns_names=[balancer.fqdn] if balancer and balancer.fqdn is not None else [],
                ca_cert_pem=cfg.docker_api.ca_cert_pem if cfg.docker_api.ca == "provided" else None,
                ca_key_pem=ca_key), opts=child)

        monitoring = Monitoring(f"{name}-monitoring", MonitoringArgs(
            cluster=name, resource_group=rg, emails=tuple(cfg.alarms.email), https=tuple(cfg.alarms.https),
            tags=tags), opts=child)

        store = SwarmStore(f"{name}-store", SwarmStoreArgs(
            cluster=name, suffix=suffix.result, resource_group=rg, location=location, tenant_id=client.tenant_id,
            subscription_id=client.subscription_id, production=cfg.production,
            manager_principal=identities.principal_ids["managers"],
            worker_principal=identities.principal_ids["workers"], deployer_principal=client.object_id,
            docker_api=StoredTls(ca_cert_pem=docker_tls.ca_cert_pem, server_cert_pem=docker_tls.server_cert_pem,
                                 server_key_pem=docker_tls.server_key_pem, expiries=docker_tls.expiries)
            if docker_tls else None,
            action_group_ids=monitoring.action_group_ids, tags=tags), opts=child)

        backups = BackupContainer(f"{name}-backups", BackupContainerArgs(
            resource_group=rg, account_name=store.storage_account, blob_endpoint=store.blob_endpoint,
            subscription_id=client.subscription_id, manager_principal=identities.principal_ids["managers"],
            retention_days=cfg.backup.retention_days, production=cfg.production),
            opts=child) if cfg.backup_enabled else None

        logs = None
        manager_prefix = computer_name_prefix(name, "mgr")
        if cfg.logging.enabled:
            logs = Logs(f"{name}-logs", LogsArgs(
                resource_group=rg, location=location, retention_days=cfg.logging.retention_days,
                manager_count=manager.count, manager_quorum=manager.quorum,
                manager_computer_prefix=manager_prefix,
                action_group_ids=monitoring.action_group_ids, tags=tags, node_metrics=cfg.metrics.enabled),
                opts=child)
            if cfg.metrics.enabled:
                NodeMetrics(f"{name}-metrics", NodeMetricsArgs(
                    cluster=name, resource_group=rg, location=location, workspace_id=logs.workspace_id,
                    disk_alarm_percent=cfg.metrics.disk_alarm_percent,
                    memory_alarm_percent=cfg.metrics.memory_alarm_percent,
                    action_group_ids=monitoring.action_group_ids, tags=tags), opts=child)

        if cfg.access.ssh_public_key is not None:
            ssh_key: pulumi.Input[str] = cfg.access.ssh_public_key
        else:
            # Azure wants a key when passwords are off; nobody gets its private half.
            generated = tls.PrivateKey(f"{name}-ssh", algorithm="RSA", rsa_bits=4096, opts=child)
            ssh_key = generated.public_key_openssh.apply(lambda key: key.strip())

        # Before the scale sets, which depend on it: nodes go before their NFS server on destroy.
        shared = SharedVolumes(f"{name}-volumes", SharedVolumesArgs(
            cluster=name, suffix=suffix.result, resource_group=rg, location=location,
            node_subnet_ids=[network.subnet_ids["managers"], network.subnet_ids["workers"]],
            quota_gib=cfg.shared_volumes.quota_gib or MINIMUM_QUOTA_GIB, production=cfg.production, tags=tags),
            opts=child) if cfg.shared_volumes.enabled else None

        pools = balancer.pool_ids if balancer else {}
        services = "workers" if exposure.has_workers else "managers"

        def backend(role: str) -> list[pulumi.Input[str]]:
            wanted = role in pools and (role == services or (role == "managers" and exposure.docker_api))
            return [pools[role]] if wanted else []

        def custom_data(role: str, pool: str, labels: dict[str, str]) -> pulumi.Output[str]:
            role_key = "managers" if role == "manager" else "workers"
            values = [store.vault_name, store.table_endpoint, identities.client_ids[role_key], generation,
                      backups.store if backups is not None and role == "manager" else ""]
            return pulumi.Output.all(*values).apply(lambda v: encode(render(NodeUserData(
                cluster=name, cloud="azure", role=role, pool=pool, region=location, labels=dict(labels),
                pool_labels=pool_labels_of(cfg) if role == "manager" else {},
                generation=v[3],
                docker_api=bool(docker_tls) and role == "manager", vault_name=v[0], table_endpoint=v[1],
                identity_client_id=v[2],
                logging=cfg.logging.enabled, prune=cfg.prune.enabled,
                prune_schedule=cfg.prune.schedule, prune_volumes=cfg.prune.volumes, prune_until=cfg.prune.until,
                backup_store=v[4], backup_schedule=cfg.backup.schedule,
                worker_poll_seconds=worker_poll_for(sum(p.count for p in cfg.workers)),
                address_pool=address_pool_for(cfg.network.new.cidr if cfg.network.new else None),
            )), "azure"))

        def node_pool(pool_name: str, role: str, sizes: list[str], count: int, disk: int, spot: bool,
                      labels: dict[str, str], prefix: str) -> NodePool:
            role_key = "managers" if role == "manager" else "workers"
            return NodePool(f"{name}-{pool_name}" if role == "manager" else f"{name}-w-{pool_name}", NodePoolArgs(
                role=role, pool=pool_name, resource_group=rg, location=location,  # type: ignore[arg-type]
                sizes=sizes, count=count, disk_gib=disk, zones=zones, spot=spot,
                subnet_id=network.subnet_ids[role_key], nsg_id=firewall.nsg_ids[role_key],
                asg_id=firewall.asg_ids[role_key], backend_pool_ids=backend(role_key),
                identity_id=identities.ids[role_key], ssh_public_key=ssh_key,
                custom_data=custom_data(role, pool_name, labels), public_addresses=network.nodes_public,
                computer_name_prefix=prefix, collection_rule_id=logs.collection_rule_id if logs else None,
                image=image_of(settings),
                boot_dependencies=[identities, store, *([backups] if backups and role == "manager" else []),
                                   *([shared] if shared else [])],
                tags=tags), opts=child)

        managers = node_pool(manager.pool, "manager", [cfg.managers.instance_type], manager.count,
                             cfg.managers.disk_gib, False, {}, manager_prefix)
        workers = {pool.name: node_pool(pool.name, "worker", list(pool.instance_type), pool.count, pool.disk_gib,
                                        pool.spot, pool.labels, computer_name_prefix(name, f"w-{pool.name}"))
                   for pool in cfg.workers}

        self.exports = {
            "resourceGroup": rg,
            "vnetId": network.vnet_id,
            "nodeSubnetIds": network.subnet_ids,
            "nsgIds": firewall.nsg_ids,
            "keyVaultName": store.vault_name,
            **({"backupStore": backups.store} if backups is not None else {}),
            "managerScaleSet": managers.scale_set_name,
            "workerScaleSets": {pool: nodes.scale_set_name for pool, nodes in workers.items()},
            "managerShell": pulumi.Output.concat(
                "az vmss run-command invoke --resource-group ", rg, " --name ", managers.scale_set_name,
                " --instance-id 0 --command-id RunShellScript --scripts 'docker node ls'"),
        }
        if registry is not None:
            self.exports["registry"] = registry.address
            self.exports["registryRepositories"] = {
                repo: pulumi.Output.concat(registry.address, "/", repo) for repo in cfg.registry.repositories}
        if balancer is not None:
            self.exports["loadBalancerAddress"] = balancer.address
            if balancer.fqdn is not None:
                self.exports["loadBalancerDns"] = balancer.fqdn
        if docker_tls is not None:
            target = balancer.fqdn if balancer is not None and balancer.fqdn is not None else \
                balancer.address if balancer is not None else pulumi.Output.from_input("<a manager's address>")
            self.exports["dockerHost"] = pulumi.Output.concat("tcp://", target, ":2376")
            self.exports["clientTls"] = docker_tls.client_bundle
        if shared is not None:
            self.exports["sharedVolumes"] = {
                "account": shared.account_name, "address": shared.host,
                "device": shared.export.apply(lambda e: f":{e}"),
                "volumeCreate": shared.account_name.apply(volume_create_command)}
        if logs is not None:
            self.exports["logWorkspaceId"] = logs.workspace_id
            self.exports["logWorkspaceCustomerId"] = logs.workspace_customer_id
        if cfg.access.ssh_public_key is not None:
            # Node addresses: private ones (reach them over VPN/peering/bastion), public with nat: none.
            self.exports["ssh"] = pulumi.Output.concat(
                "ssh swarmadmin@$(az vmss nic list --resource-group ", rg, " --vmss-name ", managers.scale_set_name,
                " --query '[0].ipConfigurations[0].privateIPAddress' --output tsv)")
        self.register_outputs({**cluster_summary(settings), **self.exports})
