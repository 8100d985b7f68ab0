"""The network and the cloud fakes that booted nodes talk to.

Layout (only namespaces made here; nothing on the host's interfaces): a hub namespace
`<p>-hub` with bridge `br0`; a cloud namespace `<p>-cloud` at 10.198.0.2 that also
holds 169.254.169.254/32, the real metadata address; one namespace per node at
10.198.0.10 and up, with a route to 169.254.169.254 through the cloud namespace. A
node's requests reach the metadata service from its own address, which is how the
fakes answer each node as itself.

AWS (`AwsCloud`): moto with lifecycle hooks (`tests/integration/motoplus.py`) on
10.198.0.2:5000, the fault proxy in front of it on 10.198.0.2:4566 (the nodes'
`aws_endpoint_url`), and the IMDS (`imds_live.py`) on 169.254.169.254:80.
Azure (`AzureCloud`): the fake Azure (`tests/integration/azure_fake.py`: IMDS, Key Vault,
ARM) on port 80 of every cloud address (IMDS at 169.254.169.254 answers by source
address) and the fault proxy in front of its data plane on 10.198.0.2:4566; Table (and
Blob) storage is Azurite (`tests/integration/azurite.py`) on the cloud namespace's
loopback, behind the fake's storage gate (the stack's role assignments) and a second,
HTTPS fault proxy on 10.198.0.2:4567 that the nodes use as their table endpoint; its
certificate is of a CA made per cluster, which the nodes trust (their system store).

Every service runs with `sys.executable`; the test process reaches them from a thread
that has joined the cloud namespace. Everything is stopped by PID.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

INTEGRATION = Path(__file__).resolve().parents[1] / "integration"
sys.path.insert(0, str(INTEGRATION))

from harness import Procs, _enter_netns, sh  # noqa: E402

HERE = Path(__file__).resolve().parent
SUBNET = "10.198.0"
CLOUD_IP = f"{SUBNET}.2"
METADATA_IP = "169.254.169.254"
MOTO_PORT = 5000
PROXY_PORT = 4566
MOTO_URL = f"http://{CLOUD_IP}:{MOTO_PORT}"
PROXY_URL = f"http://{CLOUD_IP}:{PROXY_PORT}"
AZURE_URL = f"http://{CLOUD_IP}:80"
STORAGE_PROXY_PORT = 4567
TABLE_GATE = "127.0.0.1:20002"
T = TypeVar("T")


class Network:
    """The hub with its bridge, the cloud namespace and one namespace per node."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.hub = f"{prefix}-hub"
        self.cloud = f"{prefix}-cloud"
        self.namespaces: list[str] = []
        self.links = 0
        try:
            self._add(self.hub)
            sh("ip", "-n", self.hub, "link", "add", "br0", "type", "bridge")
            sh("ip", "-n", self.hub, "link", "set", "br0", "up")
            self.attach(self.cloud, CLOUD_IP, metadata_route=False)
            sh("ip", "-n", self.cloud, "addr", "add", f"{METADATA_IP}/32", "dev", "eth0")
        except BaseException:
            self.close()
            raise

    def _add(self, ns: str) -> None:
        sh("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")

    def attach(self, ns: str, address: str, metadata_route: bool = True) -> None:
        """Namespace `ns` with eth0 at `address`/24 on the bridge (and the metadata route)."""
        self._add(ns)
        self.links += 1
        port = f"p{self.links}"
        sh("ip", "-n", self.hub, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "-n", self.hub, "link", "set", port, "master", "br0")
        sh("ip", "-n", self.hub, "link", "set", port, "up")
        sh("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        if metadata_route:
            sh("ip", "-n", ns, "route", "add", f"{METADATA_IP}/32", "via", CLOUD_IP, "dev", "eth0")

    def detach(self, ns: str) -> None:
        sh("ip", "netns", "del", ns, check=False)
        with contextlib.suppress(ValueError):
            self.namespaces.remove(ns)

    @staticmethod
    def path(ns: str) -> str:
        return f"/run/netns/{ns}"

    def close(self) -> None:
        for ns in reversed(self.namespaces):
            sh("ip", "netns", "del", ns, check=False)
        self.namespaces.clear()


class Faults:
    """The fault proxy's rules, written atomically to the file it re-reads."""

    def __init__(self, path: Path, log: Path) -> None:
        self.path = path
        self.log = log
        self.rules: list[dict[str, Any]] = []
        self._write()

    def _write(self) -> None:
        temp = self.path.with_suffix(".tmp")
        temp.write_text(json.dumps({"faults": self.rules}, indent=1))
        temp.replace(self.path)

    def add(self, fault: str, seconds: float | None = None, *, start_in: float = 0.0, source: str | None = None,
            service: str | None = None, operation: str | None = None, body: str | None = None,
            latency: float | None = None) -> dict[str, Any]:
        """Inject `fault` (throttle, error, denied, latency) from `start_in` s from now for
        `seconds` (None: until cleared) on requests that match every given field."""
        now = time.time()
        rule: dict[str, Any] = {"fault": fault, "from": now + start_in}
        if seconds is not None:
            rule["until"] = now + start_in + seconds
        for key, value in (("source", source), ("service", service), ("operation", operation), ("body", body),
                           ("seconds", latency)):
            if value is not None:
                rule[key] = value
        self.rules.append(rule)
        self._write()
        return rule

    def clear(self) -> None:
        self.rules = []
        self._write()

    def calls(self) -> list[dict[str, Any]]:
        """Every request the proxy saw (time, source, service, operation, status, fault)."""
        try:
            return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]
        except FileNotFoundError:
            return []


class CloudBase:
    """Processes in the cloud namespace and a thread there for the test's own calls."""

    def __init__(self, net: Network, procs: Procs, tmp: Path) -> None:
        self.net = net
        self.procs = procs
        self.tmp = tmp
        self.enter = ["nsenter", f"--net={net.path(net.cloud)}"]
        self.pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, initializer=_enter_netns, initargs=(net.path(net.cloud),))
        self.faults = Faults(tmp / "faults.json", tmp / "proxy.jsonl")

    def start(self, name: str, script: Path, *args: str, env: dict[str, str] | None = None) -> None:
        import os

        self.procs.start([*self.enter, sys.executable, str(script), *args], self.tmp / f"{name}.log",
                         env={**os.environ, **(env or {})})

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn` in the thread that lives in the cloud namespace."""
        return self.pool.submit(fn, *args, **kwargs).result()

    def wait_up(self, urls: list[str], timeout: float = 30) -> None:
        def run() -> None:
            deadline = time.monotonic() + timeout
            for url in urls:
                while True:
                    try:
                        with contextlib.suppress(urllib.error.HTTPError):  # any status means it is up
                            urllib.request.urlopen(url, timeout=2)
                        break
                    except OSError:
                        if time.monotonic() > deadline:
                            logs = {p.name: p.read_text()[-1500:] for p in self.tmp.glob("*.log")}
                            raise RuntimeError(f"{url} did not start: {logs}") from None
                        time.sleep(0.2)

        self.call(run)

    def close(self) -> None:
        self.pool.shutdown(wait=True)


class AwsCloud(CloudBase):
    """moto (+ lifecycle hooks), the fault proxy and the IMDS at 169.254.169.254."""

    def __init__(self, net: Network, procs: Procs, tmp: Path, region: str) -> None:
        super().__init__(net, procs, tmp)
        self.region = region
        self.imds_dir = tmp / "imds"
        self.imds_dir.mkdir()
        self.lifecycle_log = tmp / "lifecycle.jsonl"
        self._clients: dict[str, Any] = {}
        self.start("moto", INTEGRATION / "motoplus.py", "-H", CLOUD_IP, "-p", str(MOTO_PORT),
                   env={"SWARMSTACK_LIFECYCLE_LOG": str(self.lifecycle_log)})
        self.start("imds", HERE / "imds_live.py", METADATA_IP, "80", str(self.imds_dir), MOTO_URL)
        self.start("proxy", HERE / "faultproxy.py", CLOUD_IP, str(PROXY_PORT), MOTO_URL, str(self.faults.path),
                   str(self.faults.log), "aws")
        self.wait_up([f"{MOTO_URL}/moto-api/", f"http://{METADATA_IP}/", f"{PROXY_URL}/moto-api/"])

    def aws(self, service: str, operation: str, **kwargs: Any) -> Any:
        """One boto3 call straight to moto (never through the fault proxy)."""

        def run() -> Any:
            if service not in self._clients:
                import boto3

                self._clients[service] = boto3.client(
                    service, endpoint_url=MOTO_URL, region_name=self.region,
                    aws_access_key_id="testing", aws_secret_access_key="testing")
            return getattr(self._clients[service], operation)(**kwargs)

        return self.call(run)

    def set_metadata(self, ip: str, metadata: dict[str, str]) -> None:
        target = self.imds_dir / f"{ip}.json"
        temp = target.with_suffix(".tmp")
        temp.write_text(json.dumps(metadata))
        temp.replace(target)

    def parameter(self, name: str) -> str | None:
        try:
            return str(self.aws("ssm", "get_parameter", Name=name, WithDecryption=True)["Parameter"]["Value"])
        except Exception as err:  # botocore's ParameterNotFound class lives on the client
            if "ParameterNotFound" in str(err):
                return None
            raise

    def parameters(self, path: str) -> dict[str, str]:
        """Every parameter under `path`, recursively, decrypted."""
        out: dict[str, str] = {}
        token = None
        while True:
            kwargs: dict[str, Any] = {"Path": path, "Recursive": True, "WithDecryption": True}
            if token:
                kwargs["NextToken"] = token
            page = self.aws("ssm", "get_parameters_by_path", **kwargs)
            out.update({p["Name"]: p["Value"] for p in page["Parameters"]})
            token = page.get("NextToken")
            if not token:
                return out

    def lifecycle_events(self) -> list[dict[str, Any]]:
        """motoplus's record of every lifecycle wait and how it ended."""
        try:
            return [json.loads(line) for line in self.lifecycle_log.read_text().splitlines() if line.strip()]
        except FileNotFoundError:
            return []

    def instances(self, group: str) -> list[dict[str, Any]]:
        groups = self.aws("autoscaling", "describe_auto_scaling_groups", AutoScalingGroupNames=[group])
        return list(groups["AutoScalingGroups"][0]["Instances"]) if groups["AutoScalingGroups"] else []

    def ec2_states(self, instance_ids: list[str]) -> dict[str, dict[str, Any]]:
        if not instance_ids:
            return {}
        reservations = self.aws("ec2", "describe_instances", InstanceIds=instance_ids)["Reservations"]
        return {i["InstanceId"]: i for r in reservations for i in r["Instances"]}


class AzureCloud(CloudBase):
    """The fake Azure on port 80 of the cloud namespace (IMDS at 169.254.169.254), with the
    fault proxy in front of its data plane (Key Vault, ARM); Azurite's Table storage
    behind the fake's storage gate and an HTTPS fault proxy (the same rules and log)."""

    TABLES = ("swarm", "leaving")

    def __init__(self, net: Network, procs: Procs, tmp: Path) -> None:
        from azurite import ACCOUNT, Azurite, Storage, storage_tls

        super().__init__(net, procs, tmp)
        self.ca_file, cert, key = storage_tls(tmp, [CLOUD_IP, "127.0.0.1"])
        self.azurite = Azurite(lambda args, log, env: procs.start(args, log, env=env), self.enter, "127.0.0.1",
                               cert, key, tmp)
        self.start("azure", INTEGRATION / "azure_fake.py", "0.0.0.0", "80",
                   "--gate", f"table@{TABLE_GATE}={self.azurite.table_url}",
                   "--tls", str(cert), str(key), str(self.ca_file))
        self.start("proxy", HERE / "faultproxy.py", CLOUD_IP, str(PROXY_PORT), AZURE_URL, str(self.faults.path),
                   str(self.faults.log), "azure")
        self.start("storage-proxy", HERE / "faultproxy.py", CLOUD_IP, str(STORAGE_PROXY_PORT), f"https://{TABLE_GATE}",
                   str(self.faults.path), str(self.faults.log), "azure", "tables", str(cert), str(key),
                   str(self.ca_file))
        self.table_endpoint = f"https://{CLOUD_IP}:{STORAGE_PROXY_PORT}/{ACCOUNT}/"
        self.wait_up([f"{AZURE_URL}/_control/state", f"http://{METADATA_IP}/metadata/instance",
                      f"{PROXY_URL}/_control/state"])
        self.storage = Storage(self.azurite.table_url, self.azurite.blob_url, self.ca_file, self.call)
        try:
            self.storage.wait_up()
        except RuntimeError:
            raise RuntimeError(f"Azurite did not start: {self.azurite.log.read_text()[-2000:]}") from None
        for table in self.TABLES:  # what the Pulumi program creates
            self.storage.create_table(table)

    def tables(self) -> dict[str, list[dict[str, Any]]]:
        """Every entity of the swarm's tables, as Azurite holds them."""
        return {table: self.storage.rows(table) for table in self.TABLES}

    def control(self, what: str, body: dict[str, Any] | None = None) -> Any:
        def run() -> Any:
            data = json.dumps(body).encode() if body is not None else None
            request = urllib.request.Request(f"{AZURE_URL}/_control/{what}", data=data,
                                             method="POST" if data is not None else "GET")
            with urllib.request.urlopen(request, timeout=10) as answer:
                return json.loads(answer.read() or b"{}")

        return self.call(run)
