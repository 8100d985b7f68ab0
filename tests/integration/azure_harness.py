"""The integration harness (`harness.py`) pointed at Azure instead of moto.

Everything that is not AWS is reused as it is: the namespaces and bridge, dockerd
per node, the timers, the swarm views, the image and the teardown. What differs: the
cloud is Azurite (`azurite.py`: Microsoft's emulator, the real Table and Blob storage,
HTTPS with a certificate of the harness's CA, OAuth tokens checked) behind the storage
gate of `azure_fake.py` (the stack's role assignments, enforced per identity), and
`azure_fake.py` for what has no emulator (IMDS, Scheduled Events, Key Vault, ARM).
Each node runs the `swarmstack-node` script rendered from `userdata/templates/azure`
for the `prod-azure` stack, unmodified; only endpoints (the storage account's
path-style URLs where Azure has `https://<account>.table.core.windows.net/`), the CA
curl trusts (`CURL_CA_BUNDLE`) and the node's own paths come from the environment.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azurite import ACCOUNT, Azurite, Storage, storage_tls
from harness import CLOUD_IP, ROOT, SUBNET, Harness, Network, Node, Procs, _enter_netns

from userdata import NodeUserData, files_of, render
from userdata.params import address_pool_for, pool_labels_of
from userdata.render import NODE_SCRIPT, RESTORE_TOOL_PATH

HERE = Path(__file__).resolve().parent
STACK = "prod-azure"
FAKE_PORT = 8081
FAKE_URL = f"http://{CLOUD_IP}:{FAKE_PORT}"
TABLE_GATE_PORT = 20002
BLOB_GATE_PORT = 20000
TABLE_ENDPOINT = f"https://{CLOUD_IP}:{TABLE_GATE_PORT}/{ACCOUNT}/"
"""The nodes' table endpoint: the gate in front of Azurite (Azure: `https://<account>.table.core.windows.net/`)."""
BACKUP_STORE = f"https://{CLOUD_IP}:{BLOB_GATE_PORT}/{ACCOUNT}/backups"
"""The managers' backup container (Azure: `https://<account>.blob.core.windows.net/backups`)."""
TABLES = ("swarm", "leaving")
CONTAINERS = ("backups",)
ZONES = ("1", "2", "3")
CLIENT_IDS = {"manager": str(uuid.uuid5(uuid.NAMESPACE_URL, "managers")),
              "worker": str(uuid.uuid5(uuid.NAMESPACE_URL, "workers"))}


class FakeAzure:
    """Azurite and `azure_fake.py` (with the storage gates) in the cloud namespace, and a
    thread there to talk to them."""

    def __init__(self, net: Network, procs: Procs, tmp: Path) -> None:
        enter = ["nsenter", f"--net={net.path(net.cloud)}"]
        python = sys.executable  # the interpreter running the tests, wherever its venv is
        self.ca_file, cert, key = storage_tls(tmp, [CLOUD_IP, "127.0.0.1"])
        # Azurite on the cloud namespace's loopback: nodes reach storage through the gate only.
        self.azurite = Azurite(lambda args, log, env: procs.start(args, log, env=env), enter, "127.0.0.1",
                               cert, key, tmp)
        procs.start([*enter, python, str(HERE / "azure_fake.py"), CLOUD_IP, str(FAKE_PORT),
                     "--gate", f"table@{CLOUD_IP}:{TABLE_GATE_PORT}={self.azurite.table_url}",
                     "--gate", f"blob@{CLOUD_IP}:{BLOB_GATE_PORT}={self.azurite.blob_url}",
                     "--tls", str(cert), str(key), str(self.ca_file)], tmp / "azure.log")
        self.pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, initializer=_enter_netns, initargs=(net.path(net.cloud),))
        self.storage = Storage(self.azurite.table_url, self.azurite.blob_url, self.ca_file,
                               lambda fn: self.pool.submit(fn).result())
        try:
            self.storage.wait_up()
        except RuntimeError:
            raise RuntimeError(f"Azurite did not start: {self.azurite.log.read_text()[-2000:]}") from None
        # What the Pulumi program creates: the tables and the backup container.
        for table in TABLES:
            self.storage.create_table(table)
        for container in CONTAINERS:
            self.storage.create_container(container)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.state()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the fake Azure did not start") from None
                time.sleep(0.2)

    def control(self, what: str, body: dict[str, Any] | None = None) -> Any:
        def run() -> Any:
            data = json.dumps(body).encode() if body is not None else None
            request = urllib.request.Request(f"{FAKE_URL}/_control/{what}", data=data,
                                             method="POST" if data is not None else "GET")
            with urllib.request.urlopen(request, timeout=10) as answer:
                return json.loads(answer.read() or b"{}")

        return self.pool.submit(run).result()

    def state(self) -> dict[str, Any]:
        """The fake's record (secrets, approved events, calls, issued tokens) and what
        Azurite holds: every table's entities, every container's blobs (name -> size)."""
        state: dict[str, Any] = self.control("state")
        state["tables"] = {table: self.storage.rows(table) for table in TABLES}
        state["blobs"] = {container: self.storage.blobs(container) for container in CONTAINERS}
        return state

    def close(self) -> None:
        self.pool.shutdown(wait=True)


@dataclass
class AzureNode(Node):
    """A node whose cloud is the fake Azure."""

    vm_id: str = ""

    def env(self) -> dict[str, str]:
        return {
            # bin/ first: an apt-mark that changes nothing (a converge run holds the engine's
            # packages on Ubuntu; here that would be the host's).
            "PATH": f"{self.dir / 'bin'}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(self.dir),
            "LANG": "C.UTF-8",
            "SWARMSTACK_IMDS_ENDPOINT": FAKE_URL,
            "SWARMSTACK_VAULT_ENDPOINT": f"{FAKE_URL}/kv",
            "SWARMSTACK_TABLE_ENDPOINT": TABLE_ENDPOINT,
            "CURL_CA_BUNDLE": str(harness_ca(self)),  # storage's certificate is of the harness's CA
            "SWARMSTACK_ARM_ENDPOINT": f"{FAKE_URL}/arm",
            "SWARMSTACK_STATE_DIR": str(self.dir / "state"),
            "SWARMSTACK_RUN_DIR": str(self.dir / "run"),
            "SWARMSTACK_DOCKER_DROPIN": str(self.dir / "docker-api.conf"),
            "SWARMSTACK_LOG_FILE": str(self.log),
            "SWARMSTACK_DAEMON_BASE": str(self.dir / "daemon.base.json"),
            "SWARMSTACK_DAEMON_JSON": str(self.dir / "daemon.json"),
            "SWARMSTACK_TLS_DIR": str(self.dir / "tls"),
            "SWARMSTACK_DOCKER_SOCKET": str(self.socket),
            "SWARMSTACK_DOCKER_ROOT": str(self.dir / "data"),  # dockerd's --data-root (start_engine)
            "SWARMSTACK_RESTORE_TOOL": str(self.dir / "restore.sh"),  # a manager's, from its custom data
        }

    def schedule(self, event_type: str = "Terminate") -> str:
        """Azure schedules this machine's deletion (or Spot eviction): an event in IMDS."""
        event_id = str(uuid.uuid4())
        harness = self.harness
        assert isinstance(harness, AzureHarness)
        harness.azure.control("event", {"ip": self.ip, "event": {
            "EventId": event_id, "EventType": event_type, "ResourceType": "VirtualMachine",
            "Resources": [self.name], "EventStatus": "Scheduled", "NotBefore": "Mon, 01 Jan 2035 00:00:00 GMT",
            "Description": "test", "EventSource": "Platform", "DurationInSeconds": -1}})
        return event_id


def harness_ca(node: Node) -> Path:
    harness = node.harness
    assert isinstance(harness, AzureHarness)
    return harness.azure.ca_file


class AzureHarness(Harness):
    """Namespaces, the fake Azure and the nodes of one Azure cluster."""

    made = 0
    """Harnesses made by this process; each gets its own namespace prefix."""

    def __init__(self, timer_period: float = 2.0, overrides: dict[str, Any] | None = None) -> None:
        from swarmstack.config.load import load_stack

        self.stack = load_stack(STACK, root=ROOT)
        self.overrides = overrides or {}
        self.cluster = self.stack.cluster.name
        self.region = self.stack.region
        self.tmp = Path(tempfile.mkdtemp(prefix="ssa-", dir="/tmp"))
        self.procs = Procs()
        self.nodes: list[Node] = []
        self.counter = 0
        self.timer_period = timer_period
        self.insecure_registries: list[str] = []
        self._stop_timers = threading.Event()
        self._timer_thread: threading.Thread | None = None
        self.net = None  # type: ignore[assignment]
        self.cloud = None  # type: ignore[assignment]
        try:
            AzureHarness.made += 1
            self.net = Network(f"a{os.getpid() % 100000}h{AzureHarness.made}")
            self.cloud = FakeAzure(self.net, self.procs, self.tmp)  # type: ignore[assignment]
            self.image = self._make_image()
        except BaseException:
            self.close()
            raise

    def _timers(self) -> None:
        """As `Harness._timers`, but one failed tick (fork refused under load, a node torn
        down mid-tick) is written to `timers.log` instead of ending every timer."""
        while not self._stop_timers.wait(self.timer_period):
            for node in list(self.nodes):
                if not node.alive or node.dockerd is None:
                    continue
                for command in ("watch", "cleanup") if node.role == "manager" else ("watch",):
                    previous = node.timers.get(command)
                    if previous is not None and previous.poll() is None:
                        continue  # a timer never starts a unit that is still running
                    try:
                        node.timers[command] = self.procs.start(node.command(command), node.dir / f"{command}.out",
                                                                env=node.env())
                    except OSError as err:
                        with open(self.tmp / "timers.log", "a") as out:
                            out.write(f"{node.name} {command}: {err}\n")

    @property
    def azure(self) -> FakeAzure:
        assert isinstance(self.cloud, FakeAzure)
        return self.cloud

    def provision(self, managers: int = 0, workers: dict[str, int] | None = None,
                  tls: dict[str, str] | None = None) -> None:
        """What the Pulumi program leaves behind for the nodes: the placeholder tokens, and
        the Docker API's certificates and key when `tls` gives them (`ca-cert`,
        `server-cert`, `server-key`, as the AWS harness takes them)."""
        for secret in ("swarm-manager-token", "swarm-worker-token"):
            self.azure.control("secret", {"name": secret, "value": "pending"})
        self.store_tls(tls or {})

    def store_tls(self, tls: dict[str, str]) -> None:
        """What `pulumi up` writes to Key Vault for the Docker API (components/azure/store.py)."""
        for name, value in tls.items():
            self.azure.control("secret", {"name": f"docker-{name}", "value": value})

    def user_data(self, role: str, pool: str) -> dict[str, str]:
        cfg = self.stack.cluster
        labels = {} if role == "manager" else next(p.labels for p in cfg.workers if p.name == pool)
        params = NodeUserData(
            cluster=cfg.name, cloud="azure", role=role, pool=pool, generation="0a1b2c3d", region=self.region,
            labels=dict(labels), pool_labels=pool_labels_of(cfg) if role == "manager" else {},
            backup_store=BACKUP_STORE if role == "manager" else "",
            docker_api=bool(self.overrides.get("docker_api")) and role == "manager", vault_name="prod-abc123",
            table_endpoint="https://prodabc123.table.core.windows.net/", identity_client_id=CLIENT_IDS[role],
            logging=False, prune=True, address_pool=address_pool_for(cfg.network.new.cidr if cfg.network.new else None),
            **{k: v for k, v in self.overrides.items() if k != "docker_api"})
        return files_of(render(params))

    def add_azure_node(self, pool: str) -> AzureNode:
        """A new machine of a scale set: namespace, address, metadata, rendered files."""
        assert self.net is not None
        role = "manager" if pool == "managers" else "worker"
        self.counter += 1
        name = f"{'m' if role == 'manager' else 'w'}{self.counter}"
        ip = f"{SUBNET}.{9 + self.counter}"
        node_dir = self.tmp / name
        (node_dir / "state").mkdir(parents=True)
        zone = ZONES[(self.counter - 1) % len(ZONES)]
        vm_id = str(uuid.uuid4())
        node = AzureNode(name=name, role=role, pool=pool, ip=ip, instance_id=vm_id, zone=zone,
                         instance_type="Standard_D2s_v5", group=pool, dir=node_dir, harness=self, vm_id=vm_id)
        files = self.user_data(role, pool)
        (node_dir / "bin").mkdir()
        (node_dir / "bin" / "apt-mark").write_text("#!/bin/sh\necho \"apt-mark $*: not on a harness node\" >&2\nexit 1\n")
        (node_dir / "bin" / "apt-mark").chmod(0o755)
        (node_dir / "swarmstack-node").write_text(files[NODE_SCRIPT])
        (node_dir / "daemon.base.json").write_text(files["/etc/swarmstack/daemon.json"])
        if RESTORE_TOOL_PATH in files:  # the restore tool: Azure keeps it in the managers' custom data
            (node_dir / "restore.sh").write_text(files[RESTORE_TOOL_PATH])
        self.net.attach(node.ns, ip)
        self.azure.control("node", {"ip": ip, "role": role, "pool": pool, "client_id": CLIENT_IDS[role], "compute": {
            "vmId": vm_id, "name": name, "zone": zone, "vmSize": "Standard_D2s_v5",
            "subscriptionId": "00000000-0000-0000-0000-000000000000", "resourceGroupName": f"swarmstack-{self.cluster}",
            "vmScaleSetName": f"{self.cluster}-{pool}"}})
        self.nodes.append(node)
        return node

    def gone(self, node: AzureNode) -> None:
        """The machine no longer exists (ARM stops listing it)."""
        self.azure.control("gone", {"vmId": node.vm_id})
