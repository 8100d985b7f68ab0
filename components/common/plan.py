"""The cluster's plan: what both clouds build, computed from the typed config before any
resource is made (the way awsx computes its subnets first). Pure.

Each cloud's `Cluster` reads this plan and wires its components from it, one concept a
step; the plan is tested without a single resource (`tests/unit/test_cluster_plan.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from components.common.managers import ManagerPlan, manager_plan
from components.common.ports import Exposure
from swarmstack.config.model import ClusterConfig

Role = Literal["manager", "worker"]


@dataclass(frozen=True)
class PoolPlan:
    """One group of nodes: the managers, or one worker pool."""

    name: str
    """The pool name (`MANAGER_POOL` for the managers, else the worker pool's name)."""
    role: Role
    """Whether its nodes are swarm managers or workers."""
    count: int
    """How many nodes it should have."""
    instance_types: tuple[str, ...]
    """The instance types (AWS) or VM sizes (Azure), preferred first."""
    disk_gib: int
    """The root disk of each node, GiB."""
    spot: bool
    """Whether its nodes are spot instances (never for managers)."""
    labels: dict[str, str] = field(default_factory=dict)
    """The swarm node labels its nodes carry."""


@dataclass(frozen=True)
class LoadBalancerPlan:
    """The balancer in front of the nodes."""

    public: bool
    """Internet-facing, or internal to the network."""
    ports: tuple[tuple[int, Literal["tcp", "udp"]], ...]
    """The published ports it forwards to the service nodes."""


@dataclass(frozen=True)
class DockerApiPlan:
    """The managers' TLS Docker API."""

    provided_ca_cert_pem: str | None
    """The CA certificate the stack provides, or None for a generated CA."""


@dataclass(frozen=True)
class BackupPlan:
    """The managers' raft backups."""

    schedule: str
    """When a manager takes one (5-field cron)."""
    retention_days: int
    """How long a backup is kept."""


@dataclass(frozen=True)
class RegistryPlan:
    """The private registry."""

    repositories: tuple[str, ...]
    """The repositories made up front."""
    immutable_tags: bool
    """Whether a pushed tag may not be moved (AWS)."""
    keep_images: int
    """How many images a repository keeps (AWS)."""


@dataclass(frozen=True)
class VolumesPlan:
    """The shared NFS volumes."""

    throughput_mode: Literal["elastic", "bursting"]
    """EFS's throughput mode (AWS)."""
    quota_gib: int | None
    """The share's quota, GiB, or None for the cloud's minimum (Azure)."""


@dataclass(frozen=True)
class MetricsPlan:
    """The nodes' disk and memory metrics and their alarms."""

    disk_alarm_percent: int
    memory_alarm_percent: int


@dataclass(frozen=True)
class PrunePlan:
    """The scheduled `docker system prune` of every node."""

    schedule: str
    until: str
    volumes: bool


@dataclass(frozen=True)
class LoggingPlan:
    """Where the nodes' logs go and for how long."""

    enabled: bool
    retention_days: int
    kms: bool
    """Whether the logs are encrypted with the cluster's key (AWS)."""


@dataclass(frozen=True)
class ClusterPlan:
    """The whole cluster as both clouds build it. An optional part that is off is None."""

    cloud: Literal["aws", "azure"]
    name: str
    """The cluster name (`name`)."""
    production: bool
    zone_count: int
    """How many zones the nodes spread over."""
    managers: ManagerPlan
    """The manager group: pool name, size, quorum."""
    pools: tuple[PoolPlan, ...]
    """Every node group in the order they are made: the managers first, then each worker pool."""
    exposure: Exposure
    """What the cluster opens, as the port matrix needs it."""
    logging: LoggingPlan
    load_balancer: LoadBalancerPlan | None
    docker_api: DockerApiPlan | None
    backup: BackupPlan | None
    registry: RegistryPlan | None
    volumes: VolumesPlan | None
    metrics: MetricsPlan | None
    prune: PrunePlan | None

    @property
    def manager_pool(self) -> PoolPlan:
        """The managers' pool."""
        return self.pools[0]

    @property
    def worker_pools(self) -> tuple[PoolPlan, ...]:
        """The worker pools, in config order."""
        return self.pools[1:]

    @property
    def has_workers(self) -> bool:
        return bool(self.worker_pools)


def exposure_of(cfg: ClusterConfig) -> Exposure:
    """What the cluster opens, as the port matrix needs it. SSH is open on AWS when the
    stack names a key pair; on Azure when it gives a public key and admin ranges."""
    lb = cfg.load_balancer
    ssh = (cfg.access.ssh_key_name is not None if cfg.cloud == "aws"
           else cfg.access.ssh_public_key is not None and bool(cfg.access.admin_cidrs))
    return Exposure(docker_api=cfg.docker_api.enabled, ssh=ssh,
                    published=tuple((p.port, p.protocol) for p in lb.ports) if lb.enabled else (),
                    has_workers=bool(cfg.workers), load_balancer=lb.enabled)


def pools_of(cfg: ClusterConfig) -> tuple[PoolPlan, ...]:
    """The managers' pool, then each worker pool in config order."""
    manager = manager_plan(cfg)
    managers = PoolPlan(name=manager.pool, role="manager", count=manager.count,
                        instance_types=(cfg.managers.instance_type,), disk_gib=cfg.managers.disk_gib, spot=False)
    return (managers, *(PoolPlan(name=p.name, role="worker", count=p.count, instance_types=tuple(p.instance_type),
                                 disk_gib=p.disk_gib, spot=p.spot, labels=dict(p.labels)) for p in cfg.workers))


def plan_cluster(cfg: ClusterConfig) -> ClusterPlan:
    """The plan of `cfg`, before any resource is made."""
    lb, api, registry, volumes = cfg.load_balancer, cfg.docker_api, cfg.registry, cfg.shared_volumes
    return ClusterPlan(
        cloud=cfg.cloud, name=cfg.name, production=cfg.production, zone_count=cfg.zone_count,
        managers=manager_plan(cfg), pools=pools_of(cfg), exposure=exposure_of(cfg),
        logging=LoggingPlan(enabled=cfg.logging.enabled, retention_days=cfg.logging.retention_days,
                            kms=cfg.logging.kms),
        load_balancer=LoadBalancerPlan(public=lb.public, ports=tuple((p.port, p.protocol) for p in lb.ports))
        if lb.enabled else None,
        docker_api=DockerApiPlan(provided_ca_cert_pem=api.ca_cert_pem if api.ca == "provided" else None)
        if api.enabled else None,
        backup=BackupPlan(schedule=cfg.backup.schedule, retention_days=cfg.backup.retention_days)
        if cfg.backup_enabled else None,
        registry=RegistryPlan(repositories=tuple(registry.repositories), immutable_tags=registry.immutable_tags,
                              keep_images=cfg.keep_images) if registry.enabled else None,
        volumes=VolumesPlan(throughput_mode=volumes.throughput_mode or "elastic", quota_gib=volumes.quota_gib)
        if volumes.enabled else None,
        metrics=MetricsPlan(disk_alarm_percent=cfg.metrics.disk_alarm_percent,
                            memory_alarm_percent=cfg.metrics.memory_alarm_percent) if cfg.metrics.enabled else None,
        prune=PrunePlan(schedule=cfg.prune.schedule, until=cfg.prune.until, volumes=cfg.prune.volumes)
        if cfg.prune.enabled else None,
    )
