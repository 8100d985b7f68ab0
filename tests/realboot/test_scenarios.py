"""The eight scenarios of issue 9, on nodes that really boot (systemd, cloud-init, the
user data the program renders), against moto, the IMDS and the fault proxy.

Each checks what a user would see (one swarm, the same swarm, hooks completed, the
node healthy or marked unhealthy), never the script's internals; a failure carries
every node's bootstrap log and journal. The time to a converged swarm is recorded.
"""

from __future__ import annotations

import calendar
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

pytestmark = pytest.mark.integration
T = TypeVar("T")
TIMERS = {"watch_interval_seconds": 5, "cleanup_interval_seconds": 15}
"""Shorter periods than production's (10 s, 60 s), through the parameters' own fields."""


def wait_for(what: str, check: Callable[[], T], timeout: float, context: Callable[[], str] = lambda: "",
             every: float = 2.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s\n{context()}")
        time.sleep(every)


def converge(cluster: Any, timing: Any, label: str, timeout: float, since: float | None = None,
             in_service: bool = True) -> float:
    """Until the swarm is every live machine, all Ready, one leader (and, by default, every
    instance InService: its join hook completed); records both times."""
    seconds = float(cluster.wait_converged(timeout=timeout, since=since))
    timing(label, seconds)
    if in_service:
        done = time.monotonic()
        joined_hooks_done(cluster)
        timing(label + ", every instance InService", seconds + time.monotonic() - done)
    return seconds


def joined_hooks_done(cluster: Any, timeout: float = 180) -> None:
    """Every live instance goes InService (its join hook completed with CONTINUE by the
    node, never ended by its heartbeat)."""
    def states() -> dict[str, str]:
        return {m.name: cluster.health(m) for m in cluster.live()}

    wait_for("every live instance InService", lambda: all(s.startswith("InService") for s in states().values()),
             timeout, lambda: f"{states()}\n{cluster.diagnostics()}")
    ids = {m.instance_id for m in cluster.live()}
    timeouts = [e for e in cluster.lifecycle() if e["event"] == "timeout" and e["instance"] in ids]
    assert not timeouts, f"lifecycle actions ended by their heartbeat: {timeouts}\n{cluster.diagnostics()}"


def one_swarm(cluster: Any, members: list[Any] | None = None) -> str:
    """Every live manager (or every manager of `members`) is in one and the same swarm."""
    ids = cluster.swarm_ids()
    if members is not None:
        ids = {name: value for name, value in ids.items() if name in {m.name for m in members}}
    assert len(set(ids.values())) == 1 and "" not in ids.values(), f"swarm ids {ids}\n{cluster.diagnostics()}"
    return str(next(iter(ids.values())))


def tokens_match_swarm(cluster: Any) -> dict[str, str]:
    """The stored join tokens are the swarm's own."""
    leader = cluster.live("manager")[0]
    actual = {role: leader.docker("swarm", "join-token", "-q", role).strip() for role in ("manager", "worker")}
    stored = wait_for("stored tokens equal to the swarm's", lambda: cluster.tokens() == actual and actual,
                      120, lambda: f"stored {cluster.tokens()}, swarm {actual}\n{cluster.diagnostics()}")
    return dict(stored)


# 1 ------------------------------------------------------------------------------------------


def test_nodes_boot_before_tls_parameters_and_permissions_exist(clusters: Any, timing: Any) -> None:
    """Managers boot while the TLS parameters do not exist and the node roles' policies are
    not applied yet (every node call AccessDenied for a minute); the parameters appear
    75 s after boot. The swarm forms with no one touching it."""
    cluster = clusters(overrides=TIMERS)
    cluster.provision(3, {"general": 1})
    started = time.monotonic()
    cluster.faults.add("denied", 60)
    cluster.boot_new()
    # The TLS component finishes 1-2 minutes after the nodes boot: at least 75 s after
    # power-on and 30 s after cloud-init is done everywhere (a slow boot must not let the
    # parameters arrive before the nodes' first attempts).
    publish = max(started + 75, time.monotonic() + 30)
    wait_for("time to publish the TLS parameters", lambda: time.monotonic() >= publish, 120, every=1)
    cluster.put_tls(cluster.tls())
    cluster.note("TLS parameters created")
    denied = [c for c in cluster.faults.calls() if c["fault"] == "denied"]
    assert denied, "the fault proxy refused nothing: the nodes did not call AWS in the first minute"
    converge(cluster, timing, "boot to converged swarm", 480, since=started, in_service=False)
    one_swarm(cluster)
    tokens_match_swarm(cluster)
    joined_hooks_done(cluster)


# 2 ------------------------------------------------------------------------------------------


def test_store_errors_while_a_replacement_manager_boots(clusters: Any, timing: Any) -> None:
    """The swarm's first manager (the one the init marker names) is replaced once the
    marker is older than `stale_marker_seconds`, and the store throttles, fails (5xx) and
    refuses (AccessDenied) the replacement's token reads while it boots: a read error is not
    "never formed", so no second swarm, and the tokens are unchanged."""
    cluster = clusters(overrides={**TIMERS, "stale_marker_seconds": 60})
    cluster.provision(3, tls=cluster.tls())
    cluster.boot_new()
    formed = time.monotonic()
    converge(cluster, timing, "cold start to converged swarm", 300)
    swarm = one_swarm(cluster)
    tokens = tokens_match_swarm(cluster)
    first = cluster.init_owner() or next(m for m in cluster.live("manager") if m.name == cluster.view_leader())
    cluster.terminate(first)
    wait_for(f"{first.name} drained and terminated", lambda: first.gone, 300, cluster.diagnostics)
    cluster.wait_launched("managers", timeout=60)
    wait_for("the init marker older than stale_marker_seconds", lambda: time.monotonic() - formed > 75, 90, every=1)
    source = cluster.next_ip()
    # From power-on, on the replacement's reads of the join tokens (its certificates come
    # through): 45 s of throttling, then 45 s of 5xx, then 45 s of AccessDenied.
    for fault, start in (("throttle", 0), ("error", 45), ("denied", 90)):
        cluster.faults.add(fault, 45, start_in=start, source=source, service="ssm", body="tokens/")
    started = time.monotonic()
    [replacement] = cluster.boot_new("managers")
    assert replacement.ip == source
    converge(cluster, timing, "replacement boot to converged swarm", 360, since=started, in_service=False)
    injected = [c for c in cluster.faults.calls() if c["source"] == source and c["fault"]]
    kinds = sorted({c["fault"] for c in injected})
    assert len(kinds) >= 2, f"the replacement met only {kinds} (its calls: {injected})"
    assert one_swarm(cluster) == swarm, "a second swarm was started\n" + cluster.diagnostics()
    assert cluster.tokens() == tokens, "the stored join tokens changed\n" + cluster.diagnostics()
    joined_hooks_done(cluster)


# 3 ------------------------------------------------------------------------------------------


def test_init_winner_dies_before_storing_tokens(clusters: Any, timing: Any) -> None:
    """The manager that ran `swarm init` cannot store the tokens (refused) and is powered
    off; its instance is terminated (its drain hook times out: it is dead). The cluster
    forms from the others and a replacement."""
    cluster = clusters(overrides={**TIMERS, "stale_marker_seconds": 60})
    cluster.provision(3, {"general": 1}, tls=cluster.tls(), drain_timeout={"manager": 60})
    cluster.faults.add("denied", None, service="ssm", operation="PutParameter", body="tokens/")
    started = time.monotonic()
    cluster.boot_new(wait=False)

    def winner() -> Any:
        for member in cluster.live("manager"):
            info = member.swarm_info()
            if info.get("state") == "active" and info.get("manager") == "true":
                return member
        return None

    dead = wait_for("a manager ran swarm init", winner, 240, cluster.diagnostics)
    dead.machine.power_off()
    cluster.note(f"{dead.name} powered off right after swarm init")
    cluster.faults.clear()
    cluster.terminate(dead)
    for member in cluster.members:
        if member is not dead and member.machine.running:
            member.boot_state = member.boot_state or member.machine.wait_booted()
    wait_for(f"{dead.name}'s instance terminated", lambda: dead.gone, 180, cluster.diagnostics)
    cluster.wait_launched("managers", timeout=60)
    cluster.boot_new("managers")
    converge(cluster, timing, "boot to converged swarm (winner lost)", 480, since=started, in_service=False)
    one_swarm(cluster)
    tokens_match_swarm(cluster)
    joined_hooks_done(cluster)


# 4 ------------------------------------------------------------------------------------------


def test_destroy_completes_every_lifecycle_action(clusters: Any, timing: Any) -> None:
    """`pulumi destroy` sets every group to 0: each node leaves and completes its drain
    hook before the heartbeat (no timeout), the last manager included."""
    cluster = clusters(overrides=TIMERS)
    cluster.provision(3, {"general": 1}, tls=cluster.tls())
    cluster.boot_new()
    converge(cluster, timing, "cold start to converged swarm", 300)
    members = cluster.live()
    started = time.monotonic()
    cluster.destroy()
    left = cluster.wait_terminated(members, timeout=300)
    timing("destroy: all instances terminated", time.monotonic() - started)
    events = cluster.lifecycle()
    drains = {e["instance"]: e for e in events if e["hook"] == "swarmstack-drain" and e["event"] != "wait"}
    problems = [f"{m.name}: {drains.get(m.instance_id, 'never completed')}" for m in members
                if drains.get(m.instance_id, {}).get("event") != "complete"]
    assert not left and not problems, (f"still running: {[m.name for m in left]}; drain hooks not completed by "
                                       f"the node: {problems}\n{cluster.diagnostics(members)}")
    wait_for("every machine shut down", lambda: not any(m.machine.running for m in members), 120)
    stayed = [m.name for m in members if not m.left_swarm()]
    assert not stayed, f"nodes whose disk still holds the swarm (never left): {stayed}\n{cluster.diagnostics()}"


# 5 ------------------------------------------------------------------------------------------


def test_destroyed_and_recreated_stack_forms_a_new_swarm(clusters: Any, timing: Any) -> None:
    """The same stack destroyed and re-created (a new generation; the old deployment's
    node-written state is still in SSM): a new swarm forms."""
    cluster = clusters(overrides=TIMERS)
    cluster.provision(1, {"general": 1}, tls=cluster.tls())
    cluster.boot_new()
    converge(cluster, timing, "first deployment converged", 240)
    first_swarm = one_swarm(cluster)
    first = cluster.live()
    cluster.destroy()
    cluster.wait_terminated(first, timeout=120)
    cluster.delete_groups()
    old_state = cluster.state()
    assert any(name.endswith("/tokens/manager") for name in old_state), f"no old tokens left: {old_state}"
    cluster.recreate()
    cluster.provision(1, {"general": 1}, tls=cluster.tls())
    started = time.monotonic()
    cluster.boot_new()
    converge(cluster, timing, "re-created stack converged", 300, since=started, in_service=False)
    assert one_swarm(cluster) != first_swarm
    tokens_match_swarm(cluster)
    joined_hooks_done(cluster)


# 6 ------------------------------------------------------------------------------------------


def break_dockerd(machine: Any) -> None:
    """A broken image: dockerd exits at once."""
    machine.write("/usr/sbin/dockerd", "#!/bin/sh\necho 'dockerd: this image is broken' >&2\nexit 1\n", 0o755)


def test_refresh_with_a_broken_image_stops_with_quorum_intact(clusters: Any, timing: Any) -> None:
    """An instance refresh of the managers to an image whose dockerd is broken. As AWS
    does it (minimum healthy 100%: launch one, wait until it is InService, then
    terminate an old one): the new manager never completes its join hook, marks itself
    unhealthy within its bound, and the old managers all stay."""
    bound = 90
    cluster = clusters(overrides=TIMERS)
    cluster.provision(3, tls=cluster.tls())
    cluster.boot_new()
    converge(cluster, timing, "cold start to converged swarm", 300)
    swarm = one_swarm(cluster)
    old = cluster.live("manager")
    broken = cluster.image(break_dockerd)
    cluster.new_version("managers", image=broken, converge_deadline_seconds=bound)
    replaced = refresh(cluster, "managers", old, step_timeout=bound + 150)
    new = [m for m in cluster.members if m not in old]
    assert new and all(m.image == broken for m in new), [m.image for m in new]
    health = {m.name: cluster.health(m) for m in new}
    assert not replaced, (f"the refresh went on and terminated {[m.name for m in replaced]} "
                          f"(new: {health})\n{cluster.diagnostics()}")
    events = cluster.lifecycle()
    continued = [e for e in events if e["instance"] in {m.instance_id for m in new}
                 and e["hook"] == "swarmstack-join" and e.get("result") == "CONTINUE"]
    assert not continued, f"a broken node completed its join hook: {continued}"
    unhealthy = [m for m in new if health[m.name].endswith("Unhealthy") or health[m.name] == "gone"
                 or any(e["instance"] == m.instance_id and e["event"] == "complete" and e.get("result") == "ABANDON"
                        for e in events)]
    assert unhealthy, f"the broken manager did not mark itself unhealthy within {bound}s: {health}\n" + \
        cluster.diagnostics(new)
    assert cluster.converged(cluster.view(), old) is None, cluster.diagnostics(old)
    assert one_swarm(cluster, old) == swarm


def refresh(cluster: Any, pool: str, old: list[Any], step_timeout: float) -> list[Any]:
    """An instance refresh, one instance at a time, launch before terminate (minimum
    healthy 100%): the old members it terminated. It stops at the first new instance
    that is not InService within `step_timeout` (AWS: the refresh fails)."""
    terminated = []
    for victim in old:
        cluster.set_capacity(pool, len(old) + 1)
        cluster.wait_launched(pool, timeout=60)
        [new] = cluster.boot_new(pool)
        deadline = time.monotonic() + step_timeout
        while True:
            state = cluster.health(new)
            if state.startswith("InService/Healthy"):
                break
            if state == "gone" or state.endswith("Unhealthy") or time.monotonic() > deadline:
                cluster.note(f"refresh stopped at {new.name}: {state}")
                return terminated
            time.sleep(2)
        cluster.terminate(victim, decrement=True)
        wait_for(f"{victim.name} terminated", lambda v=victim: v.gone, 300, cluster.diagnostics)
        terminated.append(victim)
    return terminated


# 7 ------------------------------------------------------------------------------------------


def test_every_node_rebooted_keeps_the_same_swarm(clusters: Any, timing: Any) -> None:
    """Every node rebooted at once: the same swarm, no re-init, no re-join (same swarm id,
    same node ids), tokens unchanged."""
    cluster = clusters(overrides=TIMERS)
    cluster.provision(3, {"general": 1}, tls=cluster.tls())
    cluster.boot_new()
    converge(cluster, timing, "cold start to converged swarm", 300)
    swarm = one_swarm(cluster)
    nodes = cluster.node_ids()
    tokens = tokens_match_swarm(cluster)
    members = cluster.live()
    started = time.monotonic()
    errors: list[BaseException] = []

    def reboot(member: Any) -> None:
        try:
            member.machine.reboot()
            member.boot_state = member.machine.wait_booted()
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=reboot, args=(m,)) for m in members]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert all(m.machine.boots == 2 for m in members)
    converge(cluster, timing, "reboot of every node to converged swarm", 300, since=started)
    assert one_swarm(cluster) == swarm, "a new swarm after the reboot\n" + cluster.diagnostics()
    after = cluster.node_ids()
    assert after == nodes, f"nodes re-joined (node ids {nodes} -> {after})\n{cluster.diagnostics()}"
    assert cluster.tokens() == tokens, "the stored join tokens changed\n" + cluster.diagnostics()


# 8 ------------------------------------------------------------------------------------------

LOCK_HOLDER = """\
[Unit]
Description=test: hold the dpkg frontend lock for {seconds}s at boot, as unattended-upgrades does
DefaultDependencies=no
After=local-fs.target
Before=cloud-init.service cloud-config.service cloud-final.service

[Service]
Type=exec
ExecStart=/usr/bin/python3 -c 'import fcntl, time; f = open("/var/lib/dpkg/lock-frontend", "w"); \
fcntl.lockf(f, fcntl.LOCK_EX); g = open("/var/lib/dpkg/lock", "w"); fcntl.lockf(g, fcntl.LOCK_EX); \
print("locked", int(time.time()), flush=True); time.sleep({seconds}); print("released", int(time.time()), flush=True)'

[Install]
WantedBy=sysinit.target
"""


def test_package_lock_held_at_first_boot(clusters: Any, timing: Any) -> None:
    """docker.io is not on the image and the dpkg lock is held for two minutes at first
    boot: the install waits for it and succeeds (from the image's local repository)."""
    hold = 120

    def prepare(machine: Any) -> None:
        machine.chroot("dpkg", "--purge", "docker.io")
        machine.write("/etc/systemd/system/hold-dpkg-lock.service", LOCK_HOLDER.format(seconds=hold))
        wants = machine.merged / "etc/systemd/system/sysinit.target.wants"
        wants.mkdir(parents=True, exist_ok=True)
        (wants / "hold-dpkg-lock.service").symlink_to("/etc/systemd/system/hold-dpkg-lock.service")

    cluster = clusters(overrides=TIMERS)
    cluster.provision(1, tls=cluster.tls())
    started = time.monotonic()
    [node] = cluster.boot_new(prepare=prepare, wait=False)
    converge(cluster, timing, "boot (lock held 120 s) to converged swarm", hold + 300, since=started, in_service=False)
    holder = node.machine.exec("journalctl", "--no-pager", "-o", "cat", "-u", "hold-dpkg-lock.service").stdout
    locked = [int(line.split()[1]) for line in holder.splitlines() if line.startswith("locked ")]
    released = [int(line.split()[1]) for line in holder.splitlines() if line.startswith("released ")]
    assert locked and released, f"the lock holder did not hold the lock: {holder}"
    installed = node.machine.exec("dpkg-query", "-W", "-f", "${Status}", "docker.io", check=False).stdout
    assert installed.endswith(" ok installed"), installed + node.diagnostics()
    assert node.machine.exec("systemctl", "is-active", "docker.service", check=False).stdout.strip() == "active"
    dpkg_log = node.machine.read("/var/log/dpkg.log") or ""
    stamps = [calendar.timegm(time.strptime(" ".join(line.split()[:2]), "%Y-%m-%d %H:%M:%S"))
              for line in dpkg_log.splitlines() if " status installed docker.io:" in line]
    assert stamps and max(stamps) >= released[0] - 1, (
        f"docker.io installed at {stamps}, the lock was held {locked[0]}..{released[0]}")
    one_swarm(cluster)
    joined_hooks_done(cluster)


# 9 (issue 11) -------------------------------------------------------------------------------


def test_every_manager_lost_and_the_swarm_restored_from_its_backup(clusters: Any, timing: Any) -> None:
    """The backup timer's command on the manager, then the manager dies (powered off, its
    instance terminated): the group's replacement waits for a manager that never comes back.
    The operator runs `swarmstack-node restore` on it: the swarm comes back with its
    services, secrets and configs, the worker re-joins by itself, and the dead manager's and
    the worker's old node entries are removed."""
    cluster = clusters(overrides={**TIMERS, "converge_interval_seconds": 20})
    bucket = f"swarmstack-{cluster.cluster}-backups-{cluster.generation}"
    assert cluster.cloud is not None
    cluster.cloud.aws("s3", "create_bucket", Bucket=bucket,
                      CreateBucketConfiguration={"LocationConstraint": cluster.region})
    cluster.provision(1, {"general": 1}, tls=cluster.tls(), drain_timeout={"manager": 30},
                      overrides={"managers": {"backup_store": f"s3://{bucket}"}})
    # The restore tool, as the program writes it (components/aws/backup.py): rendered from the
    # managers' parameters, under the cluster key with the bucket key. Not in the user data.
    from userdata.render import restore_tool_key

    tool = cluster.userdata.restore_tool(cluster.params("manager", "managers", backup_store=f"s3://{bucket}"))
    cluster.cloud.aws("s3", "put_object", Bucket=bucket, Key=restore_tool_key(tool), Body=tool.encode(),
                      ContentType="text/x-shellscript", ServerSideEncryption="aws:kms", SSEKMSKeyId=cluster.key_arn,
                      BucketKeyEnabled=True)
    cluster.boot_new()
    converge(cluster, timing, "cold start to converged swarm", 300, in_service=False)
    [manager], [worker] = cluster.live("manager"), cluster.live("worker")
    swarm = one_swarm(cluster)
    manager.docker("secret", "create", "db-password", "/etc/hostname")
    manager.docker("config", "create", "app-config", "/etc/os-release")
    manager.docker("service", "create", "--detach", "--no-resolve-image", "--name", "web", "--replicas", "0",
                   "--secret", "db-password", "--config", "app-config", "nginx:1.27")
    started = time.monotonic()
    manager.machine.exec("systemctl", "start", "swarmstack-backup.service", timeout=300)
    timing("backup (engine stopped, archived, stored)", time.monotonic() - started)
    objects = cluster.cloud.aws("s3", "list_objects_v2", Bucket=bucket, Prefix="swarm/").get("Contents", [])
    assert len(objects) == 1 and objects[0]["Key"].startswith("swarm/"), f"{objects}\n{manager.diagnostics()}"
    head = cluster.cloud.aws("s3", "head_object", Bucket=bucket, Key=objects[0]["Key"])
    assert head.get("ServerSideEncryption") == "aws:kms", head
    cluster.note(f"backup {objects[0]['Key']}: {objects[0]['Size']} bytes")
    print(f"\n[realboot] backup of a 2-node swarm with a service, a secret and a config: {objects[0]['Size']} bytes",
          flush=True)
    assert one_swarm(cluster) == swarm, "the backup's engine restart changed the swarm\n" + cluster.diagnostics()

    manager.machine.power_off()
    cluster.note(f"{manager.name} powered off: every manager lost")
    cluster.terminate(manager)
    wait_for(f"{manager.name}'s instance terminated", lambda: manager.gone, 180, cluster.diagnostics)
    cluster.wait_launched("managers", timeout=60)
    [fresh] = cluster.boot_new("managers")
    wait_for("the fresh manager waiting for a manager", lambda: "waiting for the join tokens and a reachable manager"
             in fresh.bootstrap_log(), 240, lambda: fresh.diagnostics())
    started = time.monotonic()
    restored = fresh.machine.exec("swarmstack-node", "restore", timeout=300, check=False)
    assert restored.returncode == 0, f"{restored.stderr[-3000:]}\n{fresh.diagnostics()}"
    script = fresh.machine.exec("cat", "/usr/local/sbin/swarmstack-node").stdout
    assert "cmd_restore() {" not in script and "cmd_backup() {" not in script  # fetched, as the backup's was
    assert fresh.docker("service", "ls", "--format", "{{.Name}}").split() == ["web"]
    assert fresh.docker("secret", "ls", "--format", "{{.Name}}").split() == ["db-password"]
    assert fresh.docker("config", "ls", "--format", "{{.Name}}").split() == ["app-config"]
    timing("restore on the fresh manager", time.monotonic() - started)

    def back() -> bool:
        rows = fresh.docker("node", "ls", "--format", "{{.Hostname}} {{.Status}}").split("\n")
        return sorted(r for r in rows if r) == sorted([f"{fresh.name} Ready", f"{worker.name} Ready"])

    wait_for("the worker re-joined and the dead nodes removed", back, 240,
             lambda: fresh.docker("node", "ls", check=False) + cluster.diagnostics())
    timing("restore to the worker re-joined and the old entries removed", time.monotonic() - started)
