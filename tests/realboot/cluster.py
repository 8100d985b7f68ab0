"""`RealBootCluster`: an AWS swarmstack cluster whose nodes really boot.

The cloud resources are created in moto the way the program creates them (log groups,
a launch template per group carrying the rendered, gzipped user data, auto scaling
groups with the `swarmstack-drain` termination hook and the `swarmstack-join` launch
hook), and every instance moto launches becomes a booted node (`node.BootedNode`):
its disk is the base root (or an image's variant of it) and its NoCloud seed holds
exactly the user data of its launch template. The IMDS answers each node with its
instance's metadata, credentials and live lifecycle state; a terminated instance is
shut down by the harness, as EC2 does.

User data is rendered by the real renderer (`userdata.params_for` + `userdata.render`,
`os="ubuntu"`: the Debian root stands in for Ubuntu); only fields of the parameters are
overridden (the AWS endpoint, timers), never the script.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import dataclasses
import inspect
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cloud import PROXY_URL, SUBNET, AwsCloud, Network
from harness import Procs, kill_tree
from node import BootedNode, NodeError

ROOT = Path(__file__).resolve().parents[2]
STACK = "prod-aws"
DRAIN_HOOK = "swarmstack-drain"
JOIN_HOOK = "swarmstack-join"
ZONES = ("a", "b", "c")
Prepare = Callable[[BootedNode], None]


@dataclass
class Member:
    """One instance and the machine booted for it."""

    name: str
    role: str
    pool: str
    group: str
    ip: str
    instance_id: str
    zone: str
    image: str
    machine: BootedNode
    booted_at: float = 0.0
    boot_state: str = ""
    gone: bool = False
    """The instance is terminated (its machine was shut down)."""

    def docker(self, *args: str, check: bool = True, timeout: float = 30) -> str:
        return self.machine.exec("docker", *args, check=check, timeout=timeout).stdout

    def bootstrap_log(self) -> str:
        return self.machine.read("/var/log/swarmstack/bootstrap.log") or ""

    def journal(self, lines: int = 60) -> str:
        """The node's own units (not the timers' routine runs) and every swarmstack error line."""
        if not self.machine.running:
            return "(not running)"
        units = ("swarmstack-configure.service", "swarmstack-bootstrap.service", "swarmstack-converge.service",
                 "swarmstack-install.service", "docker.service", "cloud-final.service")
        args = [a for unit in units for a in ("-u", unit)]
        result = self.machine.exec("journalctl", "--no-pager", "-o", "short-iso", "-n", str(lines), *args,
                                   check=False, timeout=30)
        errors = self.machine.exec("journalctl", "--no-pager", "-o", "short-iso", "-n", "20", "-p", "warning",
                                   "-u", "swarmstack*", check=False, timeout=30)
        return result.stdout + "-- warnings and errors of swarmstack units:\n" + errors.stdout

    def left_swarm(self) -> bool:
        """The disk says this node left its swarm (`swarm leave` empties /var/lib/docker/swarm)."""
        swarm = self.machine.docker_dir / "swarm"
        return not swarm.exists() or not any(swarm.iterdir())

    def swarm_info(self) -> dict[str, str]:
        """LocalNodeState, NodeID, swarm id (managers only) and ControlAvailable; empty when dockerd is down."""
        if not self.machine.running:
            return {}
        try:
            result = self.machine.exec(
                "docker", "info", "--format",
                "{{.Swarm.LocalNodeState}}|{{.Swarm.NodeID}}|{{with .Swarm.Cluster}}{{.ID}}{{end}}|"
                "{{.Swarm.ControlAvailable}}", check=False, timeout=20)
        except (subprocess.TimeoutExpired, NodeError):  # dockerd starting (socket activation waits)
            return {}
        if result.returncode != 0:
            return {}
        state, node_id, swarm_id, manager = ([*result.stdout.strip().split("|"), "", "", "", ""])[:4]
        return {"state": state, "node_id": node_id, "swarm_id": swarm_id, "manager": manager}

    def diagnostics(self) -> str:
        status = ""
        if self.machine.running:
            with contextlib.suppress(Exception):
                status = self.machine.exec("systemctl", "--no-pager", "--failed", "--plain", "--no-legend",
                                           check=False).stdout
        return (f"== {self.name} {self.role} {self.ip} {self.instance_id} image={self.image} "
                f"running={self.machine.running} gone={self.gone} boot={self.boot_state!r}\n"
                f"-- failed units: {status.strip() or 'none'}\n"
                f"-- bootstrap.log (tail):\n{_tail(self.bootstrap_log(), 40)}\n"
                f"-- journal (tail):\n{_tail(self.journal(), 40)}\n")


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Pool:
    name: str
    role: str
    group: str
    template: str
    overrides: dict[str, Any] = field(default_factory=dict)


class RealBootCluster:
    """Namespaces, moto + IMDS + fault proxy, and booted nodes of one AWS stack."""

    made = 0

    def __init__(self, stack: str = STACK, generation: str | None = None, overrides: dict[str, Any] | None = None,
                 tmp: Path | None = None) -> None:
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
        self.tmp = tmp or Path(tempfile.mkdtemp(prefix=f"srb{RealBootCluster.made}-", dir="/tmp"))
        self.procs = Procs()
        self.members: list[Member] = []
        self.pools: dict[str, Pool] = {}
        self.images: dict[str, Prepare | None] = {}
        self.counter = 0
        self.lock = threading.RLock()
        self._stop = threading.Event()
        self._monitor: threading.Thread | None = None
        self.net: Network | None = None
        self.cloud: AwsCloud | None = None
        self.events: list[tuple[float, str]] = []
        try:
            self.net = Network(f"rb{os.getpid() % 10000}x{RealBootCluster.made}")
            self.cloud = AwsCloud(self.net, self.procs, self.tmp, self.region)
            amis = [i["ImageId"] for i in self.cloud.aws("ec2", "describe_images", Owners=["amazon"])["Images"]]
            self._amis = iter(amis)
            self.good_image = self.image(None)
            self.key_arn = str(self.cloud.aws("kms", "create_key", Description=f"swarmstack {self.cluster}")
                               ["KeyMetadata"]["Arn"])
        except BaseException:
            self.close()
            raise

    @property
    def faults(self) -> Any:
        """The fault proxy's rules (`add`, `clear`, `calls`)."""
        assert self.cloud is not None
        return self.cloud.faults

    # --- images and user data ---

    def image(self, prepare: Prepare | None) -> str:
        """An image id: the base root, changed by `prepare` on each node's disk before first boot."""
        ami = next(self._amis)
        self.images[ami] = prepare
        return ami

    def params(self, role: str, pool: str, **overrides: Any) -> Any:
        """The node's user data parameters, as the program builds them, with test overrides."""
        params_for = self.userdata.params_for
        # Whatever else the program hands params_for, the harness has too (by parameter name).
        facts = {"generation": self.generation, "key_arn": self.key_arn}
        accepted = inspect.signature(params_for).parameters
        params = params_for(self.stack.cluster, self.region, role, pool,
                            **{k: v for k, v in facts.items() if k in accepted})
        wanted = {"os": "ubuntu", "aws_endpoint_url": PROXY_URL, **self.overrides, **overrides}
        known = {f.name for f in dataclasses.fields(params)}
        unknown = sorted(set(wanted) - known)
        if unknown:
            raise AssertionError(f"the user data parameters have no field {', '.join(unknown)} "
                                 f"(NodeUserData fields: {', '.join(sorted(known))})")
        return dataclasses.replace(params, **wanted)

    def user_data(self, role: str, pool: str, **overrides: Any) -> str:
        """base64(gzip(user data)), as the launch template carries it."""
        return str(self.userdata.encode(self.userdata.render(self.params(role, pool, **overrides))))

    # --- cloud resources, as the AWS components create them ---

    def group(self, pool: str) -> str:
        return f"swarmstack-{self.cluster}-{pool}"

    def state_prefix(self) -> str:
        return f"/swarmstack/{self.cluster}/"

    def tls(self) -> dict[str, str]:
        """The Docker API CA and server pair, as the TLS component stores them in SSM."""
        from certs import make_bundle

        return dict(make_bundle([f"{SUBNET}.{i}" for i in range(10, 80)]).ssm_values())

    def put_tls(self, tls: dict[str, str]) -> None:
        assert self.cloud is not None
        for name, value in tls.items():
            self.cloud.aws("ssm", "put_parameter", Name=f"/swarmstack/{self.cluster}/tls/{name}", Value=value,
                           Type="SecureString", Overwrite=True)

    def provision(self, managers: int, workers: dict[str, int] | None = None, *, tls: dict[str, str] | None = None,
                  join_hook: bool = True, join_timeout: int = 900, drain_timeout: dict[str, int] | None = None,
                  image: str | None = None, overrides: dict[str, dict[str, Any]] | None = None) -> None:
        """Log groups, the TLS parameters (when given), a launch template and an ASG per pool
        with the drain hook (and the join hook), then the desired capacities: moto launches
        the instances (in Pending:Wait when the join hook is there)."""
        cloud = self.cloud
        assert cloud is not None
        for kind in ("containers", "events", "bootstrap", "prune"):
            with contextlib.suppress(Exception):  # a re-created stack finds them (retained)
                cloud.aws("logs", "create_log_group", logGroupName=f"/swarmstack/{self.cluster}/{kind}")
        if tls:
            self.put_tls(tls)
        drain = {"manager": 900, "worker": 600, **(drain_timeout or {})}
        counts = [("managers", managers), *(workers or {}).items()]
        for pool, _count in counts:
            role = "manager" if pool == "managers" else "worker"
            template = f"{self.cluster}-{pool}-{self.generation}"
            extra = (overrides or {}).get(pool, {})
            self.pools[pool] = Pool(pool, role, self.group(pool), template, extra)
            cloud.aws("ec2", "create_launch_template", LaunchTemplateName=template, LaunchTemplateData={
                "ImageId": image or self.good_image, "InstanceType": "m6i.large",
                "UserData": self.user_data(role, pool, **extra)})
            cloud.aws("autoscaling", "create_auto_scaling_group", AutoScalingGroupName=self.group(pool),
                      LaunchTemplate={"LaunchTemplateName": template, "Version": "$Latest"},
                      MinSize=0, MaxSize=10, DesiredCapacity=0,
                      AvailabilityZones=[f"{self.region}{z}" for z in ZONES],
                      Tags=[{"Key": key, "Value": value, "PropagateAtLaunch": True} for key, value in
                            (("swarmstack:cluster", self.cluster), ("swarmstack:role", role),
                             ("swarmstack:pool", pool))])
            cloud.aws("autoscaling", "put_lifecycle_hook", LifecycleHookName=DRAIN_HOOK,
                      AutoScalingGroupName=self.group(pool), LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
                      HeartbeatTimeout=drain[role], DefaultResult="CONTINUE")
            if join_hook:
                cloud.aws("autoscaling", "put_lifecycle_hook", LifecycleHookName=JOIN_HOOK,
                          AutoScalingGroupName=self.group(pool),
                          LifecycleTransition="autoscaling:EC2_INSTANCE_LAUNCHING",
                          HeartbeatTimeout=join_timeout, DefaultResult="ABANDON")
        for pool, count in counts:
            if count:
                self.set_capacity(pool, count)

    def set_capacity(self, pool: str, count: int) -> None:
        assert self.cloud is not None
        self.cloud.aws("autoscaling", "set_desired_capacity", AutoScalingGroupName=self.group(pool),
                       DesiredCapacity=count)
        self.note(f"{pool} desired capacity {count}")

    def new_version(self, pool: str, image: str | None = None, **overrides: Any) -> None:
        """A new launch template version (a new image, or changed user data), as `pulumi up` makes."""
        assert self.cloud is not None
        spec = self.pools[pool]
        spec.overrides = {**spec.overrides, **overrides}
        self.cloud.aws("ec2", "create_launch_template_version", LaunchTemplateName=spec.template,
                       LaunchTemplateData={"ImageId": image or self.good_image, "InstanceType": "m6i.large",
                                           "UserData": self.user_data(spec.role, pool, **spec.overrides)})

    def terminate(self, member: Member, decrement: bool = False) -> None:
        assert self.cloud is not None
        self.cloud.aws("autoscaling", "terminate_instance_in_auto_scaling_group", InstanceId=member.instance_id,
                       ShouldDecrementDesiredCapacity=decrement)
        self.note(f"terminate {member.name} ({member.instance_id})")

    def destroy(self) -> None:
        """What `pulumi destroy` does to the groups first: every group scaled to 0."""
        for pool in self.pools:
            self.set_capacity(pool, 0)

    def wait_terminated(self, members: list[Member], timeout: float) -> list[Member]:
        """Until every member's instance is terminated (EC2); those still not terminated."""
        assert self.cloud is not None
        deadline = time.monotonic() + timeout
        while True:
            states = self.cloud.ec2_states([m.instance_id for m in members])
            left = [m for m in members if states.get(m.instance_id, {}).get("State", {}).get("Name") != "terminated"]
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(2)

    def delete_groups(self) -> None:
        """The rest of `pulumi destroy`: groups (forced: whatever is left dies), templates, TLS."""
        assert self.cloud is not None
        for spec in self.pools.values():
            with contextlib.suppress(Exception):
                self.cloud.aws("autoscaling", "delete_auto_scaling_group", AutoScalingGroupName=spec.group,
                               ForceDelete=True)
            with contextlib.suppress(Exception):
                self.cloud.aws("ec2", "delete_launch_template", LaunchTemplateName=spec.template)
        with contextlib.suppress(Exception):
            self.cloud.aws("ssm", "delete_parameters", Names=[f"/swarmstack/{self.cluster}/tls/{n}"
                                                              for n in ("ca-cert", "server-cert", "server-key")])
        for member in self.members:
            if member.machine.running:
                member.gone = True
                member.machine.power_off()
        self.pools = {}

    def recreate(self, generation: str | None = None) -> None:
        """A new deployment of the same stack after a destroy: a new generation; the
        node-written state of the old one is still in SSM (Pulumi does not own it)."""
        self.generation = generation or secrets.token_hex(4)
        self.note(f"re-created with generation {self.generation}")

    def next_ip(self) -> str:
        """The address the next machine will get."""
        return f"{SUBNET}.{10 + self.counter}"

    # --- machines ---

    def launched(self, pool: str) -> list[dict[str, Any]]:
        """Instances of the pool's group that have no machine yet (and are not leaving)."""
        assert self.cloud is not None
        with self.lock:
            taken = {m.instance_id for m in self.members}
        return [i for i in self.cloud.instances(self.group(pool))
                if i["InstanceId"] not in taken and not i["LifecycleState"].startswith("Terminat")]

    def boot_new(self, pool: str | None = None, prepare: Prepare | None = None, wait: bool = True,
                 parallel: int = 3) -> list[Member]:
        """A machine for every instance without one (of `pool`, or all pools), booted in parallel."""
        pools = [pool] if pool else list(self.pools)
        members = [self._member(p, i) for p in pools for i in self.launched(p)]
        if members:
            self.boot(members, prepare=prepare, wait=wait, parallel=parallel)
        return members

    def wait_launched(self, pool: str, count: int = 1, timeout: float = 60) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            fresh = self.launched(pool)
            if len(fresh) >= count:
                return fresh
            if time.monotonic() > deadline:
                raise AssertionError(f"{count} new instance(s) did not appear in {self.group(pool)} in {timeout}s")
            time.sleep(1)

    def _member(self, pool: str, instance: dict[str, Any]) -> Member:
        assert self.net is not None and self.cloud is not None
        spec = self.pools[pool]
        details = self.cloud.ec2_states([instance["InstanceId"]])[instance["InstanceId"]]
        with self.lock:
            self.counter += 1
            name = f"{'m' if spec.role == 'manager' else 'w'}{self.counter}"
            ip = f"{SUBNET}.{9 + self.counter}"
        ns = f"{self.net.prefix}-{name}"
        self.net.attach(ns, ip)
        # The machine's address as EC2 knows it (moto drew another): what the leader checks
        # before it labels the node that claims this instance.
        self.cloud.aws("ec2", "assign_private_ip_addresses", PrivateIpAddresses=[ip],
                       NetworkInterfaceId=details["NetworkInterfaces"][0]["NetworkInterfaceId"])
        machine = BootedNode(name, self.base, self.tmp / name, ns)
        member = Member(name=name, role=spec.role, pool=pool, group=spec.group, ip=ip,
                        instance_id=instance["InstanceId"], zone=instance["AvailabilityZone"],
                        image=details.get("ImageId", ""), machine=machine)
        credentials = json.dumps({"Code": "Success", "LastUpdated": "2026-01-01T00:00:00Z", "Type": "AWS-HMAC",
                                  "AccessKeyId": f"ASIA{spec.role.upper()}{self.counter:04d}",
                                  "SecretAccessKey": "testing", "Token": "testing",
                                  "Expiration": "2099-01-01T00:00:00Z"})
        role_name = f"swarmstack-{self.cluster}-{spec.role}"
        self.cloud.set_metadata(ip, {
            "meta-data/instance-id": member.instance_id,
            "meta-data/local-ipv4": ip,
            "meta-data/local-hostname": name,
            "meta-data/placement/availability-zone": member.zone,
            "meta-data/placement/region": self.region,
            "meta-data/instance-type": instance.get("InstanceType", "m6i.large"),
            "meta-data/ami-id": member.image,
            "meta-data/iam/security-credentials/": role_name,
            f"meta-data/iam/security-credentials/{role_name}": credentials,
        })
        user_data = self._user_data_of(spec)
        machine.seed(member.instance_id, user_data, hostname=name)
        prepare_image = self.images.get(member.image)
        if prepare_image is not None:
            prepare_image(machine)
        with self.lock:
            self.members.append(member)
        return member

    def _user_data_of(self, spec: Pool) -> bytes:
        """The bytes EC2 hands the instance: the launch template's UserData, base64-decoded."""
        assert self.cloud is not None
        versions = self.cloud.aws("ec2", "describe_launch_template_versions", LaunchTemplateName=spec.template,
                                  Versions=["$Latest"])["LaunchTemplateVersions"]
        return base64.b64decode(versions[0]["LaunchTemplateData"]["UserData"])

    def boot(self, members: list[Member], prepare: Prepare | None = None, wait: bool = True,
             parallel: int = 3) -> None:
        """Power the machines on (after `prepare` changed their disks), a few at a time."""
        def one(member: Member) -> None:
            if prepare is not None:
                prepare(member.machine)
            member.machine.start()
            member.booted_at = time.monotonic()
            self.note(f"power on {member.name} ({member.instance_id})")
            if wait:
                member.boot_state = member.machine.wait_booted()

        with concurrent.futures.ThreadPoolExecutor(max_workers=parallel) as pool:
            for future in [pool.submit(one, m) for m in members]:
                future.result()
        self.start_monitor()

    def live(self, role: str | None = None) -> list[Member]:
        return [m for m in self.members if not m.gone and m.machine.running and (role is None or m.role == role)]

    # --- EC2's side: terminated instances are shut down ---

    def start_monitor(self) -> None:
        if self._monitor is None:
            self._monitor = threading.Thread(target=self._watch_instances, name="ec2", daemon=True)
            self._monitor.start()

    def _watch_instances(self) -> None:
        while not self._stop.wait(2):
            with contextlib.suppress(Exception):
                with self.lock:
                    pending = [m for m in self.members if not m.gone]
                states = self.cloud.ec2_states([m.instance_id for m in pending]) if self.cloud else {}
                for member in pending:
                    state = states.get(member.instance_id, {}).get("State", {}).get("Name", "terminated")
                    if state in ("shutting-down", "terminated"):
                        member.gone = True
                        self.note(f"{member.name} ({member.instance_id}) terminated: shutting it down")
                        threading.Thread(target=member.machine.stop, daemon=True).start()

    # --- the swarm ---

    def view(self) -> list[dict[str, str]] | None:
        """`docker node ls` from the first live manager that answers."""
        for member in self.live("manager"):
            try:
                result = member.machine.exec(
                    "docker", "node", "ls", "--format",
                    "{{.ID}}\t{{.Hostname}}\t{{.Status}}\t{{.Availability}}\t{{.ManagerStatus}}",
                    check=False, timeout=15)
            except Exception:
                continue
            if result.returncode == 0:
                rows = []
                for line in result.stdout.splitlines():
                    node_id, host, status, availability, manager = (line.split("\t") + [""] * 5)[:5]
                    rows.append({"id": node_id.rstrip(" *"), "host": host, "status": status,
                                 "availability": availability, "manager": manager})
                return rows
        return None

    def converged(self, rows: list[dict[str, str]] | None, members: list[Member]) -> str | None:
        """Why `rows` is not one healthy swarm of exactly `members`, or None."""
        if rows is None:
            return "no live manager answers `docker node ls`"
        ready = sorted(r["host"] for r in rows if r["status"] == "Ready")
        expected = sorted(m.name for m in members)
        if ready != expected:
            return f"Ready nodes {ready}, expected {expected} (all rows: {rows})"
        leaders = [r for r in rows if r["manager"] == "Leader"]
        if len(leaders) != 1:
            return f"{len(leaders)} leaders"
        managers = {m.name for m in members if m.role == "manager"}
        wrong = [r["host"] for r in rows if r["status"] == "Ready"
                 and (r["manager"] in ("Leader", "Reachable")) != (r["host"] in managers)]
        if wrong:
            return f"nodes in the wrong role: {wrong} (rows: {rows})"
        return None

    def wait_converged(self, members: list[Member] | None = None, timeout: float = 300,
                       since: float | None = None) -> float:
        """Until the swarm is exactly `members` (default: every live machine), all Ready, one
        leader; the seconds it took from `since` (default: the first boot)."""
        deadline = time.monotonic() + timeout
        while True:
            expected = members if members is not None else self.live()
            problem = self.converged(self.view(), expected)
            if problem is None:
                start = since if since is not None else min((m.booted_at for m in expected), default=0)
                return time.monotonic() - start
            if time.monotonic() > deadline:
                raise AssertionError(f"no converged swarm in {timeout}s: {problem}\n{self.diagnostics()}")
            time.sleep(2)

    def view_leader(self) -> str:
        """The leader's hostname (node name)."""
        rows = self.view() or []
        return next((r["host"] for r in rows if r["manager"] == "Leader"), "")

    def swarm_ids(self) -> dict[str, str]:
        """Swarm (cluster) id as seen by each live manager."""
        return {m.name: self._info(m, "swarm_id") for m in self.live("manager")}

    def node_ids(self) -> dict[str, str]:
        return {m.name: self._info(m, "node_id") for m in self.live()}

    @staticmethod
    def _info(member: Member, key: str, timeout: float = 60) -> str:
        """One field of `docker info`, asked again while dockerd does not answer (bounded)."""
        deadline = time.monotonic() + timeout
        while True:
            value = member.swarm_info().get(key, "")
            if value or time.monotonic() > deadline or not member.machine.running:
                return value
            time.sleep(2)

    def init_owner(self) -> Member | None:
        """The member whose instance id the init marker names (the swarm's first manager)."""
        for name, value in self.state().items():
            if name.endswith("/init") and (name.startswith(f"/swarmstack/{self.cluster}/{self.generation}/")
                                           or name == f"/swarmstack/{self.cluster}/init"):
                return next((m for m in self.members if m.instance_id in value), None)
        return None

    def state(self) -> dict[str, str]:
        """The node-written parameters (init marker, tokens, managers, ...), TLS excluded."""
        assert self.cloud is not None
        return {k: v for k, v in self.cloud.parameters(self.state_prefix()).items() if "/tls/" not in k}

    def tokens(self) -> dict[str, str]:
        """The stored join tokens by role (whatever the generation prefix)."""
        found: dict[str, dict[str, str]] = {"manager": {}, "worker": {}}
        for name, value in self.state().items():
            for role in found:
                if name.endswith(f"/tokens/{role}"):
                    found[role][name] = value.strip()
        out = {}
        current = f"/swarmstack/{self.cluster}/{self.generation}/"
        for role, values in found.items():
            mine = [v for name, v in values.items() if name.startswith(current)]
            if mine:
                out[role] = mine[0]
            elif len(values) == 1:  # state not scoped to a generation
                out[role] = next(iter(values.values()))
        return out

    def swarm_inits(self) -> list[str]:
        """Every `initialised the swarm` line in the bootstrap logs (a re-init is a split brain)."""
        lines = []
        for member in self.members:
            lines += [f"{member.name}: {line}" for line in member.bootstrap_log().splitlines()
                      if "initialised the swarm" in line]
        return lines

    def lifecycle(self) -> list[dict[str, Any]]:
        assert self.cloud is not None
        return self.cloud.lifecycle_events()

    def health(self, member: Member) -> str:
        assert self.cloud is not None
        found = self.cloud.aws("autoscaling", "describe_auto_scaling_instances", InstanceIds=[member.instance_id])
        rows = found["AutoScalingInstances"]
        return f"{rows[0]['LifecycleState']}/{rows[0]['HealthStatus']}" if rows else "gone"

    def note(self, what: str) -> None:
        self.events.append((time.monotonic(), what))

    def diagnostics(self, members: list[Member] | None = None) -> str:
        parts = []
        for member in members or self.members:
            try:
                parts.append(member.diagnostics())
            except Exception as err:
                parts.append(f"== {member.name}: no diagnostics ({err})\n")
        with contextlib.suppress(Exception):
            parts.append("== lifecycle: " + json.dumps(self.lifecycle()[-20:]))
        with contextlib.suppress(Exception):
            parts.append("== state: " + json.dumps(sorted(self.state())))
        return "\n".join(parts)

    # --- teardown ---

    def close(self) -> None:
        self._stop.set()
        if self._monitor is not None:
            self._monitor.join(timeout=10)
        members = list(self.members)
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            for future in [pool.submit(m.machine.power_off) for m in members if m.machine.running]:
                with contextlib.suppress(NodeError):
                    future.result()
        for member in members:
            with contextlib.suppress(Exception):
                member.machine.close()
        if self.cloud is not None:
            self.cloud.close()
        self.procs.stop_all()
        kill_tree([p.pid for p in self.procs.started if p.poll() is None])
        if self.net is not None:
            self.net.close()
        mounted = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
        for point in sorted((p for p in mounted if p.startswith(str(self.tmp) + "/")), key=len, reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True)
        if os.environ.get("SWARMSTACK_TEST_KEEP"):
            for member in members:
                shutil.rmtree(member.machine.docker_dir, ignore_errors=True)
                shutil.rmtree(member.machine.upper / "var/lib/docker", ignore_errors=True)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
