"""What one node's user data depends on, and how a stack's config maps to it.

`NodeUserData` is the whole input of `render`: two nodes with equal parameters get
byte-identical user data. Values are checked here, once, so that a template never
meets a value that would break the YAML or the shell it is pasted into.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from components.common.hooks import CONVERGE_DEADLINE, DRAIN_HOOK, HEALTH_PORT, JOIN_HOOK
from components.common.managers import MANAGER_POOL
from components.common.names import KEY_VAULT_NAME
from components.common.namespace import LOG_GROUP_KINDS, cluster_tree, log_group_names, state_prefix
from swarmstack.config.cron import parse_cron
from swarmstack.config.model import BACKUP_SCHEDULE, PRUNE_SCHEDULE, PRUNE_UNTIL
from swarmstack.config.patterns import CLUSTER_NAME, DURATION, LABEL_KEY, LABEL_VALUE, POOL_NAME, RESERVED_LABEL_PREFIX

if TYPE_CHECKING:
    from swarmstack.config.model import ClusterConfig

CLOUDS = ("aws", "azure")
ROLES = ("manager", "worker")
OS_FAMILIES = {"aws": ("amazonlinux", "ubuntu"), "azure": ("ubuntu",)}
DEFAULT_OS = {"aws": "amazonlinux", "azure": "ubuntu"}
# Overlay address pools tried in order; the first that does not overlap the VPC wins.
# Docker's own default (10.0.0.0/8) overlaps almost every VPC, so we never use it.
ADDRESS_POOLS = ("10.240.0.0/12", "172.24.0.0/13", "192.168.128.0/17")

_NAME = re.compile(CLUSTER_NAME)
_POOL = re.compile(POOL_NAME)
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$|^[a-z]+[a-z0-9]*$")
_LABEL_KEY = re.compile(LABEL_KEY)
_LABEL_VALUE = re.compile(LABEL_VALUE)
_LOG_GROUP = re.compile(r"^[A-Za-z0-9_./#-]{1,512}$")
_URL = re.compile(r"^https?://[A-Za-z0-9.:\[\]-]+(/[A-Za-z0-9._/-]*)?$")
_GENERATION = re.compile(r"^[0-9a-f]{8}$")
_HOOK = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_KMS_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")
_REGISTRY = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+(:\d{1,5})?$")
"""A registry host as image names start with it: lower-case DNS labels, an optional port."""
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_UNTIL = re.compile(DURATION)
_S3 = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_BLOB = re.compile(r"^https?://[A-Za-z0-9.:\[\]-]+(/[A-Za-z0-9._-]+)*/[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class NodeUserData:
    """Everything the user data of one node depends on, on either cloud."""

    cluster: str
    """Cluster name, e.g. `prod`; names the store, the log groups and the tags."""
    cloud: str
    """`aws` or `azure`: picks the store adapter of the node script."""
    role: str
    """`manager` or `worker`."""
    pool: str
    """Worker pool name; `managers` for managers."""
    generation: str
    """8 hex digits the stack draws once per deployment: the node-written state lives under
    `/swarmstack/<cluster>/<generation>/` (AWS), so a destroyed and re-created stack forms a new
    swarm. On Azure the store itself (vault, storage account) is new with each deployment."""
    region: str
    """The cloud region the node runs in, e.g. `eu-west-1` or `westeurope`."""
    labels: dict[str, str]
    """The pool's configured swarm node labels."""
    docker_api: bool
    """Serve the TLS Docker API on 2376 (managers only)."""
    pool_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    """Managers: every worker pool's configured labels. The leader puts them on each node
    whose instance the cloud says belongs to that pool (never from what a node claims)."""
    log_groups: dict[str, str] | None = None
    """AWS: log group per kind (containers, events, bootstrap, prune); None turns logging off."""
    logging: bool = False
    """Azure: containers, Docker events and the bootstrap to syslog, which the agent ships."""
    os: str = ""
    """OS family of the image: `amazonlinux` (AWS default) or `ubuntu`; empty means the cloud's default."""
    address_pool: str = ADDRESS_POOLS[0]
    """The swarm's overlay address pool, set once at `swarm init`; must not overlap the network."""
    prune: bool = False
    """Install the prune timer (Azure; on AWS a State Manager association runs the prune)."""
    prune_schedule: str = PRUNE_SCHEDULE
    """5-field cron, UTC, of the prune timer."""
    prune_volumes: bool = False
    """Also prune unused volumes (destroys data)."""
    prune_until: str = PRUNE_UNTIL
    """Only prune objects older than this."""
    backup_store: str = ""
    """Managers: where the raft backups go, `s3://<bucket>` (AWS) or the blob container's URL
    `https://<account>.blob.core.windows.net/<container>` (Azure); empty turns them off."""
    backup_schedule: str = BACKUP_SCHEDULE
    """5-field cron, UTC, of the managers' backup timer (one manager takes each backup)."""
    key_arn: str = ""
    """AWS: the cluster's KMS key, which encrypts the join tokens the nodes store."""
    imds_endpoint: str = "http://169.254.169.254"
    """The instance metadata service; the real one unless a test points it elsewhere."""
    aws_endpoint_url: str | None = None
    """AWS: one endpoint for every AWS API; None means the real regional endpoints."""
    lifecycle_hook: str = DRAIN_HOOK
    """AWS: the termination lifecycle hook of every auto scaling group."""
    join_hook: str = JOIN_HOOK
    """AWS: the launch lifecycle hook a node completes once it has joined."""
    vault_name: str = ""
    """Azure: the Key Vault holding the join tokens (and the Docker API server key)."""
    table_endpoint: str = ""
    """Azure: `https://<account>.table.core.windows.net/`, the init marker's table service."""
    identity_client_id: str = ""
    """Azure: client id of the role's user-assigned identity."""
    vault_endpoint: str = ""
    """Azure: Key Vault endpoint; empty means `https://<vault>.vault.azure.net`."""
    arm_endpoint: str = "https://management.azure.com"
    """Azure: Resource Manager (the leader lists the cluster's machines)."""
    table: str = "swarm"
    """Azure: table name of the init marker and the manager list."""
    registry: str = ""
    """Azure: the cluster registry's login server (`<name>.azurecr.io`); the custom data then
    carries the registry tool and its timer. Empty: no registry. AWS nodes get the same tool
    from a State Manager association (`components/aws/registry.py`): EC2's 16 KiB are full."""
    health_port: int = HEALTH_PORT
    """Azure: loopback port where the Application Health extension reads the node's health."""
    stale_marker_seconds: int = 600
    """Age after which an init marker whose owner is gone, with no tokens stored, may be taken over."""
    drain_wait_seconds: int = 300
    """How long a leaving node waits for its tasks to move before it leaves anyway."""
    converge_deadline_seconds: int = CONVERGE_DEADLINE
    """How long a node may stay out of the swarm after boot before it reports itself unhealthy."""
    join_wait_seconds: int = 300
    """How long one converge run waits for the tokens and a manager before systemd reruns it."""
    retry_seconds: int = 15
    """How soon systemd runs a failed converge again."""
    converge_interval_seconds: int = 300
    """Period of the converge timer once converged (certificates, tokens, manager list)."""
    watch_interval_seconds: int = 5
    """Period of the watch timer: termination notices (AWS asks for a check every 5 s) and,
    on the leader, removing lost nodes the cloud says are gone."""
    cleanup_interval_seconds: int = 60
    """Period of the managers' clean-up timer."""
    worker_poll_seconds: int = 60
    """How often a waiting worker reads the store (`worker_poll_for` the cluster's size)."""

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ValueError("invalid node user data: " + "; ".join(problems))
        if not self.os:
            object.__setattr__(self, "os", DEFAULT_OS[self.cloud])

    def registry_tool(self) -> RegistryTool | None:
        """The registry tool this node's custom data carries (Azure), or None."""
        if not self.registry:
            return None
        return RegistryTool(cluster=self.cluster, cloud=self.cloud, registry=self.registry,
                            imds_endpoint=self.imds_endpoint, identity_client_id=self.identity_client_id)

    @property
    def ssm_prefix(self) -> str:
        """Where the stack's own parameters live (the TLS material): `/swarmstack/<cluster>`."""
        return cluster_tree(self.cluster)

    @property
    def state_prefix(self) -> str:
        """Where the nodes keep the swarm's state (marker, tokens, managers) for this deployment."""
        return state_prefix(self.cluster, self.generation)

    @property
    def vault_url(self) -> str:
        return self.vault_endpoint or f"https://{self.vault_name}.vault.azure.net"


TIMERS = ("stale_marker_seconds", "drain_wait_seconds", "converge_deadline_seconds", "join_wait_seconds",
          "retry_seconds",
          "converge_interval_seconds", "watch_interval_seconds", "cleanup_interval_seconds", "worker_poll_seconds")


def _problems(p: NodeUserData) -> list[str]:
    out: list[str] = []
    if not _NAME.match(p.cluster):
        out.append(f"cluster {p.cluster!r} must be 2 to 28 lowercase letters, digits and dashes, "
                   "starting with a letter")
    if p.cloud not in CLOUDS:
        out.append(f"cloud {p.cloud!r} must be one of {', '.join(CLOUDS)}")
    if p.role not in ROLES:
        out.append(f"role {p.role!r} must be manager or worker")
    if not isinstance(p.generation, str) or not _GENERATION.match(p.generation):
        out.append(f"generation {p.generation!r} must be 8 lowercase hex digits")
    if p.role == "manager" and p.pool != MANAGER_POOL:
        out.append(f"pool {p.pool!r}: a manager's pool is always {MANAGER_POOL!r}")
    if p.role == "worker" and (p.pool == MANAGER_POOL or not _POOL.match(p.pool)):
        out.append(f"pool {p.pool!r} must be a worker pool name "
                   f"(lowercase letters, digits, dashes; not {MANAGER_POOL!r})")
    if not _REGION.match(p.region):
        out.append(f"region {p.region!r} is not a region name such as eu-west-1")
    for key, value in sorted(p.labels.items()):
        if not _LABEL_KEY.match(key) or key.startswith(RESERVED_LABEL_PREFIX):
            out.append(f"label key {key!r} must be letters, digits, '.', '_' or '-' (and not start with swarmstack.)")
        if not isinstance(value, str) or not _LABEL_VALUE.match(value):
            out.append(f"label {key}={value!r}: values may hold letters, digits and . _ : / @ + - only")
    if p.pool_labels and p.role != "manager":
        out.append("pool_labels: only managers label the nodes")
    for name, labels in sorted(p.pool_labels.items()):
        if name == MANAGER_POOL or not _POOL.match(name):
            out.append(f"pool_labels: {name!r} is not a worker pool name")
        for key, value in sorted(labels.items()):
            if not _LABEL_KEY.match(key) or key.startswith(RESERVED_LABEL_PREFIX) or not _LABEL_VALUE.match(value):
                out.append(f"pool_labels: {name} label {key}={value!r} is not a valid label")
    if p.docker_api and p.role != "manager":
        out.append("docker_api: only managers serve the Docker API")
    if p.log_groups is not None:
        keys = set(p.log_groups)
        if keys != set(LOG_GROUP_KINDS):
            got = ", ".join(sorted(keys)) or "none"
            out.append(f"log_groups must have exactly the keys {', '.join(LOG_GROUP_KINDS)}; got {got}")
        for kind, name in sorted(p.log_groups.items()):
            if not _LOG_GROUP.match(name):
                out.append(f"log group {kind}={name!r} is not a valid log group name")
    if p.cloud in OS_FAMILIES and p.os and p.os not in OS_FAMILIES[p.cloud]:
        out.append(f"os {p.os!r} must be one of {', '.join(OS_FAMILIES[p.cloud])} on {p.cloud}")
    try:
        pool = ipaddress.IPv4Network(p.address_pool, strict=True)
        if not 8 <= pool.prefixlen <= 20:
            out.append(f"address_pool {p.address_pool!r} must be a /8 to /20 (it is split into /24 overlays)")
    except ValueError:
        out.append(f"address_pool {p.address_pool!r} is not an IPv4 network such as 10.240.0.0/12")
    try:
        parse_cron(p.prune_schedule)
    except ValueError as err:
        out.append(f"prune_schedule {p.prune_schedule!r}: {err}")
    if p.backup_store:
        if p.role != "manager":
            out.append("backup_store: only managers take backups")
        if p.cloud == "aws" and not _S3.match(p.backup_store):
            out.append(f"backup_store {p.backup_store!r} must be s3://<bucket> on aws")
        if p.cloud == "azure" and not _BLOB.match(p.backup_store):
            out.append(f"backup_store {p.backup_store!r} must be https://<account>.blob.core.windows.net/<container> "
                       "(or an http(s) endpoint and container) on azure")
    try:
        parse_cron(p.backup_schedule)
    except ValueError as err:
        out.append(f"backup_schedule {p.backup_schedule!r}: {err}")
    if not _UNTIL.match(p.prune_until):
        out.append(f"prune_until {p.prune_until!r} must be a duration such as 24h")
    for name in ("imds_endpoint", "aws_endpoint_url", "arm_endpoint"):
        url = getattr(p, name)
        if url is not None and not _URL.match(url):
            out.append(f"{name} {url!r} must be an http(s) URL")
    for name in ("lifecycle_hook", "join_hook"):
        if not _HOOK.match(getattr(p, name)):
            out.append(f"{name} {getattr(p, name)!r} must be letters, digits, '_' or '-'")
    if p.cloud == "aws" and not _KMS_ARN.match(p.key_arn):
        out.append(f"key_arn {p.key_arn!r} must be the ARN of the cluster's KMS key (the join tokens are "
                   "encrypted with it)")
    if p.registry and p.cloud != "azure":
        out.append(f"registry {p.registry!r}: only Azure's custom data carries the registry tool; "
                   "AWS runs it from State Manager (components/aws/registry.py)")
    elif p.registry and not _REGISTRY.match(p.registry):
        out.append(f"registry {p.registry!r} must be a registry host such as myreg.azurecr.io")
    if p.cloud == "azure":
        out.extend(_azure_problems(p))
    for name in TIMERS:
        value = getattr(p, name)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 86400:
            out.append(f"{name} {value!r} must be a whole number of seconds from 1 to 86400")
    return out


def _azure_problems(p: NodeUserData) -> list[str]:
    out = []
    if not KEY_VAULT_NAME.match(p.vault_name):
        out.append(f"vault_name {p.vault_name!r} is not a Key Vault name")
    if not _URL.match(p.table_endpoint):
        out.append(f"table_endpoint {p.table_endpoint!r} must be an http(s) URL")
    if p.vault_endpoint and not _URL.match(p.vault_endpoint):
        out.append(f"vault_endpoint {p.vault_endpoint!r} must be an http(s) URL")
    if not _GUID.match(p.identity_client_id):
        out.append(f"identity_client_id {p.identity_client_id!r} is not a GUID")
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]{2,62}", p.table):
        out.append(f"table {p.table!r} is not a table name")
    if not isinstance(p.health_port, int) or not 1024 <= p.health_port <= 65535:
        out.append(f"health_port {p.health_port!r} must be a port from 1024 to 65535")
    return out


def address_pool_for(vpc_cidr: str | None) -> str:
    """The first overlay pool that does not overlap the VPC (the first one when unknown)."""
    if vpc_cidr is None:
        return ADDRESS_POOLS[0]
    vpc = ipaddress.IPv4Network(vpc_cidr, strict=False)
    for candidate in ADDRESS_POOLS:
        if not vpc.overlaps(ipaddress.IPv4Network(candidate)):
            return candidate
    raise ValueError(f"network {vpc_cidr} overlaps every overlay pool swarmstack knows ({', '.join(ADDRESS_POOLS)})")


def log_groups_for(cluster: str) -> dict[str, str]:
    """The cluster's log groups: `/swarmstack/<cluster>/<kind>`."""
    return log_group_names(cluster)


def pool_labels_of(cluster: ClusterConfig) -> dict[str, dict[str, str]]:
    """Every worker pool's configured labels, by pool: what the leader puts on the nodes."""
    return {pool.name: dict(pool.labels) for pool in cluster.workers if pool.labels}


WAITING_READS_PER_SECOND = 16
"""The share of the store's read rate (SSM: 40 per second per account and region) that waiting
workers may take together (docs/scale.md)."""


def worker_poll_for(workers: int) -> int:
    """Seconds between a waiting worker's reads of the store: all of them together read about
    WAITING_READS_PER_SECOND times a second at most, and no worker waits over a minute
    (1 s up to 16 workers, 2 s up to 32, 60 s from about 1000 workers). Pure."""
    return max(1, min(60, -(-workers // WAITING_READS_PER_SECOND)))


def params_for(cluster: ClusterConfig, region: str, role: str, pool: str, generation: str,
               key_arn: str, backup_store: str = "") -> NodeUserData:
    """The user data parameters of one AWS node of `cluster` (a validated stack config).
    `backup_store` is the raft backup bucket (`s3://<bucket>`) for a manager of a cluster
    with backups on, else empty."""
    if role not in ROLES:
        raise ValueError(f"role {role!r} must be manager or worker")
    if role == "manager":
        if pool != MANAGER_POOL:
            raise ValueError(f"pool {pool!r}: a manager's pool is always {MANAGER_POOL!r}")
        labels: dict[str, str] = {}
        pool_labels = pool_labels_of(cluster)
    else:
        pools = {p.name: p for p in cluster.workers}
        if pool not in pools:
            known = ", ".join(sorted(pools)) or "none"
            raise ValueError(f"cluster {cluster.name!r} has no worker pool {pool!r}; pools: {known}")
        labels = dict(pools[pool].labels)
        pool_labels = {}
    vpc_cidr = cluster.network.new.cidr if cluster.network.new is not None else None
    return NodeUserData(
        cluster=cluster.name,
        cloud=cluster.cloud,
        role=role,
        pool=pool,
        generation=generation,
        region=region,
        labels=labels,
        pool_labels=pool_labels,
        docker_api=cluster.docker_api.enabled and role == "manager",
        log_groups=log_groups_for(cluster.name) if cluster.logging.enabled else None,
        address_pool=address_pool_for(vpc_cidr),
        # The prune runs as a State Manager association on AWS (no timer on the node); the
        # node's own `prune` command runs the same commands for an operator.
        prune=False,
        prune_schedule=cluster.prune.schedule,
        prune_volumes=cluster.prune.volumes,
        prune_until=cluster.prune.until,
        backup_store=backup_store,
        backup_schedule=cluster.backup.schedule,
        key_arn=key_arn,
        worker_poll_seconds=worker_poll_for(sum(p.count for p in cluster.workers)),
    )


@dataclass(frozen=True)
class RegistryTool:
    """What the registry tool (`templates/node/registry.sh.j2`) depends on: the registry and
    how a node of this cloud proves who it is. AWS: one tool for every node (the instance
    role answers); Azure: one per node role (its user-assigned identity)."""

    cluster: str
    cloud: str
    registry: str
    """The registry host: `<account>.dkr.ecr.<region>.amazonaws.com` or `<name>.azurecr.io`."""
    region: str = ""
    """AWS: the registry's region (ECR's endpoint)."""
    imds_endpoint: str = "http://169.254.169.254"
    """Azure: where the node asks for its identity's token."""
    identity_client_id: str = ""
    """Azure: the client id of the node role's identity."""

    def __post_init__(self) -> None:
        problems = []
        if self.cloud not in CLOUDS:
            problems.append(f"cloud {self.cloud!r} must be one of {', '.join(CLOUDS)}")
        if not _REGISTRY.match(self.registry):
            problems.append(f"registry {self.registry!r} must be a registry host such as myreg.azurecr.io")
        if self.cloud == "aws" and not _REGION.match(self.region):
            problems.append(f"region {self.region!r} must be an AWS region such as eu-west-1")
        if self.cloud == "azure" and not _GUID.match(self.identity_client_id):
            problems.append(f"identity_client_id {self.identity_client_id!r} must be a GUID")
        if self.cloud == "azure" and not _URL.match(self.imds_endpoint):
            problems.append(f"imds_endpoint {self.imds_endpoint!r} must be an http(s) URL")
        if problems:
            raise ValueError("invalid registry tool: " + "; ".join(problems))
