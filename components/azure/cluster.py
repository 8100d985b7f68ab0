"""The whole swarm on Azure: from the cluster's plan (`components/common/plan.py`), wires
resource group, firewall, network, observability, identities, load balancer, TLS, the
swarm's store, raft backups, registry, shared volumes, nodes (scale sets) and metrics, one
step a concept in the order `docs/architecture.md` gives, and exports what a person needs.

Shaped like `components/aws/cluster.py`; where Azure differs (ASGs instead of
security-group references, a subnet per role instead of per zone, one NAT gateway,
Key Vault plus a table instead of SSM), the component shows it rather than hiding it.
"""

from __future__ import annotations

from dataclasses import dataclass
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
from components.common.plan import ClusterPlan, PoolPlan, plan_cluster
from components.common.summary import cluster_summary, cluster_tags
from swarmstack.config.load import StackConfig
from userdata import NodeUserData, encode, render
from userdata.params import address_pool_for, pool_labels_of, worker_poll_for

ZONES = ("1", "2", "3")


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
        return ExistingNetworkArgs(vnet_id=e.network_id, subnet_ids=list(e.private_subnet_ids), source=settings.source)
    n = cfg.network.new
    assert n is not None
    return NewNetworkArgs(resource_group=resource_group, location=settings.region, cidr=n.cidr, nat=n.nat,
                          nsg_ids=dict(nsg_ids), tags=cluster_tags(settings))


@dataclass(frozen=True)
class Base:
    """What every step builds in: the resource group, the store's random suffix, the
    deployment's generation and the deployer's client config."""

    group: azure.resources.ResourceGroup
    suffix: pulumi.Output[str]
    generation: pulumi.Output[str]
    client: Any
    """`get_client_config_output`: subscription, tenant and the deployer's object id."""

    @property
    def rg(self) -> pulumi.Output[str]:
        return self.group.name


@dataclass(frozen=True)
class NodePools:
    """The scale sets as they are made: the managers, then each worker pool."""

    managers: NodePool
    workers: dict[str, NodePool]


class Cluster(pulumi.ComponentResource):
    """A self-forming Docker Swarm on Azure: the plan (`components/common/plan.py`), then one
    step a concept, in the order both clouds follow (where a concept needs another first,
    the step says so)."""

    exports: dict[str, Any]

    def __init__(self, name: str, settings: StackConfig, ca_key: pulumi.Output[str] | None = None,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("swarmstack:azure:Cluster", name, cluster_summary(settings), opts)
        # `_prefix`: the children's name stem (`Resource` keeps its own `_name`).
        self._prefix, self._settings, self._tags = name, settings, cluster_tags(settings)
        self._location = settings.region
        self._child = pulumi.ResourceOptions(parent=self)
        plan = plan_cluster(settings.cluster)

        base = self._base()
        firewall = self._firewall(plan, base)  # before the network on Azure: the subnets carry the NSGs
        network = self._network(base, firewall)
        monitoring, logs = self._observability(plan, base)
        identities = self._identity(base)
        balancer = self._load_balancer(plan, base, network)
        docker_tls = self._tls(plan, balancer, ca_key)
        store = self._store(plan, base, identities, docker_tls, monitoring)  # holds the API's certificates
        backups = self._backup(plan, base, store, identities)
        registry = self._registry(plan, base, identities)
        shared = self._volumes(plan, base, network)
        nodes = self._nodes(plan, base, network, firewall, identities, balancer, store, backups, registry, shared,
                            logs, docker_tls is not None)
        self._metrics(plan, base, monitoring, logs)
        self.exports = self._exports(base, network, firewall, store, nodes, balancer, backups, registry, docker_tls,
                                     shared, logs)
        self.register_outputs({**cluster_summary(settings), **self.exports})

    def _base(self) -> Base:
        name = self._prefix
        group = azure.resources.ResourceGroup(f"{name}-rg", resource_group_name=f"swarmstack-{name}",
                                              location=self._location, tags=self._tags, opts=self._child)
        suffix = random.RandomString(f"{name}-suffix", length=6, special=False, upper=False, opts=self._child)
        # Drawn once per deployment, as on AWS; the store (vault, storage account) is new with
        # each deployment too, so a re-created stack forms a new swarm.
        generation = random.RandomId(f"{name}-generation", byte_length=4, opts=self._child).hex
        client = azure.authorization.get_client_config_output(opts=pulumi.InvokeOptions(parent=self))
        return Base(group=group, suffix=suffix.result, generation=generation, client=client)

    def _firewall(self, plan: ClusterPlan, base: Base) -> Firewall:
        cfg = self._settings.cluster
        return Firewall(self._prefix, FirewallArgs(
            resource_group=base.rg, location=self._location, exposure=plan.exposure,
            admin_cidrs=tuple(cfg.access.admin_cidrs), lb_public=cfg.load_balancer.public, tags=self._tags),
            opts=self._child)

    def _network(self, base: Base, firewall: Firewall) -> Network:
        return Network(self._prefix, network_args(self._settings, base.rg, firewall.nsg_ids), opts=self._child)

    def _observability(self, plan: ClusterPlan, base: Base) -> tuple[Monitoring, Logs | None]:
        """The action group, then the workspace with its collection rule and quorum alert."""
        cfg = self._settings.cluster
        monitoring = Monitoring(f"{self._prefix}-monitoring", MonitoringArgs(
            cluster=self._prefix, resource_group=base.rg, emails=tuple(cfg.alarms.email),
            https=tuple(cfg.alarms.https), tags=self._tags), opts=self._child)
        if not plan.logging.enabled:
            return monitoring, None
        logs = Logs(f"{self._prefix}-logs", LogsArgs(
            resource_group=base.rg, location=self._location, retention_days=plan.logging.retention_days,
            manager_count=plan.managers.count, manager_quorum=plan.managers.quorum,
            manager_computer_prefix=self._computer_prefix(plan.manager_pool),
            action_group_ids=monitoring.action_group_ids, tags=self._tags, node_metrics=plan.metrics is not None),
            opts=self._child)
        return monitoring, logs

    def _identity(self, base: Base) -> Identities:
        return Identities(f"{self._prefix}-identity", IdentityArgs(
            resource_group=base.rg, resource_group_id=base.group.id, subscription_id=base.client.subscription_id,
            location=self._location, tags=self._tags), opts=self._child)

    def _load_balancer(self, plan: ClusterPlan, base: Base, network: Network) -> LoadBalancer | None:
        """Before the scale sets, which join its backend pools."""
        if plan.load_balancer is None:
            return None
        name, exposure = self._prefix, plan.exposure
        return LoadBalancer(f"{name}-lb", LoadBalancerArgs(
            resource_group=base.rg, resource_group_id=base.group.id, location=self._location,
            public=plan.load_balancer.public, subnet_id=network.subnet_ids["lb"], zones=zones_of(self._settings),
            rules=lb_rules(exposure.published, exposure.docker_api, exposure.has_workers),
            dns_label=base.suffix.apply(lambda s: f"{name}-swarm-{s}"), tags=self._tags), opts=self._child)

    def _tls(self, plan: ClusterPlan, balancer: LoadBalancer | None,
             ca_key: pulumi.Output[str] | None) -> DockerTls | None:
        """The managers' certificate names the balancer's address and name."""
        if plan.docker_api is None:
            return None
        return DockerTls(f"{self._prefix}-docker-api", DockerTlsArgs(
            cluster=self._prefix, ip_addresses=[balancer.address] if balancer else [],
            dns_names=[balancer.fqdn] if balancer and balancer.fqdn is not None else [],
            ca_cert_pem=plan.docker_api.provided_ca_cert_pem, ca_key_pem=ca_key), opts=self._child)

    def _store(self, plan: ClusterPlan, base: Base, identities: Identities, docker_tls: DockerTls | None,
               monitoring: Monitoring) -> SwarmStore:
        """The table (init marker) and the vault (tokens, the API's certificates and their
        expiry alerts): after the TLS material it stores."""
        return SwarmStore(f"{self._prefix}-store", SwarmStoreArgs(
            cluster=self._prefix, suffix=base.suffix, resource_group=base.rg, location=self._location,
            tenant_id=base.client.tenant_id, subscription_id=base.client.subscription_id,
            production=plan.production, manager_principal=identities.principal_ids["managers"],
            worker_principal=identities.principal_ids["workers"], deployer_principal=base.client.object_id,
            docker_api=StoredTls(ca_cert_pem=docker_tls.ca_cert_pem, server_cert_pem=docker_tls.server_cert_pem,
                                 server_key_pem=docker_tls.server_key_pem, expiries=docker_tls.expiries)
            if docker_tls else None,
            action_group_ids=monitoring.action_group_ids, tags=self._tags), opts=self._child)

    def _backup(self, plan: ClusterPlan, base: Base, store: SwarmStore,
                identities: Identities) -> BackupContainer | None:
        if plan.backup is None:
            return None
        return BackupContainer(f"{self._prefix}-backups", BackupContainerArgs(
            resource_group=base.rg, account_name=store.storage_account, blob_endpoint=store.blob_endpoint,
            subscription_id=base.client.subscription_id, manager_principal=identities.principal_ids["managers"],
            retention_days=plan.backup.retention_days, production=plan.production), opts=self._child)

    def _registry(self, plan: ClusterPlan, base: Base, identities: Identities) -> Registry | None:
        if plan.registry is None:
            return None
        return Registry(f"{self._prefix}-registry", RegistryArgs(
            cluster=self._prefix, suffix=base.suffix, resource_group=base.rg, location=self._location,
            subscription_id=base.client.subscription_id, pullers=dict(identities.principal_ids), tags=self._tags),
            opts=self._child)

    def _volumes(self, plan: ClusterPlan, base: Base, network: Network) -> SharedVolumes | None:
        """Before the scale sets, which depend on it: nodes go before their NFS server on destroy."""
        if plan.volumes is None:
            return None
        return SharedVolumes(f"{self._prefix}-volumes", SharedVolumesArgs(
            cluster=self._prefix, suffix=base.suffix, resource_group=base.rg, location=self._location,
            node_subnet_ids=[network.subnet_ids["managers"], network.subnet_ids["workers"]],
            quota_gib=plan.volumes.quota_gib or MINIMUM_QUOTA_GIB, production=plan.production, tags=self._tags),
            opts=self._child)

    def _computer_prefix(self, pool: PoolPlan) -> str:
        return computer_name_prefix(self._prefix, "mgr" if pool.role == "manager" else f"w-{pool.name}")

    def _ssh_key(self) -> pulumi.Input[str]:
        key = self._settings.cluster.access.ssh_public_key
        if key is not None:
            return key
        # Azure wants a key when passwords are off; nobody gets its private half.
        generated = tls.PrivateKey(f"{self._prefix}-ssh", algorithm="RSA", rsa_bits=4096, opts=self._child)
        return generated.public_key_openssh.apply(lambda k: k.strip())

    def _custom_data(self, pool: PoolPlan, base: Base, identities: Identities, store: SwarmStore,
                     backups: BackupContainer | None, registry: Registry | None,
                     docker_api: bool) -> pulumi.Output[str]:
        cfg, name, location = self._settings.cluster, self._prefix, self._location
        role, role_key = pool.role, _role_key(pool.role)
        values = [store.vault_name, store.table_endpoint, identities.client_ids[role_key], base.generation,
                  backups.store if backups is not None and role == "manager" else "",
                  registry.address if registry is not None else ""]
        return pulumi.Output.all(*values).apply(lambda v: encode(render(NodeUserData(
            cluster=name, cloud="azure", role=role, pool=pool.name, region=location, labels=dict(pool.labels),
            pool_labels=pool_labels_of(cfg) if role == "manager" else {},
            generation=v[3],
            docker_api=docker_api and role == "manager", vault_name=v[0], table_endpoint=v[1],
            identity_client_id=v[2],
            logging=cfg.logging.enabled, prune=cfg.prune.enabled,
            prune_schedule=cfg.prune.schedule, prune_volumes=cfg.prune.volumes, prune_until=cfg.prune.until,
            backup_store=v[4], backup_schedule=cfg.backup.schedule, registry=v[5],
            worker_poll_seconds=worker_poll_for(sum(p.count for p in cfg.workers)),
            address_pool=address_pool_for(cfg.network.new.cidr if cfg.network.new else None),
        )), "azure"))

    def _nodes(self, plan: ClusterPlan, base: Base, network: Network, firewall: Firewall, identities: Identities,
               balancer: LoadBalancer | None, store: SwarmStore, backups: BackupContainer | None,
               registry: Registry | None, shared: SharedVolumes | None, logs: Logs | None,
               docker_api: bool) -> NodePools:
        """A scale set per pool, the managers first. The balancer's pools: the published
        ports' for the service nodes (the workers, else the managers), the Docker API's for
        the managers."""
        ssh_key = self._ssh_key()
        pools = balancer.pool_ids if balancer else {}
        services = "workers" if plan.has_workers else "managers"
        made: dict[str, NodePool] = {}
        for pool in plan.pools:
            role_key = _role_key(pool.role)
            wanted = role_key in pools and (role_key == services or (role_key == "managers" and docker_api))
            manager = pool.role == "manager"
            made[pool.name] = NodePool(
                f"{self._prefix}-{pool.name}" if manager else f"{self._prefix}-w-{pool.name}", NodePoolArgs(
                    role=pool.role, pool=pool.name, resource_group=base.rg, location=self._location,
                    sizes=list(pool.instance_types), count=pool.count, disk_gib=pool.disk_gib,
                    zones=zones_of(self._settings), spot=pool.spot,
                    subnet_id=network.subnet_ids[role_key], nsg_id=firewall.nsg_ids[role_key],
                    asg_id=firewall.asg_ids[role_key], backend_pool_ids=[pools[role_key]] if wanted else [],
                    identity_id=identities.ids[role_key], ssh_public_key=ssh_key,
                    custom_data=self._custom_data(pool, base, identities, store, backups, registry, docker_api),
                    public_addresses=network.nodes_public, computer_name_prefix=self._computer_prefix(pool),
                    collection_rule_id=logs.collection_rule_id if logs else None, image=image_of(self._settings),
                    boot_dependencies=[identities, store, *([backups] if backups and manager else []),
                                       *([registry] if registry else []), *([shared] if shared else [])],
                    tags=self._tags), opts=self._child)
        managers = made.pop(plan.manager_pool.name)
        return NodePools(managers=managers, workers=made)

    def _metrics(self, plan: ClusterPlan, base: Base, monitoring: Monitoring, logs: Logs | None) -> None:
        """Disk and memory alerts over the workspace's perf counters (needs the logs)."""
        if plan.metrics is None or logs is None:
            return
        NodeMetrics(f"{self._prefix}-metrics", NodeMetricsArgs(
            cluster=self._prefix, resource_group=base.rg, location=self._location, workspace_id=logs.workspace_id,
            disk_alarm_percent=plan.metrics.disk_alarm_percent,
            memory_alarm_percent=plan.metrics.memory_alarm_percent,
            action_group_ids=monitoring.action_group_ids, tags=self._tags), opts=self._child)

    def _exports(self, base: Base, network: Network, firewall: Firewall, store: SwarmStore, nodes: NodePools,
                 balancer: LoadBalancer | None, backups: BackupContainer | None, registry: Registry | None,
                 docker_tls: DockerTls | None, shared: SharedVolumes | None, logs: Logs | None) -> dict[str, Any]:
        cfg, rg, managers = self._settings.cluster, base.rg, nodes.managers
        exports: dict[str, Any] = {
            "resourceGroup": rg,
            "vnetId": network.vnet_id,
            "nodeSubnetIds": network.subnet_ids,
            "nsgIds": firewall.nsg_ids,
            "keyVaultName": store.vault_name,
            **({"backupStore": backups.store} if backups is not None else {}),
            "managerScaleSet": managers.scale_set_name,
            "workerScaleSets": {pool: pool_nodes.scale_set_name for pool, pool_nodes in nodes.workers.items()},
            "managerShell": pulumi.Output.concat(
                "az vmss run-command invoke --resource-group ", rg, " --name ", managers.scale_set_name,
                " --instance-id 0 --command-id RunShellScript --scripts 'docker node ls'"),
        }
        if registry is not None:
            exports["registry"] = registry.address
            exports["registryRepositories"] = {
                repo: pulumi.Output.concat(registry.address, "/", repo) for repo in cfg.registry.repositories}
        if balancer is not None:
            exports["loadBalancerAddress"] = balancer.address
            if balancer.fqdn is not None:
                exports["loadBalancerDns"] = balancer.fqdn
        if docker_tls is not None:
            target = balancer.fqdn if balancer is not None and balancer.fqdn is not None else \
                balancer.address if balancer is not None else pulumi.Output.from_input("<a manager's address>")
            exports["dockerHost"] = pulumi.Output.concat("tcp://", target, ":2376")
            exports["clientTls"] = docker_tls.client_bundle
        if shared is not None:
            exports["sharedVolumes"] = {
                "account": shared.account_name, "address": shared.host,
                "device": shared.export.apply(lambda e: f":{e}"),
                "volumeCreate": shared.account_name.apply(volume_create_command)}
        if logs is not None:
            exports["logWorkspaceId"] = logs.workspace_id
            exports["logWorkspaceCustomerId"] = logs.workspace_customer_id
        if cfg.access.ssh_public_key is not None:
            # Node addresses: private ones (reach them over VPN/peering/bastion), public with nat: none.
            exports["ssh"] = pulumi.Output.concat(
                "ssh swarmadmin@$(az vmss nic list --resource-group ", rg, " --vmss-name ", managers.scale_set_name,
                " --query '[0].ipConfigurations[0].privateIPAddress' --output tsv)")
        return exports


def _role_key(role: str) -> str:
    """The per-role maps' key of a node role: `managers` or `workers`."""
    return "managers" if role == "manager" else "workers"
