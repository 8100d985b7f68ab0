"""User data of an Azure node: cloud-init from `templates/azure/` plus the shared units.

The AWS renderer (`render.py`) keys its parameters to SSM, CloudWatch and lifecycle
hooks; an Azure node needs other facts (the Key Vault, the init-marker table, the
client id of its managed identity), so it has its own parameter type and renderer.
Both share the Jinja environment, the systemd units in `templates/common/` and the
YAML round-trip check.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import gzip
import re
from dataclasses import dataclass, field

from components.common.prune import prune_commands
from swarmstack.config.cron import parse_cron, to_systemd
from userdata.params import ADDRESS_POOLS, address_pool_for
from userdata.render import UNIT_DIR, NodeFile, environment, files_of

AZURE_CUSTOM_DATA_LIMIT = 65535
"""Azure takes at most 64 KiB of custom data before base64."""
NODE_SCRIPT = "/usr/local/sbin/swarmstack-node"
DAEMON_BASE = "/etc/swarmstack/daemon.json"
TLS_DIR = "/etc/docker/tls"

_NAME = re.compile(r"^[a-z][a-z0-9-]{1,27}$")
_POOL = re.compile(r"^[a-z][a-z0-9-]{0,23}$")
_VAULT = re.compile(r"^[a-zA-Z](?!.*--)[a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$")
_URL = re.compile(r"^https?://[A-Za-z0-9.:\[\]-]+(/[A-Za-z0-9._/-]*)?$")
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_LABEL_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9._:/@+-]{0,128}$")
_UNTIL = re.compile(r"^(\d+[hms])+$")
_environment = functools.cache(environment)


@dataclass(frozen=True)
class AzureNodeUserData:
    """Everything the user data of one Azure node depends on."""

    cluster: str
    """Cluster name."""
    role: str
    """`manager` or `worker`."""
    pool: str
    """`managers`, or the worker pool's name."""
    region: str
    """Azure region, e.g. `westeurope`."""
    labels: dict[str, str]
    """The pool's swarm node labels."""
    docker_api: bool
    """Serve the TLS Docker API on 2376 (managers only)."""
    vault_name: str
    """The Key Vault holding the join tokens (and the Docker API server key)."""
    table_endpoint: str
    """`https://<account>.table.core.windows.net/`: the init marker's table service."""
    identity_client_id: str
    """Client id of the role's user-assigned identity (what the node asks IMDS for tokens with)."""
    ca_cert_pem: str = ""
    """The Docker API CA certificate (public), managers with the API only."""
    server_cert_pem: str = ""
    """The managers' Docker API server certificate (public); the key comes from Key Vault."""
    logging: bool = True
    """Log containers, Docker events and the bootstrap to syslog facilities the agent ships."""
    prune: bool = True
    """Install the scheduled prune timer."""
    prune_schedule: str = "42 1 * * *"
    """5-field cron, UTC."""
    prune_volumes: bool = False
    """Also prune unused anonymous volumes (destroys data)."""
    prune_until: str = "24h"
    """Only prune objects older than this."""
    vnet_cidr: str | None = None
    """The VNet's address space when known; the overlay pool must not overlap it."""
    table: str = "swarm"
    """Table name of the init marker."""
    imds_endpoint: str = "http://169.254.169.254"
    """Azure IMDS; a test points it elsewhere."""
    vault_endpoint: str = ""
    """Key Vault endpoint; empty means `https://<vault>.vault.azure.net`."""
    arm_endpoint: str = "https://management.azure.com"
    """Azure Resource Manager (the managers list their scale sets' machines)."""
    token_wait_seconds: int = 900
    """How long a node waits for the join tokens."""
    drain_wait_seconds: int = 300
    """How long a leaving node waits for its tasks to move."""
    watch_interval_seconds: int = 10
    """Period of the Scheduled Events watcher."""
    cleanup_interval_seconds: int = 60
    """Period of the managers' clean-up."""
    stale_marker_seconds: int = 600
    """Age after which an init marker with no tokens and no living owner may be taken over."""
    extra: dict[str, str] = field(default_factory=dict)
    """Reserved for tests; rendered nowhere."""

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ValueError("invalid Azure node user data: " + "; ".join(problems))

    @property
    def address_pool(self) -> str:
        return address_pool_for(self.vnet_cidr) if self.vnet_cidr else ADDRESS_POOLS[0]

    @property
    def vault_url(self) -> str:
        return self.vault_endpoint or f"https://{self.vault_name}.vault.azure.net"

    @property
    def prune_calendar(self) -> str:
        return to_systemd(parse_cron(self.prune_schedule))


def _problems(p: AzureNodeUserData) -> list[str]:
    out = []
    if not _NAME.match(p.cluster):
        out.append(f"cluster {p.cluster!r} is not a cluster name")
    if p.role not in ("manager", "worker"):
        out.append(f"role {p.role!r} must be manager or worker")
    if (p.role == "manager") != (p.pool == "managers") or not _POOL.match(p.pool):
        out.append(f"pool {p.pool!r} does not fit role {p.role!r}")
    if not re.fullmatch(r"[a-z][a-z0-9]+", p.region):
        out.append(f"region {p.region!r} is not an Azure region name such as westeurope")
    for key, value in sorted(p.labels.items()):
        if not _LABEL_KEY.match(key) or key.startswith("swarmstack.") or not _LABEL_VALUE.match(value):
            out.append(f"label {key}={value!r} is not a valid swarm node label")
    if p.docker_api and p.role != "manager":
        out.append("docker_api: only managers serve the Docker API")
    if p.docker_api and not (p.ca_cert_pem.startswith("-----BEGIN CERTIFICATE-----")
                             and p.server_cert_pem.startswith("-----BEGIN CERTIFICATE-----")):
        out.append("docker_api needs the CA and server certificates (PEM)")
    if not _VAULT.match(p.vault_name):
        out.append(f"vault_name {p.vault_name!r} is not a Key Vault name")
    for name in ("table_endpoint", "imds_endpoint", "arm_endpoint"):
        if not _URL.match(getattr(p, name)):
            out.append(f"{name} {getattr(p, name)!r} must be an http(s) URL")
    if p.vault_endpoint and not _URL.match(p.vault_endpoint):
        out.append(f"vault_endpoint {p.vault_endpoint!r} must be an http(s) URL")
    if not _GUID.match(p.identity_client_id):
        out.append(f"identity_client_id {p.identity_client_id!r} is not a GUID")
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]{2,62}", p.table):
        out.append(f"table {p.table!r} is not a table name")
    try:
        parse_cron(p.prune_schedule)
    except ValueError as err:
        out.append(f"prune_schedule {p.prune_schedule!r}: {err}")
    if not _UNTIL.match(p.prune_until):
        out.append(f"prune_until {p.prune_until!r} must be a duration such as 24h")
    for name in ("token_wait_seconds", "drain_wait_seconds", "watch_interval_seconds",
                 "cleanup_interval_seconds", "stale_marker_seconds"):
        value = getattr(p, name)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 86400:
            out.append(f"{name} {value!r} must be 1 to 86400 seconds")
    return out


def _context(p: AzureNodeUserData) -> dict[str, object]:
    context = dataclasses.asdict(p)
    context.update(address_pool=p.address_pool, vault_url=p.vault_url, prune_calendar=p.prune_calendar,
                   prune_commands=prune_commands(p.prune_until, p.prune_volumes))
    return context


def node_files(p: AzureNodeUserData) -> list[NodeFile]:
    """The files of one Azure node, in the order cloud-init writes them."""
    files = [
        NodeFile(NODE_SCRIPT, "0755", "azure/swarmstack-node.sh.j2"),
        NodeFile(DAEMON_BASE, "0644", "azure/daemon.json.j2"),
        NodeFile(f"{UNIT_DIR}/swarmstack-configure.service", "0644", "common/swarmstack-configure.service.j2"),
        NodeFile(f"{UNIT_DIR}/swarmstack-bootstrap.service", "0644", "common/swarmstack-bootstrap.service.j2"),
        NodeFile(f"{UNIT_DIR}/swarmstack-watch.service", "0644", "azure/swarmstack-watch.service.j2"),
        NodeFile(f"{UNIT_DIR}/swarmstack-watch.timer", "0644", "common/swarmstack-watch.timer.j2"),
    ]
    if p.role == "manager":
        files += [
            NodeFile(f"{UNIT_DIR}/swarmstack-cleanup.service", "0644", "common/swarmstack-cleanup.service.j2"),
            NodeFile(f"{UNIT_DIR}/swarmstack-cleanup.timer", "0644", "common/swarmstack-cleanup.timer.j2"),
        ]
    if p.logging:
        files.append(NodeFile(f"{UNIT_DIR}/swarmstack-docker-events.service", "0644",
                              "azure/swarmstack-docker-events.service.j2"))
    if p.prune:
        files += [
            NodeFile(f"{UNIT_DIR}/swarmstack-prune.service", "0644", "azure/swarmstack-prune.service.j2"),
            NodeFile(f"{UNIT_DIR}/swarmstack-prune.timer", "0644", "azure/swarmstack-prune.timer.j2"),
        ]
    if p.docker_api:
        files += [
            NodeFile(f"{TLS_DIR}/ca.pem", "0644", "azure/pem.j2"),
            NodeFile(f"{TLS_DIR}/server-cert.pem", "0644", "azure/pem.j2"),
            NodeFile(f"{UNIT_DIR}/docker.service.d/swarmstack-api.conf", "0644", "common/docker-api.conf.j2"),
        ]
    env = _environment()
    context = _context(p)
    rendered = []
    for file in files:
        extra = {"pem": p.ca_cert_pem if file.path.endswith("ca.pem") else p.server_cert_pem}
        text = env.get_template(file.template).render({**context, **extra})
        rendered.append(dataclasses.replace(file, content=text.rstrip("\n") + "\n"))
    return rendered


def units_of(p: AzureNodeUserData) -> tuple[list[str], list[str]]:
    """(units to enable, units to start) in order."""
    timers = ["swarmstack-watch.timer"] + (["swarmstack-cleanup.timer"] if p.role == "manager" else [])
    if p.prune:
        timers.append("swarmstack-prune.timer")
    services = ["swarmstack-docker-events.service"] if p.logging else []
    enable = ["swarmstack-configure.service", "docker.service", "swarmstack-bootstrap.service", *services, *timers]
    return enable, ["swarmstack-bootstrap.service", *services, *timers]


def render_azure(p: AzureNodeUserData) -> str:
    """The full cloud-init user data of one Azure node (text); deterministic."""
    files = node_files(p)
    enable, start = units_of(p)
    text = _environment().get_template("azure/cloud-config.yaml.j2").render(
        {**_context(p), "files": files, "units": enable, "start_units": start})
    written = files_of(text)
    for file in files:
        if written.get(file.path) != file.content:
            raise ValueError(f"rendering {file.path} did not survive the YAML round trip")
    if len(text.encode()) > AZURE_CUSTOM_DATA_LIMIT:
        raise ValueError(f"custom data is {len(text.encode())} bytes; Azure takes at most {AZURE_CUSTOM_DATA_LIMIT}")
    return text


def encode_gzip(user_data: str) -> str:
    """Base64 of gzip, should the text ever outgrow the limit (cloud-init reads gzip)."""
    return base64.b64encode(gzip.compress(user_data.encode(), compresslevel=9, mtime=0)).decode()
