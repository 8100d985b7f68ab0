"""`AzureRealBootCluster`: an Azure swarmstack cluster whose nodes really boot.

The cloud is the fake Azure (`tests/integration/azure_fake.py`: IMDS, Key Vault, ARM,
with the stack's role assignments enforced per identity) on port 80 of the cloud
namespace, so that the IMDS answers at the real 169.254.169.254 (with the
`Metadata: true` header) by the node's own address, and Azurite for Table storage
(`tests/integration/azurite.py`, HTTPS, OAuth tokens checked) behind the fake's storage
gate; the data plane is reached through the fault proxy (`faultproxy.py`, Azure error
shapes; HTTPS in front of storage). Each machine's disk trusts the cluster's storage CA
(`/usr/local/share/ca-certificates`), as Azure's images trust the public roots. A scale set's machine
is a booted node whose NoCloud seed holds exactly the custom data the program
renders for it (gzip), with only the endpoints overridden.
"""

from __future__ import annotations

import base64
import dataclasses
import inspect
import json
import os
import secrets
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

from cloud import PROXY_URL, SUBNET, AzureCloud, Network
from cluster import ROOT, Member, Pool, RealBootCluster
from harness import Procs
from node import BootedNode

STACK = "prod-azure"
ZONES = ("1", "2", "3")
CLIENT_IDS = {"manager": str(uuid.uuid5(uuid.NAMESPACE_URL, "managers")),
              "worker": str(uuid.uuid5(uuid.NAMESPACE_URL, "workers"))}
VAULT = "prod-abc123"


class AzureRealBootCluster(RealBootCluster):
    """Namespaces, the fake Azure + fault proxy, and booted scale set machines."""

    def __init__(self, stack: str = STACK, generation: str | None = None,
                 overrides: dict[str, Any] | None = None) -> None:
        from rootfs import ensure_root

        import userdata
        from swarmstack.config.load import load_stack

        self.userdata = userdata
        self.stack = load_stack(stack, root=ROOT)
        self.cluster = self.stack.cluster.name
        self.region = self.stack.region
        self.generation = generation or secrets.token_hex(4)
        self.overrides = dict(overrides or {})
        self.base = ensure_root()
        RealBootCluster.made += 1
        self.tmp = Path(tempfile.mkdtemp(prefix=f"sra{RealBootCluster.made}-", dir="/tmp"))
        self.procs = Procs()
        self.members: list[Member] = []
        self.pools: dict[str, Pool] = {}
        self.images = {}
        self.counter = 0
        self.lock = threading.RLock()
        self._stop = threading.Event()
        self._monitor = None
        self.net: Network | None = None
        self.cloud = None
        self.events: list[tuple[float, str]] = []
        self.key_arn = ""
        try:
            self.net = Network(f"ra{os.getpid() % 10000}x{RealBootCluster.made}")
            self.azure = AzureCloud(self.net, self.procs, self.tmp)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        azure = getattr(self, "azure", None)
        if azure is not None:
            azure.close()
        super().close()

    # --- user data ---

    def params(self, role: str, pool: str, **overrides: Any) -> Any:
        """The node's custom data parameters, as the Azure components build them; only the
        endpoints (and test overrides) differ."""
        cfg = self.stack.cluster
        labels = {} if role == "manager" else dict(next(p.labels for p in cfg.workers if p.name == pool))
        facts: dict[str, Any] = {
            "cluster": cfg.name, "cloud": "azure", "role": role, "pool": pool, "region": self.region,
            "generation": self.generation, "labels": labels, "docker_api": False, "vault_name": VAULT,
            "pool_labels": {p.name: dict(p.labels) for p in cfg.workers if p.labels} if role == "manager" else {},
            "table_endpoint": self.azure.table_endpoint, "identity_client_id": CLIENT_IDS[role], "logging": False,
            "vnet_cidr": cfg.network.new.cidr if cfg.network.new else None, "log_groups": None,
            "vault_endpoint": f"{PROXY_URL}/kv", "arm_endpoint": f"{PROXY_URL}/arm",
            **self.overrides, **overrides}
        kind = self._params_type()
        known = {f.name for f in dataclasses.fields(kind)}
        unknown = sorted(k for k in {**self.overrides, **overrides} if k not in known)
        if unknown:
            raise AssertionError(f"the Azure user data parameters have no field {', '.join(unknown)}")
        accepted = inspect.signature(kind).parameters
        return kind(**{k: v for k, v in facts.items() if k in known and k in accepted})

    def _params_type(self) -> Any:
        return self.userdata.NodeUserData

    def custom_data(self, role: str, pool: str, **overrides: Any) -> bytes:
        """The bytes Azure hands the machine: the rendered custom data, gzipped."""
        params = self.params(role, pool, **overrides)
        return base64.b64decode(self.userdata.encode(self.userdata.render(params), cloud="azure"))

    # --- the cloud ---

    def provision(self, managers: int, workers: dict[str, int] | None = None, **_: Any) -> None:  # type: ignore[override]
        """What the program leaves for the nodes (the placeholder token secrets), and the pools."""
        for secret in ("swarm-manager-token", "swarm-worker-token"):
            self.azure.control("secret", {"name": secret, "value": "pending"})
        for pool, count in [("managers", managers), *(workers or {}).items()]:
            role = "manager" if pool == "managers" else "worker"
            self.pools[pool] = Pool(pool, role, f"{self.cluster}-{pool}", "", {})
            self.pools[pool].overrides["count"] = count

    def boot_new(self, pool: str | None = None, prepare: Any = None, wait: bool = True,  # type: ignore[override]
                 parallel: int = 3) -> list[Member]:
        """A machine for every scale set instance not yet created."""
        made = []
        for name in [pool] if pool else list(self.pools):
            spec = self.pools[name]
            have = sum(1 for m in self.members if m.pool == name and not m.gone)
            made += [self._azure_member(name) for _ in range(spec.overrides["count"] - have)]
        if made:
            self.boot(made, prepare=prepare, wait=wait, parallel=parallel)
        return made

    def _azure_member(self, pool: str) -> Member:
        assert self.net is not None
        spec = self.pools[pool]
        with self.lock:
            self.counter += 1
            name = f"{'m' if spec.role == 'manager' else 'w'}{self.counter}"
            ip = f"{SUBNET}.{9 + self.counter}"
        ns = f"{self.net.prefix}-{name}"
        self.net.attach(ns, ip)
        machine = BootedNode(name, self.base, self.tmp / name, ns)
        vm_id = str(uuid.uuid4())
        zone = ZONES[(self.counter - 1) % len(ZONES)]
        member = Member(name=name, role=spec.role, pool=pool, group=spec.group, ip=ip, instance_id=vm_id, zone=zone,
                        image="ubuntu", machine=machine)
        self.azure.control("node", {"ip": ip, "role": spec.role, "pool": pool, "client_id": CLIENT_IDS[spec.role],
                                    "compute": {
            "vmId": vm_id, "name": name, "zone": zone, "vmSize": "Standard_D2s_v5",
            "subscriptionId": "00000000-0000-0000-0000-000000000000",
            "resourceGroupName": f"swarmstack-{self.cluster}", "vmScaleSetName": f"{self.cluster}-{pool}"}})
        # The storage endpoint's certificate is of the cluster's CA: the disk trusts it.
        machine.write("/usr/local/share/ca-certificates/swarmstack-test-storage.crt", self.azure.ca_file.read_text())
        machine.chroot("update-ca-certificates")
        machine.seed(vm_id, self.custom_data(spec.role, pool, **{k: v for k, v in spec.overrides.items()
                                                                 if k != "count"}), hostname=name)
        with self.lock:
            self.members.append(member)
        return member

    def start_monitor(self) -> None:
        """Azure machines are only deleted by the test here; nothing to watch."""

    def tokens(self) -> dict[str, str]:
        found = self.azure.control("state")["secrets"]
        return {role: found.get(f"swarm-{role}-token", "").strip() for role in ("manager", "worker")
                if found.get(f"swarm-{role}-token", "pending") != "pending"}

    def state(self) -> dict[str, str]:
        return {k: json.dumps(v) for k, v in self.azure.tables().items()}

    def lifecycle(self) -> list[dict[str, Any]]:
        return []

    def health(self, member: Member) -> str:
        return "InService/Healthy" if member.machine.running else "gone"

    def diagnostics(self, members: list[Member] | None = None) -> str:
        text = super().diagnostics(members)
        calls = self.azure.control("state")["calls"][-15:]
        return text + "\n== last data-plane calls (role, method, path, status): " + json.dumps(calls)

    @property
    def faults(self) -> Any:
        return self.azure.faults
