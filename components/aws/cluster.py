"""The whole swarm on AWS: from the cluster's plan (`components/common/plan.py`), wires
store (the cluster key), network, firewall, observability, identity, load balancer, TLS,
raft backups, registry, shared volumes, nodes, alarms, metrics and maintenance, one step
a concept in the order `docs/architecture.md` gives, and exports what a person needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_random as random

from components.aws.backup import BackupBucket, BackupBucketArgs, backup_bucket_name
from components.aws.firewall import SecurityGroups, SecurityGroupsArgs
from components.aws.identity import Account, NodeIdentity, NodeIdentityArgs, account_of
from components.aws.load_balancer import (
    AccessLogBucket,
    AccessLogBucketArgs,
    Forward,
    LoadBalancer,
    LoadBalancerArgs,
    docker_api_forward,
)
from components.aws.maintenance import Prune, PruneArgs
from components.aws.metrics import NodeMetrics, NodeMetricsArgs
from components.aws.network import ExistingNetworkArgs, Network, NewNetworkArgs
from components.aws.nodes import NodeGroup, NodeGroupArgs
from components.aws.observability import LogGroups, LogGroupsArgs, Monitoring, MonitoringArgs, namespace
from components.aws.registry import Registry, RegistryArgs, repository_name
from components.aws.store import ClusterKey, ClusterKeyArgs
from components.aws.tls import DockerTls, DockerTlsArgs
from components.aws.volumes import SharedVolumes, SharedVolumesArgs, volume_create_command
from components.common.managers import MANAGER_POOL
from components.common.names import bucket_name
from components.common.plan import ClusterPlan, plan_cluster
from components.common.ports import DOCKER_TLS_PORT
from components.common.summary import cluster_summary, cluster_tags
from swarmstack.config.load import StackConfig
from swarmstack.config.problems import Problem

if TYPE_CHECKING:
    from userdata.params import NodeUserData

def network_args(settings: StackConfig, account: Account, log_key_arn: pulumi.Input[str] | None = None
                 ) -> NewNetworkArgs | ExistingNetworkArgs:
    cfg = settings.cluster
    if cfg.network.existing is not None:
        e = cfg.network.existing
        return ExistingNetworkArgs(vpc_id=e.network_id, private_subnet_ids=list(e.private_subnet_ids),
                                   public_subnet_ids=list(e.public_subnet_ids), source=settings.source)
    n = cfg.network.new
    assert n is not None
    return NewNetworkArgs(cidr=n.cidr, zones=n.zones, nat=n.nat, flow_logs=n.flow_logs,
                          flow_log_retention_days=cfg.logging.retention_days, tags=cluster_tags(settings),
                          account=account, source=settings.source, flow_log_kms_key_arn=log_key_arn)


def node_params(settings: StackConfig, role: str, pool: str, vpc_cidr: str, generation: str,
                key_arn: str, backup_store: str = "") -> NodeUserData:
    """The user data parameters of one node group. The overlay address pool must not overlap
    the VPC, whose range is only known here for an existing one. `backup_store`
    (`s3://<bucket>`, managers only) turns the raft backups on. Pure."""
    import dataclasses

    from userdata import params_for
    from userdata.params import address_pool_for

    params = params_for(settings.cluster, settings.region, role, pool, generation, key_arn,
                        backup_store=backup_store)
    return dataclasses.replace(params, address_pool=address_pool_for(vpc_cidr))


def node_user_data(settings: StackConfig, role: str, pool: str, vpc_cidr: str, generation: str,
                   key_arn: str, backup_store: str = "") -> str:
    """The base64 cloud-init of one node group, rendered by `userdata` (`node_params`). Past
    EC2's limit the error names the pools' labels, which the managers' user data carries
    all of (the one part of it that grows with the config). Pure."""
    from userdata import encode, render
    from userdata.render import UserDataTooLarge

    try:
        return encode(render(node_params(settings, role, pool, vpc_cidr, generation, key_arn, backup_store)))
    except UserDataTooLarge as err:
        pools = [p for p in settings.cluster.workers if p.labels]
        count = sum(len(p.labels) for p in pools)
        raise pulumi.RunError(Problem(
            "workers[*].labels", f"{count} labels of {len(pools)} pools",
            f"the {pool} group's {err} (its node script carries every pool's labels for the leader to put on "
            "the nodes): use fewer or shorter labels, or fewer pools").line(settings.source)) from None


def manager_restore_tool(settings: StackConfig, vpc_cidr: str, generation: str, key_arn: str, backup_store: str) -> str:
    """The restore tool of the managers whose user data `node_user_data` renders with the same
    values (their script carries its sha256). Pure."""
    from userdata import restore_tool

    return restore_tool(node_params(settings, "manager", MANAGER_POOL, vpc_cidr, generation, key_arn, backup_store))


def shell_command(cluster: str, region: str) -> str:
    """The command that opens a shell on a running manager through Session Manager. Pure."""
    find = (f"aws ec2 describe-instances --region {region} --filters Name=tag:swarmstack:cluster,Values={cluster} "
            "Name=tag:swarmstack:role,Values=manager Name=instance-state-name,Values=running "
            "--query 'Reservations[0].Instances[0].InstanceId' --output text")
    return f"aws ssm start-session --region {region} --target $({find})"


def dashboard_url(region: str, dashboard: str) -> str:
    """The console address of a CloudWatch dashboard. Pure."""
    return f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#dashboards:name={dashboard}"


@dataclass(frozen=True)
class NodeGroups:
    """The node groups as they are made: the managers, then each worker pool."""

    managers: NodeGroup
    workers: dict[str, NodeGroup]

    def names(self) -> dict[str, pulumi.Output[str]]:
        """Every group's name by pool, the managers' first."""
        return {MANAGER_POOL: self.managers.group_name, **self.worker_names()}

    def worker_names(self) -> dict[str, pulumi.Output[str]]:
        return {pool: group.group_name for pool, group in self.workers.items()}


class Cluster(pulumi.ComponentResource):
    """A self-forming Docker Swarm on AWS: the plan (`components/common/plan.py`), then one
    step a concept, in the order both clouds follow (where a concept needs another first,
    the step says so)."""

    exports: dict[str, Any]

    def __init__(self, name: str, settings: StackConfig, ca_key: pulumi.Output[str] | None = None,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("swarmstack:aws:Cluster", name, cluster_summary(settings), opts)
        # `_prefix`: the children's name stem (`Resource` keeps its own `_name`).
        self._prefix, self._settings, self._tags = name, settings, cluster_tags(settings)
        self._child = pulumi.ResourceOptions(parent=self)
        plan = plan_cluster(settings.cluster)
        self._account = account_of(settings.region, self)  # once: each lookup is a provider call

        # Drawn once per deployment: the nodes keep the swarm's state under it, so a stack
        # destroyed and re-created under the same name forms a new swarm.
        self._generation = random.RandomId(f"{name}-generation", byte_length=4, opts=self._child).hex
        key = self._store(plan)  # first on AWS: the flow logs and the log groups encrypt with it
        network = self._network(plan, key)
        groups = self._firewall(plan, network)
        logs = self._observability(plan, key)
        backup_bucket = self._backup_bucket_name(plan)
        identities = self._identity(plan, logs, key, backup_bucket)
        balancer = self._load_balancer(plan, network, groups)
        certificates = self._tls(plan, balancer, key, ca_key)
        backups = self._backup(plan, key, identities, network, backup_bucket)
        registry = self._registry(plan, key)
        shared = self._volumes(plan, network, groups, key)
        nodes = self._nodes(plan, network, groups, identities, key, logs, certificates, backups, shared)
        self._serve(plan, balancer, nodes)
        monitoring = self._alarms(plan, logs, nodes, balancer, key, certificates)
        self._metrics(plan, nodes, monitoring)
        self._maintenance(plan, logs)
        self.exports = self._exports(network, logs, monitoring, groups, nodes, balancer, backups, registry, shared,
                                     certificates)
        self.register_outputs({**cluster_summary(settings), **self.exports})

    def _store(self, plan: ClusterPlan) -> ClusterKey:
        """The cluster key of the SSM store (init marker, tokens, TLS), the logs and the buckets."""
        return ClusterKey(f"{self._prefix}", ClusterKeyArgs(cluster=plan.name, region=self._settings.region,
                                                          for_logs=plan.logging.kms, tags=self._tags,
                                                          account=self._account),
                          opts=self._child)

    def _network(self, plan: ClusterPlan, key: ClusterKey) -> Network:
        return Network(f"{self._prefix}", network_args(self._settings, self._account,
                                                       key.arn if plan.logging.kms else None),
                       opts=self._child)

    def _firewall(self, plan: ClusterPlan, network: Network) -> SecurityGroups:
        cfg = self._settings.cluster
        return SecurityGroups(f"{self._prefix}-sg", SecurityGroupsArgs(
            vpc_id=network.vpc_id, vpc_cidr=network.cidr, exposure=plan.exposure,
            admin_cidrs=list(cfg.access.admin_cidrs), public_lb=cfg.load_balancer.public, tags=self._tags),
            opts=self._child)

    def _observability(self, plan: ClusterPlan, key: ClusterKey) -> LogGroups:
        """The log groups; the alarms and the dashboard come after the nodes (`_alarms`)."""
        return LogGroups(f"{self._prefix}-logs", LogGroupsArgs(
            cluster=plan.name, retention_days=plan.logging.retention_days,
            kms_key_arn=key.arn if plan.logging.kms else None, tags=self._tags), opts=self._child)

    def _backup_bucket_name(self, plan: ClusterPlan) -> str | None:
        """The backup bucket's name is known before it exists (account, region, cluster), so
        the roles can name it and the bucket policy can name the manager role."""
        if plan.backup is None:
            return None
        return backup_bucket_name(plan.name, self._account.id, self._settings.region)

    def _identity(self, plan: ClusterPlan, logs: LogGroups, key: ClusterKey,
                  backup_bucket: str | None) -> dict[str, NodeIdentity]:
        return {
            role: NodeIdentity(f"{self._prefix}-{role}", NodeIdentityArgs(
                role=role, cluster=plan.name, region=self._settings.region, log_group_arns=list(logs.arns.values()),
                key_arn=key.arn, generation=self._generation, tags=self._tags, account=self._account,
                backup_bucket=backup_bucket,
                metrics_namespace=namespace(plan.name) if plan.metrics is not None else None,
                repositories=tuple(repository_name(plan.name, r) for r in plan.registry.repositories)
                if plan.registry is not None else ()), opts=self._child)
            for role in ("manager", "worker")
        }

    def _load_balancer(self, plan: ClusterPlan, network: Network, groups: SecurityGroups) -> LoadBalancer | None:
        """Before the node groups: the managers' certificate names the balancer. Its targets
        are attached once the groups exist (`_serve`)."""
        lb = plan.load_balancer
        if lb is None:
            return None
        assert groups.lb_id is not None
        forwards = [Forward(port, protocol.upper()) for port, protocol in lb.ports]
        if plan.docker_api is not None:
            forwards.append(docker_api_forward())
        logs_bucket = AccessLogBucket(f"{self._prefix}-lb-logs", AccessLogBucketArgs(
            retention_days=plan.logging.retention_days, tags=self._tags, account=self._account,
            name=self._generation.apply(lambda g: bucket_name(f"swarmstack-{plan.name}-lb-logs-{g}"))),
            opts=self._child) if plan.production else None
        return LoadBalancer(f"{self._prefix}-lb", LoadBalancerArgs(
            vpc_id=network.vpc_id, subnet_ids=network.public_subnet_ids if lb.public else network.node_subnet_ids,
            internal=not lb.public, security_group_id=groups.lb_id, forwards=forwards,
            deletion_protection=plan.production, tags=self._tags,
            access_logs_bucket=logs_bucket.bucket if logs_bucket else None,
            access_logs_prefix=logs_bucket.prefix if logs_bucket else ""), opts=self._child)

    def _tls(self, plan: ClusterPlan, balancer: LoadBalancer | None, key: ClusterKey,
             ca_key: pulumi.Output[str] | None) -> DockerTls | None:
        """Before the node groups: managers must not boot before their certificate is stored."""
        if plan.docker_api is None:
            return None
        return DockerTls(f"{self._prefix}-tls", DockerTlsArgs(
            cluster=plan.name, lb_dns_name=balancer.dns_name if balancer else None,
            ca_cert_pem=plan.docker_api.provided_ca_cert_pem, ca_key_pem=ca_key, key_id=key.arn, tags=self._tags),
            opts=self._child)

    def _backup(self, plan: ClusterPlan, key: ClusterKey, identities: dict[str, NodeIdentity], network: Network,
                backup_bucket: str | None) -> BackupBucket | None:
        """The managers' store is the bucket's deterministic name: their restore tool is rendered
        before the bucket exists, from the values their user data gets."""
        if plan.backup is None or backup_bucket is None:
            return None
        settings = self._settings
        return BackupBucket(f"{self._prefix}-backups", BackupBucketArgs(
            name=backup_bucket, key_arn=key.arn, manager_role_arn=identities["manager"].role_arn,
            retention_days=plan.backup.retention_days, production=plan.production, tags=self._tags,
            restore_tool=pulumi.Output.all(self._generation, key.arn).apply(lambda v: manager_restore_tool(
                settings, network.cidr_text, v[0], v[1], f"s3://{backup_bucket}"))),
            opts=self._child)

    def _registry(self, plan: ClusterPlan, key: ClusterKey) -> Registry | None:
        if plan.registry is None:
            return None
        return Registry(f"{self._prefix}-registry", RegistryArgs(
            cluster=plan.name, repositories=list(plan.registry.repositories),
            immutable_tags=plan.registry.immutable_tags, keep_images=plan.registry.keep_images, key_arn=key.arn,
            region=self._settings.region, production=plan.production, tags=self._tags), opts=self._child)

    def _volumes(self, plan: ClusterPlan, network: Network, groups: SecurityGroups,
                 key: ClusterKey) -> SharedVolumes | None:
        """Before the node groups, which depend on it: a node is gone before its NFS server (a
        hard mount whose server vanished would hang the node's drain)."""
        if plan.volumes is None:
            return None
        return SharedVolumes(f"{self._prefix}-volumes", SharedVolumesArgs(
            cluster=plan.name, vpc_id=network.vpc_id, subnet_ids=network.node_subnet_ids,
            subnet_count=plan.zone_count, node_groups={"managers": groups.managers_id, "workers": groups.workers_id},
            has_workers=plan.has_workers, key_arn=key.arn, throughput_mode=plan.volumes.throughput_mode,
            production=plan.production, tags=self._tags), opts=self._child)

    def _user_data(self, role: str, pool: str, network: Network, key: ClusterKey,
                   backups: BackupBucket | None) -> pulumi.Output[str]:
        settings = self._settings
        store = backups.store if backups is not None and role == "manager" else ""
        return pulumi.Output.all(self._generation, key.arn, store).apply(
            lambda v: node_user_data(settings, role, pool, network.cidr_text, v[0], v[1], v[2]))

    def _nodes(self, plan: ClusterPlan, network: Network, groups: SecurityGroups,
               identities: dict[str, NodeIdentity], key: ClusterKey, logs: LogGroups,
               certificates: DockerTls | None, backups: BackupBucket | None,
               shared: SharedVolumes | None) -> NodeGroups:
        """A group per pool. What every node reads or needs from its first boot to its drain
        is a boot dependency: the group depends on it (components stand for their children),
        so it exists before the first node boots and is deleted only after the last node has
        drained."""
        cfg = self._settings.cluster
        common: dict[str, Any] = {"cluster": plan.name, "subnet_ids": network.node_subnet_ids,
                                  "public_ip": network.nodes_public, "key_name": cfg.access.ssh_key_name,
                                  "tags": self._tags, "image_id": cfg.image.id,
                                  "image_parameter": cfg.image.ssm_parameter}
        boot: list[pulumi.Resource] = [logs, *network.node_egress, *([shared] if shared else [])]
        made: dict[str, NodeGroup] = {}
        for pool in plan.pools:
            lifecycle_roles: dict[str, pulumi.Input[str]]
            if pool.role == "manager":
                security_group, lifecycle_roles = groups.managers_id, {"manager": identities["manager"].role_name}
                dependencies = [identities["manager"], *boot, *([certificates] if certificates else []),
                                *([backups] if backups else [])]
            else:
                security_group = groups.workers_id
                lifecycle_roles = {"manager": identities["manager"].role_name,
                                   "worker": identities["worker"].role_name}
                dependencies = [identities["worker"], *boot]
            made[pool.name] = NodeGroup(f"{self._prefix}-{pool.name}", NodeGroupArgs(
                role=pool.role, pool=pool.name, count=pool.count, instance_types=list(pool.instance_types),
                spot=pool.spot, disk_gib=pool.disk_gib, security_group_id=security_group,
                instance_profile_arn=identities[pool.role].profile_arn,
                user_data=self._user_data(pool.role, pool.name, network, key, backups),
                lifecycle_roles=lifecycle_roles, boot_dependencies=dependencies, account=self._account, **common),
                opts=self._child)
        managers = made.pop(plan.manager_pool.name)
        return NodeGroups(managers=managers, workers=made)

    def _serve(self, plan: ClusterPlan, balancer: LoadBalancer | None, nodes: NodeGroups) -> None:
        """The balancer's targets: the published ports to the workers (the managers without
        workers), the Docker API to the managers."""
        if balancer is None or plan.load_balancer is None:
            return
        service_groups: dict[str, pulumi.Input[str]] = (
            dict(nodes.worker_names()) if nodes.workers else {MANAGER_POOL: nodes.managers.group_name})
        attached = [Forward(port, protocol.upper(), service_groups) for port, protocol in plan.load_balancer.ports
                    if port != DOCKER_TLS_PORT]
        if plan.docker_api is not None:
            attached.append(docker_api_forward(nodes.managers.group_name))
        balancer.attach(attached)

    def _alarms(self, plan: ClusterPlan, logs: LogGroups, nodes: NodeGroups, balancer: LoadBalancer | None,
                key: ClusterKey, certificates: DockerTls | None) -> Monitoring:
        """The alarms and the dashboard: after the nodes, whose groups they watch."""
        cfg = self._settings.cluster
        return Monitoring(f"{self._prefix}-monitoring", MonitoringArgs(
            cluster=plan.name, region=self._settings.region, events_group=logs.names["events"],
            manager_count=plan.managers.count, manager_quorum=plan.managers.quorum,
            manager_group=nodes.managers.group_name, account=self._account, worker_groups=nodes.worker_names(),
            lb_arn_suffix=balancer.arn_suffix if balancer else None,
            target_groups=balancer.target_groups if balancer else {}, tags=self._tags, key_arn=key.arn,
            alarm_emails=list(cfg.alarms.email), alarm_https=list(cfg.alarms.https),
            certificate_expiries=certificates.expiries if certificates else {},
            node_metrics=plan.metrics is not None),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[logs]))

    def _metrics(self, plan: ClusterPlan, nodes: NodeGroups, monitoring: Monitoring) -> None:
        if plan.metrics is None:
            return
        NodeMetrics(f"{self._prefix}-metrics", NodeMetricsArgs(
            cluster=plan.name, region=self._settings.region, namespace=namespace(plan.name), groups=nodes.names(),
            topic_arn=monitoring.topic_arn, disk_alarm_percent=plan.metrics.disk_alarm_percent,
            memory_alarm_percent=plan.metrics.memory_alarm_percent, tags=self._tags), opts=self._child)

    def _maintenance(self, plan: ClusterPlan, logs: LogGroups) -> None:
        if plan.prune is None:
            return
        Prune(f"{self._prefix}-maintenance", PruneArgs(
            cluster=plan.name, region=self._settings.region, schedule=plan.prune.schedule, until=plan.prune.until,
            volumes=plan.prune.volumes, log_group=logs.names["prune"]),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[logs]))

    def _exports(self, network: Network, logs: LogGroups, monitoring: Monitoring, groups: SecurityGroups,
                 nodes: NodeGroups, balancer: LoadBalancer | None, backups: BackupBucket | None,
                 registry: Registry | None, shared: SharedVolumes | None,
                 certificates: DockerTls | None) -> dict[str, Any]:
        cluster, region = self._settings.cluster.name, self._settings.region
        exports: dict[str, Any] = {
            "vpcId": network.vpc_id,
            "nodeSubnetIds": network.node_subnet_ids,
            "managerShell": shell_command(cluster, region),
            "logGroups": logs.names,
            "dashboardUrl": monitoring.dashboard_name.apply(lambda d: dashboard_url(region, d)),
            "alarmTopicArn": monitoring.topic_arn,
            "securityGroupIds": {"managers": groups.managers_id, "workers": groups.workers_id,
                                 **({"loadBalancer": groups.lb_id} if groups.lb_id is not None else {})},
            "managerGroup": nodes.managers.group_name,
            "workerGroups": nodes.worker_names(),
        }
        if balancer is not None:
            exports["loadBalancerDns"] = balancer.dns_name
        if backups is not None:
            exports["backupStore"] = backups.store
        if registry is not None:
            exports["registry"] = registry.address
            exports["registryRepositories"] = registry.urls
        if shared is not None:
            exports["sharedVolumes"] = {
                "fileSystemId": shared.file_system_id, "address": shared.dns_name, "device": ":/",
                "volumeCreate": shared.dns_name.apply(volume_create_command)}
        if certificates is not None:
            if balancer is not None:
                exports["dockerHost"] = balancer.dns_name.apply(lambda d: f"tcp://{d}:2376")
            exports["dockerTlsParameters"] = certificates.parameter_names
            exports["clientTls"] = certificates.client_bundle
        return exports
