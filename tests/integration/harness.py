"""Real Docker engines in network namespaces, a moto cloud and a fake IMDS.

Layout (all inside namespaces this harness creates, nothing on the host's own
interfaces): a bridge namespace `<p>-br` holding bridge `br0`; a cloud namespace
`<p>-cloud` at 10.199.0.2 running moto's server (SSM, EC2, Auto Scaling, Logs) and
the fake IMDS; one namespace per node at 10.199.0.10 and up, each with its own
`dockerd` (own data root, exec root, socket, hostname). The test process reaches
moto from a worker thread that has joined the cloud namespace (`setns`), and the
nodes through their Unix sockets.

IAM is enforced (`node_iam.py`): moto judges every call after the harness's setup, the
harness calls as an admin user, and each node as its role (the program's policy documents)
with the credentials the fake IMDS serves it, as an instance gets its profile's.

What runs on a node is the `swarmstack-node` script rendered from the real
templates for the `prod-aws` stack, unmodified; only the endpoints (IMDS, AWS) and
the paths a node owns alone (socket, state, daemon.json, TLS dir, log file) are set
through the script's `SWARMSTACK_*` settings. The harness plays systemd: it runs
`configure`, starts dockerd with the written daemon.json, runs `bootstrap`, and
runs the `watch` and `cleanup` timers' commands on a short period.

Every process is started here and stopped here by PID; namespaces, mounts and the
temporary directory are removed at `close()`.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import node_iam

from components.common.namespace import log_group_names
from components.common.node_paths import NODE_SCRIPT

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
STACK = "prod-aws"
SUBNET = "10.199.0"
CLOUD_IP = f"{SUBNET}.2"
MOTO_PORT = 5000
IMDS_PORT = 8080
MOTO_URL = f"http://{CLOUD_IP}:{MOTO_PORT}"
IMDS_URL = f"http://{CLOUD_IP}:{IMDS_PORT}"
ZONES = ("a", "b", "c")
HOOK = "swarmstack-drain"
CLONE_NEWNET = 0x40000000
TOOLS = ("dockerd", "containerd", "runc", "ip", "nsenter", "unshare", "curl", "flock")

T = TypeVar("T")
# The distribution's client, as on a node (a newer client may not talk to Debian's 20.10 engine).
DOCKER = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else (shutil.which("docker") or "docker")


def missing_requirements() -> str | None:
    """Why this machine cannot run the harness, or None when it can."""
    if os.geteuid() != 0:
        return "the integration harness needs root (network namespaces, dockerd)"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if not os.path.exists(DOCKER):
        missing.append("docker (the client)")
    if aws_cli() is None:
        missing.append("aws (the AWS CLI: apt-get install awscli, or pip install awscli)")
    if missing:
        return "missing tools: " + ", ".join(missing)
    return None


def aws_cli() -> str | None:
    """The AWS CLI the nodes use: $SWARMSTACK_TEST_AWS_CLI, Debian's (CLI v2, as on the
    nodes; apt package awscli), the venv's, or the PATH's."""
    explicit = os.environ.get("SWARMSTACK_TEST_AWS_CLI")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    if os.access("/usr/bin/aws", os.X_OK):
        return "/usr/bin/aws"
    venv = Path(sys.executable).parent / "aws"  # the running interpreter's environment
    if venv.exists():
        return str(venv)
    found = shutil.which("aws")
    if found and "/.pyenv/shims/" in found and shutil.which("pyenv"):
        # A pyenv shim costs half a second a call; the nodes make dozens.
        real = subprocess.run(["pyenv", "which", "aws"], capture_output=True, text=True)
        if real.returncode == 0 and real.stdout.strip():
            return real.stdout.strip()
    return found


def sh(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {result.returncode}: {result.stderr.strip()}")
    return result


# --- processes ---------------------------------------------------------------


def _ppid_map() -> dict[int, int]:
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        out[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    return out


def _pids_mentioning(path: str) -> list[int]:
    """Processes whose command line holds `path` (a directory only this harness uses)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if path in cmdline:
            found.append(int(entry))
    return found


def kill_tree(roots: Iterable[int], sig: int = signal.SIGKILL) -> None:
    """Signal the given processes and all their descendants, by PID."""
    parents = _ppid_map()
    todo = [pid for pid in roots if pid in parents]
    seen: set[int] = set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        todo.extend(child for child, parent in parents.items() if parent == pid)
    for pid in seen:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


class Procs:
    """Every process the harness started; stopped by PID, never by name."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []
        self.lock = threading.Lock()

    def start(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with open(log, "ab") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        with self.lock:
            self.started.append(proc)
        return proc

    def stop_all(self) -> None:
        with self.lock:
            running = [p for p in self.started if p.poll() is None]
        kill_tree([p.pid for p in running])
        for proc in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)


# --- network -----------------------------------------------------------------


class Network:
    """The bridge namespace, the cloud namespace and one namespace per node."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.bridge = f"{prefix}-br"
        self.cloud = f"{prefix}-cloud"
        self.namespaces: list[str] = []
        self.links = 0
        self._add(self.bridge)
        sh("ip", "-n", self.bridge, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.bridge, "link", "set", "br0", "up")
        self.attach(self.cloud, CLOUD_IP)

    def _add(self, ns: str) -> None:
        sh("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")

    def attach(self, ns: str, address: str) -> None:
        """Create namespace `ns` with eth0 at `address`/24 on the bridge."""
        self._add(ns)
        self.links += 1
        port = f"p{self.links}"
        sh("ip", "-n", self.bridge, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "-n", self.bridge, "link", "set", port, "master", "br0")
        sh("ip", "-n", self.bridge, "link", "set", port, "up")
        sh("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")

    @staticmethod
    def path(ns: str) -> str:
        return f"/var/run/netns/{ns}"

    def close(self) -> None:
        for ns in reversed(self.namespaces):
            sh("ip", "netns", "del", ns, check=False)
        self.namespaces.clear()


def _enter_netns(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns({path}): {os.strerror(errno)}")
    finally:
        os.close(fd)


# --- the cloud ---------------------------------------------------------------


class Cloud:
    """moto (with lifecycle hooks) and the fake IMDS, in the cloud namespace."""

    def __init__(self, net: Network, procs: Procs, tmp: Path) -> None:
        self.net = net
        self.imds_dir = tmp / "imds"
        self.imds_dir.mkdir()
        enter = ["nsenter", f"--net={net.path(net.cloud)}"]
        python = sys.executable  # the interpreter running the tests, wherever its venv is
        procs.start([*enter, python, str(HERE / "motoplus.py"), "-H", CLOUD_IP, "-p", str(MOTO_PORT)], tmp / "moto.log",
                    env={**os.environ, **node_iam.MOTO_ENV})
        procs.start([*enter, python, str(HERE / "imds.py"), CLOUD_IP, str(IMDS_PORT), str(self.imds_dir)],
                    tmp / "imds.log")
        self.pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, initializer=_enter_netns, initargs=(net.path(net.cloud),))
        self._clients: dict[str, Any] = {}
        self.call(self._wait_up)
        self.identities = self.call(node_iam.bootstrap, MOTO_URL, REGION)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn` in the thread that lives in the cloud namespace."""
        return self.pool.submit(fn, *args, **kwargs).result()

    @staticmethod
    def _wait_up() -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                for url in (f"{MOTO_URL}/moto-api/", f"{IMDS_URL}/"):
                    with contextlib.suppress(urllib.error.HTTPError):  # any status means it is up
                        urllib.request.urlopen(url, timeout=2)
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("moto or the fake IMDS did not start") from None
                time.sleep(0.2)

    def aws(self, service: str, operation: str, **kwargs: Any) -> Any:
        """One boto3 call against moto, e.g. `aws("ssm", "get_parameter", Name=...)`."""

        def run() -> Any:
            if service not in self._clients:
                import boto3

                self._clients[service] = boto3.client(service, endpoint_url=MOTO_URL, region_name=REGION,
                                                      **self.identities.admin.boto())
            return getattr(self._clients[service], operation)(**kwargs)

        return self.call(run)

    def reset(self) -> None:
        def run() -> None:
            request = urllib.request.Request(f"{MOTO_URL}/moto-api/reset", method="POST")
            urllib.request.urlopen(request, timeout=10)
            # the admin and the roles went with it: set them up again, unjudged
            request = urllib.request.Request(f"{MOTO_URL}/moto-api/reset-auth", method="POST",
                                             data=str(node_iam.SETUP_CALLS).encode())
            urllib.request.urlopen(request, timeout=10)

        self.call(run)
        self._clients.clear()
        self.identities = self.call(node_iam.bootstrap, MOTO_URL, REGION)
        for file in self.imds_dir.glob("*.json"):
            file.unlink()

    def set_metadata(self, ip: str, metadata: dict[str, str]) -> None:
        target = self.imds_dir / f"{ip}.json"
        temp = target.with_suffix(".tmp")
        temp.write_text(json.dumps(metadata))
        temp.replace(target)

    def node_credentials(self, role: str) -> node_iam.Credentials:
        """The credentials an instance of `role` gets from its instance profile."""
        return self.identities.sessions[role]

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    # --- conveniences over moto ---

    def parameter(self, name: str) -> str | None:
        try:
            return str(self.aws("ssm", "get_parameter", Name=name, WithDecryption=True)["Parameter"]["Value"])
        except Exception as err:  # botocore's ParameterNotFound class lives on the client
            if "ParameterNotFound" in str(err):
                return None
            raise

    def instance_state(self, instance_id: str) -> str:
        reservations = self.aws("ec2", "describe_instances", InstanceIds=[instance_id])["Reservations"]
        return str(reservations[0]["Instances"][0]["State"]["Name"])

    def group_instances(self, group: str) -> list[dict[str, Any]]:
        groups = self.aws("autoscaling", "describe_auto_scaling_groups", AutoScalingGroupNames=[group])
        return list(groups["AutoScalingGroups"][0]["Instances"])


REGION = "eu-west-1"


# --- nodes -------------------------------------------------------------------


@dataclass
class Node:
    """One instance: a namespace, a dockerd, and the rendered swarmstack-node script."""

    name: str
    role: str
    pool: str
    ip: str
    instance_id: str
    zone: str
    instance_type: str
    group: str
    dir: Path
    harness: Harness
    dockerd: subprocess.Popen[bytes] | None = None
    timers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    alive: bool = True

    @property
    def ns(self) -> str:
        return f"{self.harness.net.prefix}-{self.name}"

    @property
    def socket(self) -> Path:
        return self.dir / "docker.sock"

    @property
    def log(self) -> Path:
        return self.dir / "bootstrap.log"

    def metadata(self, lifecycle: str = "InService") -> dict[str, str]:
        cloud = self.harness.cloud
        assert cloud is not None
        return {
            "meta-data/instance-id": self.instance_id,
            "meta-data/local-ipv4": self.ip,
            "meta-data/placement/availability-zone": self.zone,
            "meta-data/instance-type": self.instance_type,
            "meta-data/autoscaling/target-lifecycle-state": lifecycle,
            **node_iam.metadata(cloud.identities, self.role),
        }

    def env(self) -> dict[str, str]:
        aws = aws_cli()
        assert aws is not None
        return {
            "PATH": f"{Path(aws).parent}:/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/sbin:/usr/local/bin",
            "HOME": str(self.dir),
            "LANG": "C.UTF-8",
            "AWS_EC2_METADATA_SERVICE_ENDPOINT": f"{IMDS_URL}/",  # the role's credentials, as on EC2
            "AWS_METADATA_SERVICE_TIMEOUT": "5",  # the fake IMDS shares 2 cores with everything else
            "AWS_METADATA_SERVICE_NUM_ATTEMPTS": "3",
            "AWS_ENDPOINT_URL": MOTO_URL,
            "SWARMSTACK_IMDS_ENDPOINT": IMDS_URL,
            "SWARMSTACK_LOGS_ENDPOINT": MOTO_URL,
            "SWARMSTACK_STATE_DIR": str(self.dir / "state"),
            "SWARMSTACK_RUN_DIR": str(self.dir / "run"),
            "SWARMSTACK_DOCKER_DROPIN": str(self.dir / "docker-api.conf"),
            "SWARMSTACK_LOG_FILE": str(self.log),
            "SWARMSTACK_DAEMON_BASE": str(self.dir / "daemon.base.json"),
            "SWARMSTACK_DAEMON_JSON": str(self.dir / "daemon.json"),
            "SWARMSTACK_TLS_DIR": str(self.dir / "tls"),
            "SWARMSTACK_DOCKER_SOCKET": str(self.socket),
            "SWARMSTACK_DOCKER_ROOT": str(self.dir / "data"),  # dockerd's --data-root (start_engine)
        }

    def command(self, command: str) -> list[str]:
        return ["nsenter", f"--net={Network.path(self.ns)}", "bash", str(self.dir / "swarmstack-node"), command]

    def run(self, command: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """Run a swarmstack-node command on this node, as its systemd unit would."""
        result = subprocess.run(self.command(command), env=self.env(), capture_output=True, text=True,
                                timeout=timeout)
        with open(self.dir / "commands.log", "a") as out:
            out.write(f"--- {command} exited {result.returncode}\n{result.stderr}")
        return result

    def docker(self, *args: str, check: bool = True, timeout: float = 30) -> str:
        result = subprocess.run([DOCKER, "-H", f"unix://{self.socket}", *args], capture_output=True, text=True,
                                timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"{self.name}: docker {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    def start_engine(self, image: bool = True) -> None:
        """dockerd in the node's namespace with its daemon.json; `image`: load the services' test image."""
        config = json.loads((self.dir / "daemon.json").read_text())
        # What the unit's drop-in adds once the certificates are in place (see write_api_dropin).
        hosts = ["-H", f"unix://{self.socket}"] + (["-H", "tcp://0.0.0.0:2376"] if config.get("tlsverify") else [])
        args = [
            "nsenter", f"--net={Network.path(self.ns)}", "unshare", "--uts", "--",
            "sh", "-c", 'hostname "$0" && exec "$@"', self.name,
            "dockerd", "--config-file", str(self.dir / "daemon.json"), *hosts,
            "--data-root", str(self.dir / "data"), "--exec-root", str(self.dir / "exec"),
            "--pidfile", str(self.dir / "docker.pid"),
            "--iptables=false", "--ip-masq=false", "--bridge=none",
            *(f"--insecure-registry={registry}" for registry in self.harness.insecure_registries),
        ]
        # awslogs signs with the node role's session (on EC2 it asks IMDS for the same)
        cloud = self.harness.cloud
        credentials = cloud.node_credentials(self.role).env() if isinstance(cloud, Cloud) else \
            {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), **credentials}
        self.dockerd = self.harness.procs.start(args, self.dir / "dockerd.log", env=env)
        deadline = time.monotonic() + 60
        while True:
            # dockerd serves its API only once its swarm node is ready or 20 s have passed (moby's
            # Cluster.Start): a manager started while raft has no quorum holds `docker info` past
            # 10 s. No answer yet is "not up yet", as a refusal is.
            try:
                up = self.docker("info", "--format", "{{.ID}}", check=False, timeout=10).strip()
            except subprocess.TimeoutExpired:
                up = ""
            if up:
                if not image:
                    return
                loaded = subprocess.run([DOCKER, "-H", f"unix://{self.socket}", "load", "-i", str(self.harness.image)],
                                        capture_output=True, text=True, timeout=60)
                if loaded.returncode == 0:
                    return
            if self.dockerd.poll() is not None or time.monotonic() > deadline:
                log = (self.dir / "dockerd.log").read_text(errors="replace").splitlines()[-15:]
                raise RuntimeError(f"{self.name}: dockerd did not start (exit {self.dockerd.poll()}):\n"
                                   + "\n".join(log))
            time.sleep(0.3)

    def boot(self, image: bool = True) -> subprocess.CompletedProcess[str]:
        """What cloud-init and systemd do at first boot, less the package install."""
        configured = self.run("configure", timeout=120)
        if configured.returncode != 0:
            return configured
        self.start_engine(image)
        return self.run("bootstrap")

    def set_lifecycle(self, state: str) -> None:
        self.harness.cloud.set_metadata(self.ip, self.metadata(state))

    def stop(self, graceful: bool = True) -> None:
        """The instance is gone: dockerd (gracefully if asked) and everything of this node."""
        self.alive = False
        if graceful and self.dockerd is not None and self.dockerd.poll() is None:
            self.dockerd.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.dockerd.wait(timeout=8)
        roots = _pids_mentioning(str(self.dir) + "/")
        if self.dockerd is not None:
            roots.append(self.dockerd.pid)
        kill_tree(roots)
        if self.dockerd is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.dockerd.wait(timeout=10)

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text() if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def raft_tail(self, lines: int = 12) -> str:
        """The engine's last raft and cluster lines: why a manager has no leader."""
        log = self.dir / "dockerd.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        picked = [line for line in text.splitlines() if "raft" in line or "cluster" in line or "swarm" in line]
        return f"== {self.name} dockerd\n" + "\n".join(line[:300] for line in picked[-lines:])


# --- the harness -------------------------------------------------------------


class Harness:
    """Namespaces, the cloud and the nodes of one cluster; `close()` undoes all of it."""

    timer_period: float = 2.0
    """Period of the `watch` timer (production: 5 s)."""
    cleanup_period: float = 5.0
    """Period of the managers' `cleanup` timer (production: 60 s)."""

    def __init__(self, timer_period: float = 2.0, cleanup_period: float = 5.0) -> None:
        import userdata
        from swarmstack.config.load import load_stack

        self.stack = load_stack(STACK, root=ROOT)
        self.userdata = userdata
        self.cluster = self.stack.cluster.name
        self.generation = "0a1b2c3d"
        """The deployment generation the program would draw (random.RandomId); fixed here."""
        self.region = self.stack.region
        if self.region != REGION:
            raise RuntimeError(f"the harness expects {STACK} in {REGION}, not {self.region}")
        self.tmp = Path(tempfile.mkdtemp(prefix="sst-", dir="/tmp"))
        self.procs = Procs()
        self.nodes: list[Node] = []
        self.counter = 0
        self.timer_period = timer_period
        self.cleanup_period = cleanup_period
        self.insecure_registries: list[str] = []
        """Plain-HTTP registries the engines may pull from (a test's stand-in for ECR)."""
        self._stop_timers = threading.Event()
        self._timer_thread: threading.Thread | None = None
        self.net: Network | None = None  # type: ignore[assignment]
        self.cloud: Cloud | None = None  # type: ignore[assignment]
        try:
            self.net = Network(f"s{os.getpid() % 100000}")
            self.cloud = Cloud(self.net, self.procs, self.tmp)
            self.image = self._make_image()
            # The cluster key (components/aws/store.py): the nodes store the join tokens under it.
            self.key_arn = str(self.cloud.aws("kms", "create_key", Description="swarmstack prod")["KeyMetadata"]["Arn"])
            node_iam.grant_node_policies(self.cloud.aws, self.cloud.identities, self.region, self.cluster,
                                         list(log_group_names(self.cluster).values()), self.key_arn,
                                         self.generation)
        except BaseException:
            self.close()
            raise

    # --- cloud resources, as the AWS components would create them ---

    def group(self, pool: str) -> str:
        return f"swarmstack-{self.cluster}-{pool}"

    def provision(self, managers: int, workers: dict[str, int], tls: dict[str, str] | None = None) -> None:
        """Log groups, TLS parameters, launch templates, ASGs with the drain hook."""
        cloud = self.cloud
        assert cloud is not None
        for group in log_group_names(self.cluster).values():
            cloud.aws("logs", "create_log_group", logGroupName=group)
        for name, value in (tls or {}).items():
            cloud.aws("ssm", "put_parameter", Name=f"/swarmstack/{self.cluster}/tls/{name}", Value=value,
                      Type="SecureString")
        image = cloud.aws("ec2", "describe_images", Owners=["amazon"])["Images"][0]["ImageId"]
        for pool, count in [("managers", managers), *workers.items()]:
            role = "manager" if pool == "managers" else "worker"
            template = f"{self.cluster}-{pool}"
            cloud.aws("ec2", "create_launch_template", LaunchTemplateName=template,
                      LaunchTemplateData={"ImageId": image, "InstanceType": "m6i.large"})
            cloud.aws("autoscaling", "create_auto_scaling_group", AutoScalingGroupName=self.group(pool),
                      LaunchTemplate={"LaunchTemplateName": template, "Version": "$Latest"},
                      MinSize=0, MaxSize=10, DesiredCapacity=count,
                      AvailabilityZones=[f"{REGION}{z}" for z in ZONES],
                      Tags=[{"Key": key, "Value": value, "PropagateAtLaunch": True} for key, value in
                            (("swarmstack:cluster", self.cluster), ("swarmstack:role", role),
                             ("swarmstack:pool", pool))])
            # as the cluster grants it: managers complete every group's actions, workers their own groups'
            node_iam.grant_lifecycle(cloud.aws, cloud.identities, self.region, self.group(pool),
                                     ("manager",) if role == "manager" else ("manager", "worker"))
            cloud.aws("autoscaling", "put_lifecycle_hook", LifecycleHookName=HOOK,
                      AutoScalingGroupName=self.group(pool),
                      LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
                      HeartbeatTimeout=600, DefaultResult="CONTINUE")

    def unassigned(self, pool: str) -> list[dict[str, Any]]:
        assert self.cloud is not None
        taken = {n.instance_id for n in self.nodes}
        return [i for i in self.cloud.group_instances(self.group(pool))
                if i["InstanceId"] not in taken and i["LifecycleState"] == "InService"]

    def add_node(self, pool: str, instance: dict[str, Any]) -> Node:
        """A node for a moto instance: namespace, address, metadata, rendered files."""
        assert self.net is not None and self.cloud is not None
        role = "manager" if pool == "managers" else "worker"
        self.counter += 1
        prefix = "m" if role == "manager" else "w"
        name = f"{prefix}{self.counter}"
        ip = f"{SUBNET}.{9 + self.counter}"
        node_dir = self.tmp / name
        (node_dir / "state").mkdir(parents=True)
        node = Node(name=name, role=role, pool=pool, ip=ip, instance_id=instance["InstanceId"],
                    zone=instance["AvailabilityZone"], instance_type=instance["InstanceType"],
                    group=self.group(pool), dir=node_dir, harness=self)
        params = self.userdata.params_for(self.stack.cluster, self.region, role, pool, self.generation,
                                          self.key_arn)
        files = self.userdata.files_of(self.userdata.render(params))
        (node_dir / "swarmstack-node").write_text(files[NODE_SCRIPT])
        (node_dir / "daemon.base.json").write_text(files["/etc/swarmstack/daemon.json"])
        self.net.attach(node.ns, ip)
        # The machine's address as EC2 knows it (moto drew another): what the leader checks
        # before it labels the node that claims this instance.
        described = self.cloud.aws("ec2", "describe_instances", InstanceIds=[node.instance_id])["Reservations"]
        self.cloud.aws("ec2", "assign_private_ip_addresses", PrivateIpAddresses=[ip],
                       NetworkInterfaceId=described[0]["Instances"][0]["NetworkInterfaces"][0]["NetworkInterfaceId"])
        self.cloud.set_metadata(ip, node.metadata())
        self.nodes.append(node)
        return node

    def add_nodes(self, pool: str) -> list[Node]:
        return [self.add_node(pool, instance) for instance in self.unassigned(pool)]

    def lose_instance(self, node: Node) -> None:
        """`node`'s machine died: EC2 terminates it and its group lets it go without lowering its
        desired count, so moto launches a replacement (see `wait_new_instance`)."""
        self.cloud.aws("ec2", "terminate_instances", InstanceIds=[node.instance_id])
        self.cloud.aws("autoscaling", "detach_instances", InstanceIds=[node.instance_id],
                       AutoScalingGroupName=node.group, ShouldDecrementDesiredCapacity=False)

    def wait_new_instance(self, pool: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            fresh = self.unassigned(pool)
            if fresh:
                return fresh[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"no replacement instance appeared in {self.group(pool)}")
            time.sleep(0.5)

    @staticmethod
    def boot_all(nodes: list[Node], image: bool = True) -> dict[str, subprocess.CompletedProcess[str]]:
        """Boot nodes at once, started in random order; the bootstrap results by node name."""
        order = list(nodes)
        random.shuffle(order)
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(order)) as pool:
            futures = {node.name: pool.submit(node.boot, image) for node in order}
            return {name: future.result() for name, future in futures.items()}

    # --- systemd's timers ---

    def start_timers(self) -> None:
        if self._timer_thread is None:
            self._stop_timers.clear()
            self._timer_thread = threading.Thread(target=self._timers, name="timers", daemon=True)
            self._timer_thread.start()

    def stop_timers(self) -> None:
        self._stop_timers.set()
        if self._timer_thread is not None:
            self._timer_thread.join(timeout=30)
            self._timer_thread = None
        for node in self.nodes:
            for proc in node.timers.values():
                if proc.poll() is None:
                    kill_tree([proc.pid])
                    proc.wait(timeout=10)

    def _timers(self) -> None:
        """Like `OnUnitInactiveSec=`: a unit starts `period` after its previous run ended."""
        ended: dict[tuple[str, str], float] = {}
        periods = {"watch": self.timer_period, "cleanup": self.cleanup_period}
        while not self._stop_timers.wait(0.5):
            now = time.monotonic()
            for node in list(self.nodes):
                if not node.alive or node.dockerd is None:
                    continue
                for command in ("watch", "cleanup") if node.role == "manager" else ("watch",):
                    key = (node.name, command)
                    previous = node.timers.get(command)
                    if previous is not None and previous.poll() is None:
                        continue  # a timer never starts a unit that is still running
                    if previous is not None and key not in ended:
                        ended[key] = now
                    if previous is not None and now - ended[key] < periods[command]:
                        continue
                    ended.pop(key, None)
                    node.timers[command] = self.procs.start(node.command(command), node.dir / f"{command}.out",
                                                            env=node.env())

    # --- looking at the swarm ---

    def live(self, role: str | None = None) -> list[Node]:
        return [n for n in self.nodes if n.alive and (role is None or n.role == role)]

    def view(self, timeout: float = 15) -> list[dict[str, str]] | None:
        """`docker node ls` from the first live manager that has a leader, giving each manager
        `timeout` seconds (a follower whose leader just died hangs until raft elects)."""
        for node in self.live("manager"):
            try:
                result = subprocess.run(
                    [DOCKER, "-H", f"unix://{node.socket}", "node", "ls", "--format",
                     "{{.ID}}\t{{.Hostname}}\t{{.Status}}\t{{.Availability}}\t{{.ManagerStatus}}"],
                    capture_output=True, text=True, timeout=timeout)
            except subprocess.TimeoutExpired:
                continue  # a manager mid-election may hang; ask the next one
            if result.returncode == 0:
                rows = []
                for line in result.stdout.splitlines():
                    node_id, host, status, availability, manager = (line.split("\t") + [""] * 5)[:5]
                    rows.append({"id": node_id, "host": host, "status": status, "availability": availability,
                                 "manager": manager})
                return rows
        return None

    def converged(self, rows: list[dict[str, str]] | None, managers: int, workers: int) -> str | None:
        """Why `rows` is not the expected healthy swarm of the live nodes, or None."""
        if rows is None:
            return "no live manager answers `docker node ls` (no leader)"
        expected = {n.name for n in self.live()}
        hosts = sorted(r["host"] for r in rows)
        if sorted(expected) != hosts:
            return f"nodes {hosts}, expected {sorted(expected)}"
        bad = [r for r in rows if r["status"] != "Ready" or r["availability"] != "Active"]
        if bad:
            return f"not Ready/Active: {bad}"
        leaders = [r for r in rows if r["manager"] == "Leader"]
        reachable = [r for r in rows if r["manager"] == "Reachable"]
        if len(leaders) != 1:
            return f"{len(leaders)} leaders"
        if len(leaders) + len(reachable) != managers:
            return f"{len(leaders) + len(reachable)} reachable managers, expected {managers}"
        if sum(1 for r in rows if r["manager"] == "") != workers:
            return f"{sum(1 for r in rows if r['manager'] == '')} workers, expected {workers}"
        managers_by_name = {n.name for n in self.live("manager")}
        wrong = [r["host"] for r in rows if (r["manager"] != "") != (r["host"] in managers_by_name)]
        if wrong:
            return f"nodes in the wrong role: {wrong}"
        return None

    def wait_converged(self, managers: int, workers: int, timeout: float = 120) -> list[dict[str, str]]:
        deadline = time.monotonic() + timeout
        while True:
            rows = self.view()
            problem = self.converged(rows, managers, workers)
            if problem is None:
                assert rows is not None
                return rows
            if time.monotonic() > deadline:
                logs = "\n".join(f"== {n.name} ({n.ip}, {n.instance_id})\n{n.tail()}" for n in self.nodes)
                raise AssertionError(f"swarm did not converge in {timeout}s: {problem}\n{rows}\n{logs}")
            time.sleep(0.5)

    def leader(self) -> Node:
        rows = self.view()
        assert rows is not None, "no leader"
        host = next(r["host"] for r in rows if r["manager"] == "Leader")
        return next(n for n in self.nodes if n.name == host)

    # --- the image the services run ---

    def _make_image(self) -> Path:
        """A tiny image (sh, sleep and their libraries) as an image tarball: no registry needed."""
        root = self.tmp / "image"
        binaries = ["/bin/sh", "/bin/sleep"]
        files = set(binaries)
        for line in sh("ldd", *binaries).stdout.splitlines():
            if line.endswith(":"):
                continue
            for part in line.split():
                if part.startswith("/"):
                    files.add(part)
        for file in files:
            target = root / file.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(os.path.realpath(file), target)
        rootfs = self.tmp / "rootfs.tar"
        sh("tar", "-C", str(root), "-cf", str(rootfs), ".")
        return self._image_archive(rootfs)

    def _image_archive(self, rootfs: Path) -> Path:
        """Wrap a root filesystem tarball as a `docker load` archive named swarmstack/sleep:test."""
        import hashlib
        import tarfile

        layer = rootfs.read_bytes()
        diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
        config = json.dumps({
            "architecture": "amd64", "os": "linux",
            "config": {"Cmd": ["sleep", "100000"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created_by": "swarmstack integration harness"}],
        }).encode()
        config_name = hashlib.sha256(config).hexdigest() + ".json"
        manifest = json.dumps([{"Config": config_name, "RepoTags": ["swarmstack/sleep:test"],
                                "Layers": ["layer/layer.tar"]}]).encode()
        archive = self.tmp / "image.tar"
        with tarfile.open(archive, "w") as tar:
            for name, data in ((config_name, config), ("layer/layer.tar", layer), ("manifest.json", manifest)):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                import io

                tar.addfile(info, io.BytesIO(data))
        return archive

    # --- teardown ---

    def close(self) -> None:
        self.stop_timers()
        nodes = [n for n in self.nodes if n.dockerd is not None]
        for node in nodes:
            if node.dockerd is not None and node.dockerd.poll() is None:
                node.dockerd.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 8
        for node in nodes:
            if node.dockerd is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    node.dockerd.wait(timeout=max(0.1, deadline - time.monotonic()))
        for node in self.nodes:
            node.stop(graceful=False)
        if self.cloud is not None:
            self.cloud.close()
        self.procs.stop_all()
        kill_tree(_pids_mentioning(str(self.tmp) + "/"))
        self._unmount()
        if self.net is not None:
            self.net.close()
        if os.environ.get("SWARMSTACK_TEST_KEEP"):
            for data in self.tmp.glob("*/data"):
                shutil.rmtree(data, ignore_errors=True)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _unmount(self) -> None:
        mounts = []
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4]
            if point.startswith(str(self.tmp) + "/"):
                mounts.append(point)
        for point in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True)
