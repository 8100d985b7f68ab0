"""The typed shape of `swarmstack:cluster`, the one structured key of a stack.

The model checks what a single value can get wrong (types, ranges, closed sets,
unknown keys). What depends on several values at once (zones against managers,
ports against the swarm's own, secrets anywhere) lives in `rules.py`, so each
problem is reported against the key the user has to change.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from swarmstack.config.cron import parse_cron
from swarmstack.config.patterns import CLUSTER_NAME, DURATION, POOL_NAME

MAX_WORKERS = 1000
KEEP_IMAGES = 30
"""Images an ECR repository keeps when `registry.keepImages` is unset."""
MANAGER_POOL = "managers"
"""The managers' pool name: their node group's name (`<cluster>-managers`); no worker pool may take it."""
PRUNE_SCHEDULE = "42 1 * * *"
"""The prune's default schedule (the user data's too)."""
PRUNE_UNTIL = "24h"
"""The prune's default age."""
BACKUP_SCHEDULE = "17 3 * * *"
"""The raft backups' default schedule (the user data's too)."""


class Model(BaseModel):
    """Base: camelCase keys as in Pulumi config, unknown keys refused, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


DiskGiB = Annotated[int, Field(ge=20, le=1024, strict=True)]


class Managers(Model):
    """The manager group: the swarm's raft members."""

    count: Literal[1, 3, 5, 7] = 3
    """How many managers; odd so that raft keeps a majority."""
    instance_type: str = "t3.medium"
    """One machine type (AWS `t3.medium`, Azure `Standard_B2s`)."""
    disk_gib: DiskGiB = Field(default=30, alias="diskGiB")
    """Root disk size in GiB, 20 to 1024."""


class WorkerPool(Model):
    """A named group of workers sharing machine types, disk and labels."""

    name: Annotated[str, Field(pattern=POOL_NAME)]
    """Pool name: lowercase letters, digits and dashes, at most 24 characters."""
    count: Annotated[int, Field(ge=0, le=MAX_WORKERS, strict=True)] = 1
    """Desired number of workers in this pool."""
    instance_type: list[str] = Field(default_factory=lambda: ["t3.medium"], min_length=1)
    """One machine type or several (several only make sense with spot)."""
    disk_gib: DiskGiB = Field(default=30, alias="diskGiB")
    """Root disk size in GiB, 20 to 1024."""
    spot: bool = False
    """Run on spot / Spot VMs (interruptible, cheaper)."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Swarm node labels put on every node of the pool. AWS: every pool's labels travel in the
    managers' user data (the leader puts them on the nodes), which EC2 takes up to 16 KiB
    gzipped, with little room beside the node script: a few short labels a pool fit;
    `swarmstack plan` names the labels when they no longer do."""

    @field_validator("instance_type", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value


class NewNetwork(Model):
    """A network that swarmstack creates."""

    cidr: str = "10.20.0.0/16"
    """Address space of the VPC / VNet, a prefix from /16 to /24."""
    zones: Annotated[int, Field(ge=1, le=6, strict=True)] = 3
    """How many availability zones to spread over."""
    nat: Literal["none", "single", "perZone"] = "perZone"
    """Egress for private nodes: none (nodes get public addresses), one NAT, or one per zone."""
    flow_logs: bool = False
    """Send VPC flow logs to the logging service."""


class ExistingNetwork(Model):
    """A network that already exists; swarmstack creates nothing of it."""

    network_id: str
    """The VPC id (`vpc-…`) or the VNet resource id."""
    private_subnet_ids: list[str] = Field(min_length=1)
    """Subnets for the nodes, one per zone."""
    public_subnet_ids: list[str] = Field(default_factory=list)
    """AWS: subnets for a public load balancer, one per zone."""
    zones: Annotated[int, Field(ge=1, le=3, strict=True)] | None = None
    """Azure: how many zones (1 to 3) the scale sets spread over, default 3; on AWS the
    zones are those of the private subnets."""


class Network(Model):
    """Either `new` or `existing`, never both."""

    new: NewNetwork | None = None
    """A network swarmstack creates (VPC / VNet, subnets, NAT)."""
    existing: ExistingNetwork | None = None
    """A network you already have: its id and subnet ids; swarmstack creates none."""


class Access(Model):
    """Who may reach the nodes from outside the swarm."""

    admin_cidrs: list[str] = Field(default_factory=list)
    """Address ranges allowed to the TLS Docker API and SSH."""
    ssh_key_name: str | None = None
    """AWS: an EC2 key pair name; unset means no SSH at all (use Session Manager)."""
    ssh_public_key: str | None = None
    """Azure: an OpenSSH public key line; unset means no SSH at all (use Run Command)."""


class DockerApi(Model):
    """The TLS-protected Docker API on the managers (port 2376)."""

    enabled: bool = False
    """Open 2376 with `tlsverify` to `access.adminCidrs`."""
    ca: Literal["generated", "provided"] = "generated"
    """`generated`: a CA made by the stack; `provided`: `caCertPem` here and the key in
    the secret config key `swarmstack:dockerApiCaKey`."""
    ca_cert_pem: str | None = None
    """The user's CA certificate (public) when `ca: provided`."""


class PublishedPort(Model):
    """A port published by swarm services and forwarded by the load balancer."""

    port: Annotated[int, Field(ge=1, le=65535, strict=True)]
    """The published port (the same on the load balancer and the swarm's routing mesh)."""
    protocol: Literal["tcp", "udp"] = "tcp"
    """Its transport protocol."""


class LoadBalancer(Model):
    """The load balancer in front of published ports."""

    enabled: bool = True
    """Create the load balancer (AWS: an NLB; Azure: a Standard load balancer)."""
    public: bool = True
    """Internet-facing (true) or internal to the network (false)."""
    ports: list[PublishedPort] = Field(default_factory=list)
    """The ports swarm services publish, which the load balancer forwards to the nodes."""


class Logging(Model):
    """Centralised logs: CloudWatch Logs / Log Analytics."""

    enabled: bool = True
    """Ship node, bootstrap and engine logs; off: the engines log locally."""
    retention_days: Annotated[int, Field(strict=True)] = 30
    """Days to keep logs; one of the values the cloud accepts."""
    kms: bool = False
    """Encrypt log groups with a customer-managed key (AWS)."""


class Alarms(Model):
    """Where the alarms go: subscriptions to the alarm topic (AWS), receivers of the action
    group (Azure)."""

    email: list[str] = Field(default_factory=list)
    """Email addresses; on AWS each confirms its subscription from the mail AWS sends."""
    https: list[str] = Field(default_factory=list)
    """HTTPS endpoints (a chat or paging webhook): on AWS SNS subscriptions the endpoint
    confirms, sent SNS's JSON; on Azure action group webhooks, sent the common alert schema."""


class Prune(Model):
    """The scheduled `docker system prune`."""

    enabled: bool = True
    """Run the prune on every node on `schedule`."""
    schedule: str = PRUNE_SCHEDULE
    """Standard 5-field cron, in UTC."""
    volumes: bool = False
    """Also prune unused volumes. Destroys data: off unless you mean it."""
    until: str = PRUNE_UNTIL
    """Only prune objects older than this (a Go duration such as `24h`, `90m`)."""

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        parse_cron(value)
        return value

    @field_validator("until")
    @classmethod
    def _duration(cls, value: str) -> str:
        import re

        if not re.fullmatch(DURATION, value):
            raise ValueError("must be a duration such as 24h, 90m or 1h30m")
        return value


class Backup(Model):
    """Scheduled backups of the swarm's raft state, to a store only managers can write and
    nobody else can read (AWS: an S3 bucket under the cluster key; Azure: a blob container)."""

    enabled: bool | None = None
    """Take backups; unset means on for `production: true` stacks and off otherwise."""
    schedule: str = BACKUP_SCHEDULE
    """Standard 5-field cron, in UTC: when one manager takes a backup."""
    retention_days: Annotated[int, Field(ge=1, le=3650, strict=True)] = 14
    """Days a backup is kept before the store deletes it, 1 to 3650."""

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        parse_cron(value)
        return value


Percent = Annotated[int, Field(ge=50, le=99, strict=True)]


class Metrics(Model):
    """Node memory, swap and disk metrics with alarms (AWS: the CloudWatch agent; Azure: the
    Azure Monitor Agent's performance counters, which need `logging.enabled`)."""

    enabled: bool = False
    """Collect the nodes' memory, swap and disk use every minute and alarm on them."""
    disk_alarm_percent: Percent = 80
    """Alarm when a node's root disk (where Docker keeps images, containers and volumes), or a
    separate Docker data disk, is fuller than this, in any node group; 50 to 99."""
    memory_alarm_percent: Percent = 90
    """Alarm when a node's memory use stays above this for 15 minutes; 50 to 99."""


class Registry(Model):
    """A private container registry the nodes pull from with no stored password (AWS: one ECR
    repository a name, under `<cluster>/`; Azure: one Container Registry for the cluster)."""

    enabled: bool = False
    """Create the registry and let the nodes' identities pull from it (and nothing else)."""
    repositories: list[str] = Field(default_factory=list)
    """Repository names (`app`, `team/api`): lowercase letters and digits, single `.`, `_`, `-`
    or `/` between them, at most 200 characters. AWS: at least one; each is the ECR repository
    `<cluster>/<name>`. Azure: repositories appear on first push; listed ones are exported."""
    immutable_tags: bool = False
    """AWS: a pushed tag can never be moved to another image (ECR `IMMUTABLE`)."""
    keep_images: Annotated[int, Field(ge=1, le=1000, strict=True)] | None = None
    """AWS: images a repository keeps, newest first, 1 to 1000 (ECR lifecycle policy); unset: 30."""


class SharedVolumes(Model):
    """A network file system every node mounts, for Docker volumes that follow a service from
    node to node (AWS: an encrypted EFS file system; Azure: a premium Azure Files NFS share).
    Off by default: it costs money whether or not a volume uses it (docs/volumes.md)."""

    enabled: bool = False
    """Create the file system and open NFS (2049/tcp) to it from the nodes only."""
    throughput_mode: Literal["elastic", "bursting"] | None = None
    """AWS only: EFS throughput, `elastic` (the default: scales with the traffic, billed per GiB
    moved) or `bursting` (scales with the data stored, no transfer charge)."""
    quota_gib: Annotated[int, Field(ge=100, le=102400, strict=True)] | None = Field(default=None, alias="quotaGiB")
    """Azure only: the share's provisioned size in GiB, 100 (the premium minimum, the default) to
    102400; Azure bills the provisioned size and scales the share's IOPS and throughput with it."""


class Image(Model):
    """The node OS image; unset means the cloud's current default looked up at deploy."""

    id: str | None = None
    """AWS AMI id (`ami-…`) or Azure image resource id."""
    ssm_parameter: str | None = None
    """AWS: an SSM parameter path that names the AMI (default Amazon Linux 2023)."""
    publisher: str | None = None
    """Azure marketplace image publisher (with `offer` and `sku`; default Canonical's Ubuntu 24.04 LTS)."""
    offer: str | None = None
    """Azure marketplace image offer."""
    sku: str | None = None
    """Azure marketplace image SKU."""


class ClusterConfig(Model):
    """The whole of `swarmstack:cluster`."""

    cloud: Literal["aws", "azure"]
    """Which cloud the stack deploys to (its region: `aws:region` or `azure-native:location`)."""
    name: Annotated[str, Field(pattern=CLUSTER_NAME)]
    """Cluster name: lowercase letters, digits and dashes, 2 to 28 characters."""
    production: bool = False
    """Production stacks get stricter policies (deletion protection, no single manager)."""
    managers: Managers = Managers()
    """The manager group."""
    workers: list[WorkerPool] = Field(default_factory=list)
    """Named worker pools; all together at most 1000 workers."""
    network: Network = Network(new=NewNetwork())
    """Where the nodes live; default: a new network with its defaults."""
    access: Access = Access()
    """Who may reach the nodes from outside (Docker API, SSH)."""
    docker_api: DockerApi = DockerApi()
    """The managers' TLS Docker API."""
    load_balancer: LoadBalancer = LoadBalancer()
    """The load balancer for published ports."""
    logging: Logging = Logging()
    """Central logs."""
    alarms: Alarms = Alarms()
    """Who is told when an alarm fires."""
    prune: Prune = Prune()
    """The scheduled `docker system prune`."""
    backup: Backup = Backup()
    """Raft backups of the managers."""
    metrics: Metrics = Metrics()
    """Node memory, swap and disk metrics, and their alarms."""
    registry: Registry = Registry()
    """The private container registry (off unless enabled)."""
    image: Image = Image()
    """The node OS image."""
    shared_volumes: SharedVolumes = SharedVolumes()
    """A network file system for Docker volumes shared by the nodes (opt-in)."""
    tags: dict[str, str] = Field(default_factory=dict)
    """Tags put on every resource that takes tags."""

    @property
    def backup_enabled(self) -> bool:
        """Whether managers take backups: `backup.enabled`, or unset, whether the stack is production."""
        return self.production if self.backup.enabled is None else self.backup.enabled

    @property
    def keep_images(self) -> int:
        """How many images an ECR repository keeps: `registry.keepImages`, or 30."""
        return KEEP_IMAGES if self.registry.keep_images is None else self.registry.keep_images

    @property
    def new_network(self) -> NewNetwork | None:
        return self.network.new

    @property
    def zone_count(self) -> int:
        if self.network.new is not None:
            return self.network.new.zones
        existing = self.network.existing
        assert existing is not None
        if self.cloud == "azure":  # Azure subnets span every zone of the region
            return existing.zones if existing.zones is not None else 3
        return len(existing.private_subnet_ids)


