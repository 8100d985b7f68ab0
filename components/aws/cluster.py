"""The whole swarm on AWS: wires network, firewall, identity, store (the cluster key),
nodes, load balancer, TLS, observability, maintenance and raft backups, and exports
what a person needs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.aws.backup import BackupBucket, BackupBucketArgs, backup_bucket_name
from components.aws.firewall import SecurityGroups, SecurityGroupsArgs
from components.aws.identity import NodeIdentity, NodeIdentityArgs
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
from components.common.managers import MANAGER_POOL, manager_plan
from components.common.names import bucket_name
from components.common.ports import DOCKER_TLS_PORT, Exposure
from components.common.summary import cluster_summary, cluster_tags
from swarmstack.config.load import StackConfig
from swarmstack.config.model import ClusterConfig

if TYPE_CHECKING:
    from userdata.params import NodeUserData

def network_args(settings: StackConfig, log_key_arn: pulumi.Input[str] | None = None
                 ) -> NewNetworkArgs | ExistingNetworkArgs:
    cfg = settings.cluster
    if cfg.network.existing is not None:
        e = cfg.network.existing
        return ExistingNetworkArgs(vpc_id=e.network_id, private_subnet_ids=list(e.private_subnet_ids),
                                   public_subnet_ids=list(e.public_subnet_ids))
    n = cfg.network.new
    assert n is not None
    return NewNetworkArgs(cidr=n.cidr, zones=n.zones, nat=n.nat, flow_logs=n.flow_logs,
                          flow_log_retention_days=cfg.logging.retention_days, tags=cluster_tags(settings),
                          flow_log_kms_key_arn=log_key_arn)


def exposure_of(cfg: ClusterConfig) -> Exposure:
    """What the cluster opens, as the port matrix needs it. Pure."""
    lb = cfg.load_balancer
    return Exposure(docker_api=cfg.docker_api.enabled, ssh=cfg.access.ssh_key_name is not None,
                    published=tuple((p.port, p.protocol) for p in lb.ports) if lb.enabled else (),
                    has_workers=bool(cfg.workers), load_balancer=lb.enabled)


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
    """The base64 cloud-init of one node group, rendered by `userdata` (`node_params`). Pure."""
    from userdata import encode, render

    return encode(render(node_params(settings, role, pool, vpc_cidr, generation, key_arn, backup_store)))


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


class Cluster(pulumi.ComponentResource):
    """A self-forming Docker Swarm on AWS."""

    exports: dict[str, Any]

    def __init__(self, name: str, settings: StackConfig, ca_key: pulumi.Output[str] | None = None,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("swarmstack:aws:Cluster", name, cluster_summary(settings), opts)
        child = pulumi.ResourceOptions(parent=self)
        cfg, region, tags = settings.cluster, settings.region, cluster_tags(settings)
        lb_cfg, api = cfg.load_balancer, cfg.docker_api.enabled
        manager = manager_plan(cfg)

        # Drawn once per deployment: the nodes keep the swarm's state under it, so a stack
        # destroyed and re-created under the same name forms a new swarm.
        generation = random.RandomId(f"{name}-generation", byte_length=4, opts=child).hex

        def user_data(role: str, pool: str) -> pulumi.Output[str]:
            store = backups.store if backups is not None and role == "manager" else ""
            return pulumi.Output.all(generation, key.arn, store).apply(
                lambda v: node_user_data(settings, role, pool, network.cidr_text, v[0], v[1], v[2]))

        key = ClusterKey(f"{name}", ClusterKeyArgs(cluster=cfg.name, region=region, for_logs=cfg.logging.kms,
                                                   tags=tags), opts=child)
        network = Network(f"{name}", network_args(settings, key.arn if cfg.logging.kms else None), opts=child)
        logs = LogGroups(f"{name}-logs", LogGroupsArgs(
            cluster=cfg.name, retention_days=cfg.logging.retention_days,
            kms_key_arn=key.arn if cfg.logging.kms else None, tags=tags), opts=child)
        exposure = exposure_of(cfg)
        groups = SecurityGroups(f"{name}-sg", SecurityGroupsArgs(
            vpc_id=network.vpc_id, vpc_cidr=network.cidr, exposure=exposure, admin_cidrs=list(cfg.access.admin_cidrs),
            public_lb=lb_cfg.public, tags=tags), opts=child)

        # The backup bucket's name is known before it exists (account, region, cluster), so
        # the roles can name it and the bucket policy can name the manager role.
        backup_bucket = backup_bucket_name(
            cfg.name, aws.get_caller_identity(opts=pulumi.InvokeOptions(parent=self)).account_id, region) \
            if cfg.backup_enabled else None
        identities = {
            role: NodeIdentity(f"{name}-{role}", NodeIdentityArgs(
                role=role, cluster=cfg.name, region=region, log_group_arns=list(logs.arns.values()),
                key_arn=key.arn, generation=generation, tags=tags, backup_bucket=backup_bucket,
                metrics_namespace=namespace(cfg.name) if cfg.metrics.enabled else None,
                repositories=tuple(repository_name(cfg.name, r) for r in cfg.registry.repositories)
                if cfg.registry.enabled else ()), opts=child)
            for role in ("manager", "worker")
        }
        registry = Registry(f"{name}-registry", RegistryArgs(
            cluster=cfg.name, repositories=list(cfg.registry.repositories),
            immutable_tags=cfg.registry.immutable_tags, keep_images=cfg.keep_images, key_arn=key.arn,
            production=cfg.production, tags=tags), opts=child) if cfg.registry.enabled else None
        # The managers' store is the bucket's deterministic name: their restore tool is rendered
        # before the bucket exists, from the values their user data gets.
        backups = BackupBucket(f"{name}-backups", BackupBucketArgs(
            name=backup_bucket, key_arn=key.arn, manager_role_arn=identities["manager"].role_arn,
            retention_days=cfg.backup.retention_days, production=cfg.production, tags=tags,
            restore_tool=pulumi.Output.all(generation, key.arn).apply(lambda v: manager_restore_tool(
                settings, network.cidr_text, v[0], v[1], f"s3://{backup_bucket}"))),
            opts=child) if backup_bucket is not None else None
        image = {"image_id": cfg.image.id, "image_parameter": cfg.image.ssm_parameter}
        node_common: dict[str, Any] = {"cluster": cfg.name, "subnet_ids": network.node_subnet_ids,
                                       "public_ip": network.nodes_public,
                       "key_name": cfg.access.ssh_key_name, "tags": tags, **image}

        # The balancer and the TLS material come before the node groups: the managers'
        # certificate names the balancer, and managers must not boot before it is stored.
        balancer: LoadBalancer | None = None
        forwards: list[Forward] = []
        if lb_cfg.enabled:
            assert groups.lb_id is not None
            forwards = [Forward(p.port, p.protocol.upper()) for p in lb_cfg.ports]
            if api:
                forwards.append(docker_api_forward())
            logs_bucket = AccessLogBucket(f"{name}-lb-logs", AccessLogBucketArgs(
                retention_days=cfg.logging.retention_days, tags=tags,
                name=generation.apply(lambda g: bucket_name(f"swarmstack-{cfg.name}-lb-logs-{g}"))),
                opts=child) if cfg.production else None
            balancer = LoadBalancer(f"{name}-lb", LoadBalancerArgs(
                vpc_id=network.vpc_id,
                subnet_ids=network.public_subnet_ids if lb_cfg.public else network.node_subnet_ids,
                internal=not lb_cfg.public, security_group_id=groups.lb_id, forwards=forwards,
                deletion_protection=cfg.production, tags=tags,
                access_logs_bucket=logs_bucket.bucket if logs_bucket else None,
                access_logs_prefix=logs_bucket.prefix if logs_bucket else ""), opts=child)

        certificates: DockerTls | None = None
        if api:
            certificates = DockerTls(f"{name}-tls", DockerTlsArgs(
                cluster=cfg.name, lb_dns_name=balancer.dns_name if balancer else None,
                ca_cert_pem=cfg.docker_api.ca_cert_pem if cfg.docker_api.ca == "provided" else None,
                ca_key_pem=ca_key, key_id=key.arn, tags=tags), opts=child)

        # What every node reads or needs from its first boot to its drain: the group
        # depends on it (components stand for their children), so it exists before the
        # first node boots and is deleted only after the last node has drained.
        # The shared volumes too: a node is gone before its NFS server (a hard mount whose server
        # vanished would hang the node's drain).
        shared = SharedVolumes(f"{name}-volumes", SharedVolumesArgs(
            cluster=cfg.name, vpc_id=network.vpc_id, subnet_ids=network.node_subnet_ids,
            subnet_count=cfg.zone_count, node_groups={"managers": groups.managers_id, "workers": groups.workers_id},
            has_workers=bool(cfg.workers), key_arn=key.arn,
            throughput_mode=cfg.shared_volumes.throughput_mode or "elastic", production=cfg.production,
            tags=tags), opts=child) if cfg.shared_volumes.enabled else None
        boot: list[pulumi.Resource] = [logs, *network.node_egress, *([shared] if shared else [])]
        managers = NodeGroup(f"{name}-{MANAGER_POOL}", NodeGroupArgs(
            role="manager", pool=manager.pool, count=manager.count,
            instance_types=[cfg.managers.instance_type], spot=False, disk_gib=cfg.managers.disk_gib,
            security_group_id=groups.managers_id, instance_profile_arn=identities["manager"].profile_arn,
            user_data=user_data("manager", MANAGER_POOL),
            lifecycle_roles={"manager": identities["manager"].role_name},
            boot_dependencies=[identities["manager"], *boot, *([certificates] if certificates else []),
                               *([backups] if backups else [])],
            **node_common), opts=child)
        workers: dict[str, NodeGroup] = {}
        for pool in cfg.workers:
            workers[pool.name] = NodeGroup(f"{name}-{pool.name}", NodeGroupArgs(
                role="worker", pool=pool.name, count=pool.count, instance_types=list(pool.instance_type),
                spot=pool.spot, disk_gib=pool.disk_gib, security_group_id=groups.workers_id,
                instance_profile_arn=identities["worker"].profile_arn,
                user_data=user_data("worker", pool.name),
                lifecycle_roles={"manager": identities["manager"].role_name,
                                 "worker": identities["worker"].role_name},
                boot_dependencies=[identities["worker"], *boot], **node_common), opts=child)

        if balancer is not None:
            service_groups: dict[str, pulumi.Input[str]] = (
                {pool: group.group_name for pool, group in workers.items()} if workers
                else {MANAGER_POOL: managers.group_name})
            attached = [Forward(f.port, f.protocol, service_groups) for f in forwards if f.port != DOCKER_TLS_PORT]
            if api:
                attached.append(docker_api_forward(managers.group_name))
            balancer.attach(attached)

        monitoring = Monitoring(f"{name}-monitoring", MonitoringArgs(
            cluster=cfg.name, region=region, events_group=logs.names["events"], manager_count=manager.count,
            manager_quorum=manager.quorum, manager_group=managers.group_name,
            worker_groups={pool: group.group_name for pool, group in workers.items()},
            lb_arn_suffix=balancer.arn_suffix if balancer else None,
            target_groups=balancer.target_groups if balancer else {}, tags=tags, key_arn=key.arn,
            alarm_emails=list(cfg.alarms.email), alarm_https=list(cfg.alarms.https),
            certificate_expiries=certificates.expiries if certificates else {}, node_metrics=cfg.metrics.enabled),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[logs]))
        if cfg.metrics.enabled:
            NodeMetrics(f"{name}-metrics", NodeMetricsArgs(
                cluster=cfg.name, region=region, namespace=namespace(cfg.name),
                groups={MANAGER_POOL: managers.group_name, **{p: g.group_name for p, g in workers.items()}},
                topic_arn=monitoring.topic_arn, disk_alarm_percent=cfg.metrics.disk_alarm_percent,
                memory_alarm_percent=cfg.metrics.memory_alarm_percent, tags=tags), opts=child)
        if cfg.prune.enabled:
            Prune(f"{name}-maintenance", PruneArgs(
                cluster=cfg.name, region=region, schedule=cfg.prune.schedule, until=cfg.prune.until,
                volumes=cfg.prune.volumes, log_group=logs.names["prune"]),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[logs]))

        self.exports = {
            "vpcId": network.vpc_id,
            "nodeSubnetIds": network.node_subnet_ids,
            "managerShell": shell_command(cfg.name, region),
            "logGroups": logs.names,
            "dashboardUrl": monitoring.dashboard_name.apply(lambda d: dashboard_url(region, d)),
            "alarmTopicArn": monitoring.topic_arn,
            "securityGroupIds": {"managers": groups.managers_id, "workers": groups.workers_id,
                                 **({"loadBalancer": groups.lb_id} if groups.lb_id is not None else {})},
            "managerGroup": managers.group_name,
            "workerGroups": {pool: group.group_name for pool, group in workers.items()},
        }
        if balancer is not None:
            self.exports["loadBalancerDns"] = balancer.dns_name
        if backups is not None:
            self.exports["backupStore"] = backups.store
        if registry is not None:
            self.exports["registry"] = registry.address
            self.exports["registryRepositories"] = registry.urls
        if shared is not None:
            self.exports["sharedVolumes"] = {
                "fileSystemId": shared.file_system_id, "address": shared.dns_name, "device": ":/",
                "volumeCreate": shared.dns_name.apply(volume_create_command)}
        if certificates is not None:
            if balancer is not None:
                self.exports["dockerHost"] = balancer.dns_name.apply(lambda d: f"tcp://{d}:2376")
            self.exports["dockerTlsParameters"] = certificates.parameter_names
            self.exports["clientTls"] = certificates.client_bundle
        self.register_outputs({**cluster_summary(settings), **self.exports})
