"""How fast nodes form a swarm, heal after losing the leader, and drain, on real engines,
beside the raw floor measured in the same run.

Uses the integration harness (tests/integration/harness.py): real dockerd per network
namespace, moto for SSM/EC2/Auto Scaling, a fake IMDS, and the `swarmstack-node` script
rendered for the `prod-aws` stack. Each run, on the same 3 manager and 2 worker
namespaces:

- floor: the engines started bare, `docker swarm init` on one manager, the other four
  joined with the tokens handed over directly, until `docker node ls` shows all Ready,
  one Leader and two Reachable. No store, no election, no cloud: what no bootstrap can beat.
- cold start, formed: the same namespaces wiped, then all five booted at once as cloud-init
  and systemd would (configure, dockerd, bootstrap) until the same swarm shows (the floor's
  end state, timed the same way).
- cold start, converged: until every node's bootstrap has also finished what follows its
  join (the launch lifecycle action completed, the manager list, the log shipped).
- leader loss: the leader's engine killed (SIGKILL), its instance terminated and replaced
  by the group; times to a new leader and until `docker node ls` shows the replacement
  Ready and Reachable and the dead node removed by the managers (timed as the cold start's
  formed swarm, where the other nodes may still read Unknown while swarmkit's new leader
  registers them again; the replacement's bootstrap must then also succeed), and until
  every node reads Ready again.
- leader termination notice (scale-in, instance refresh): the leader's instance set to
  Terminating:Wait and its notice given, the replacement booted once moto launches it; times to
  a new leader (the leader demotes itself: raft hands leadership over), to the old
  leader's lifecycle action completed, and until `docker node ls` shows the replacement
  Ready and Reachable and the old node removed (timed as above).
- drain: a worker's instance set to Terminating:Wait and its notice given; time until
  its lifecycle action is completed (the group may terminate it).

`--production-timers` runs the watch and clean-up timers at the periods the stack
deploys (read from the rendered user data parameters); without it they run at 2 s and 5 s.

Run as root:  .venv/bin/python benchmarks/bootstrap.py [--runs 3] [--production-timers]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import shutil
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from certs import make_bundle  # noqa: E402
from harness import SUBNET, Harness, Node, missing_requirements  # noqa: E402

FLOOR = "floor: bare engines, init and joins"
FORMED = "cold start to formed swarm (the floor's end state)"
COLD = "cold start to converged swarm"
LEADER = "leader loss to new leader"
HEALED = "leader loss to replacement joined and dead node removed"
SETTLED = "leader loss to every node Ready again (swarmkit)"
NOTICE_LEADER = "leader's termination notice to new leader"
NOTICE_LEFT = "leader's termination notice to its lifecycle action"
NOTICE_HEALED = "leader's notice to replacement joined and old node removed"
DRAINED = "drain notice to lifecycle action completed"


def production_periods() -> tuple[float, float]:
    """The watch and clean-up timer periods the prod-aws stack deploys."""
    import userdata
    from swarmstack.config.load import load_stack

    stack = load_stack("prod-aws", root=ROOT)
    params = userdata.params_for(stack.cluster, stack.region, "manager", "managers", "0a1b2c3d",
                                 "arn:aws:kms:eu-west-1:123456789012:key/x")
    return float(params.watch_interval_seconds), float(params.cleanup_interval_seconds)


def wipe(nodes: list[Node]) -> None:
    """Engines stopped and every trace of the floor's swarm gone: the namespaces stay."""
    for node in nodes:
        node.stop(graceful=False)
        for name in ("data", "exec", "run", "state", "tls"):
            shutil.rmtree(node.dir / name, ignore_errors=True)
        (node.dir / "state").mkdir()
        for name in ("daemon.json", "docker.pid", "docker-api.conf"):
            (node.dir / name).unlink(missing_ok=True)
        node.dockerd = None
        node.alive = True


VIEW_TIMEOUT = 1.0
"""Seconds a sample's `docker node ls` may take on one manager before the next is asked. A
follower whose leader just died hangs until raft elects; with the harness's 15 s a sample
taken then came back up to 15 s late, and the heal read up to that much longer than it was
(the nodes' logs showed the dead node removed and the replacement in 11 s, the figure 17.6 s).
An answer takes about 0.1 s on this machine when the swarm has a leader."""


Rows = list[dict[str, str]]


class Sampler:
    """One thread that runs `docker node ls` every 0.1 s and records, for each named
    condition on the rows, how long after `start` a sample first met it (one poller for all
    of a phase's figures: each sample starts a docker CLI on the same 2 cores)."""

    def __init__(self, h: Harness, conditions: dict[str, Callable[[Rows], bool]]) -> None:
        self.h, self.conditions = h, conditions
        self.start = time.monotonic()
        self.seconds: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set() and len(self.seconds) < len(self.conditions):
            rows = self.h.view(VIEW_TIMEOUT)
            now = time.monotonic() - self.start
            for name, condition in self.conditions.items():
                if name not in self.seconds and rows is not None and condition(rows):
                    self.seconds[name] = now
            time.sleep(0.1)

    def wait(self, timeout: float = 300) -> dict[str, float]:
        self._thread.join(timeout)
        self._stop.set()
        missing = set(self.conditions) - set(self.seconds)
        if missing:
            raise RuntimeError(f"not reached in {timeout} s: {sorted(missing)}")
        return self.seconds


def formed(h: Harness, managers: int, workers: int, survivors: frozenset[str] = frozenset()) -> Callable[[Rows], bool]:
    """The whole healthy swarm (all Ready, one Leader, the other managers Reachable).

    `survivors`: nodes that were in the swarm before a leader was lost, for which "Unknown"
    counts as Ready. A new leader's dispatcher lists every node Unknown until its agent
    registers again, itself included (about 3 s in the logs of one run, after the dead node
    was removed and the replacement was Ready): swarmkit's own settling after any election,
    which no bootstrap takes part in; the heal is the replacement Ready and the dead node
    removed, and the settling is timed on its own line."""

    def met(rows: Rows) -> bool:
        rows = [{**row, "status": "Ready"} if row["host"] in survivors and row["status"] == "Unknown" else row
                for row in rows]
        return h.converged(rows, managers, workers) is None

    return met


def floor(h: Harness, nodes: list[Node]) -> float:
    """Bare engines: start, init, join, all Ready."""
    for node in nodes:
        shutil.copy(node.dir / "daemon.base.json", node.dir / "daemon.json")
    managers = [n for n in nodes if n.role == "manager"]
    sampler = Sampler(h, {FLOOR: formed(h, len(managers), len(nodes) - len(managers))})
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        list(pool.map(lambda n: n.start_engine(image=False), nodes))
    first = managers[0]
    first.docker("swarm", "init", "--advertise-addr", first.ip, "--listen-addr", f"{first.ip}:2377")
    tokens = {role: first.docker("swarm", "join-token", "-q", role).strip() for role in ("manager", "worker")}

    def join(node: Node) -> None:
        node.docker("swarm", "join", "--token", tokens[node.role], "--advertise-addr", node.ip,
                    "--listen-addr", f"{node.ip}:2377", f"{first.ip}:2377", timeout=120)

    with concurrent.futures.ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        list(pool.map(join, [n for n in nodes if n is not first]))
    return sampler.wait()[FLOOR]


def planned_leader_loss(h: Harness) -> dict[str, float]:
    """The leader told it is going, as the group does on scale-in or instance refresh: its
    instance Terminating:Wait and its notice in the metadata; the group's replacement
    booted as soon as moto launches it (once the old instance is terminated). The old node
    leaves by itself (drain, demote, leave, lifecycle action); the sampler sees the new
    leader and the healed swarm of the live nodes, the old one counted out once its
    instance is terminated."""
    old = h.leader()
    noticed = time.monotonic()
    survivors = frozenset(n.name for n in h.live() if n is not old)
    h.cloud.aws("autoscaling", "terminate_instance_in_auto_scaling_group", InstanceId=old.instance_id,
                ShouldDecrementDesiredCapacity=False)
    old.set_lifecycle("Terminated")
    sampler = Sampler(h, {
        NOTICE_LEADER: lambda rows: any(r["manager"] == "Leader" and r["host"] != old.name for r in rows),
        NOTICE_HEALED: lambda rows: not old.alive and formed(h, 3, 2, survivors)(rows)})
    while h.cloud.instance_state(old.instance_id) != "terminated":
        if time.monotonic() - noticed > 300:
            raise RuntimeError("the old leader's lifecycle action was not completed in 300 s")
        time.sleep(0.2)
    figures = {NOTICE_LEFT: time.monotonic() - noticed}
    old.stop()  # the instance is gone
    # moto launches the replacement once the old instance is terminated
    figures.update(boot_replacement(h, sampler, noticed, timeout=120))
    return figures


def boot_replacement(h: Harness, sampler: Sampler, since: float, timeout: float = 30) -> dict[str, float]:
    """The managers group's new instance booted while `sampler` waits for its figures,
    each counted from `since`; the replacement's bootstrap must succeed."""
    replacement = h.add_node("managers", h.wait_new_instance("managers", timeout=timeout))
    booted: list[int] = []
    boot = threading.Thread(target=lambda: booted.append(replacement.boot(image=False).returncode))
    boot.start()
    figures = {name: seconds + (sampler.start - since) for name, seconds in sampler.wait().items()}
    boot.join()
    if booted != [0]:
        raise RuntimeError("the replacement's bootstrap failed")
    return figures


def one_run(watch: float, cleanup: float) -> dict[str, float]:
    h = Harness(timer_period=watch, cleanup_period=cleanup)
    try:
        bundle = make_bundle([f"{SUBNET}.{i}" for i in range(10, 60)])
        h.provision(3, {"general": 2}, tls=bundle.ssm_values())
        nodes = h.add_nodes("managers") + h.add_nodes("general")
        figures = {FLOOR: floor(h, nodes)}
        wipe(nodes)

        cold = Sampler(h, {FORMED: formed(h, 3, 2)})
        start = cold.start
        results = h.boot_all(nodes, image=False)
        failed = [name for name, r in results.items() if r.returncode != 0]
        if failed:
            raise RuntimeError(f"bootstrap failed on {failed}: " + results[failed[0]].stderr[-800:])
        h.start_timers()
        h.wait_converged(managers=3, workers=2, timeout=300)
        figures[COLD] = time.monotonic() - start
        figures[FORMED] = cold.wait()[FORMED]

        old = h.leader()
        lost = time.monotonic()
        old.stop(graceful=False)  # out of the live nodes at once: the conditions wait for the new set
        survivors = frozenset(n.name for n in h.live())
        heal = Sampler(h, {
            LEADER: lambda rows: any(r["manager"] == "Leader" and r["host"] != old.name for r in rows),
            HEALED: formed(h, 3, 2, survivors),
            SETTLED: formed(h, 3, 2)})
        h.lose_instance(old)
        figures.update(boot_replacement(h, heal, lost))
        h.wait_converged(managers=3, workers=2, timeout=300)
        figures.update(planned_leader_loss(h))
        h.wait_converged(managers=3, workers=2, timeout=300)

        worker = h.live("worker")[0]
        asked = time.monotonic()
        h.cloud.aws("autoscaling", "terminate_instance_in_auto_scaling_group", InstanceId=worker.instance_id,
                    ShouldDecrementDesiredCapacity=True)
        worker.set_lifecycle("Terminated")
        while h.cloud.instance_state(worker.instance_id) != "terminated":
            if time.monotonic() - asked > 300:
                raise RuntimeError("the drained worker's lifecycle action was not completed in 300 s")
            time.sleep(0.2)
        figures[DRAINED] = time.monotonic() - asked
        return figures
    finally:
        h.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs to take the median of (default 3)")
    parser.add_argument("--production-timers", action="store_true",
                        help="watch and clean-up timers at the periods the stack deploys")
    args = parser.parse_args()
    reason = missing_requirements()
    if reason:
        sys.exit(f"cannot run the bootstrap benchmark: {reason}")
    watch, cleanup = production_periods() if args.production_timers else (2.0, 5.0)
    runs = []
    for index in range(args.runs):
        figures = one_run(watch, cleanup)
        runs.append(figures)
        print(f"run {index + 1}: " + ", ".join(f"{k} {v:.1f} s" for k, v in figures.items()), flush=True)
    timers = "production" if args.production_timers else "shortened"
    print(f"median of {args.runs} runs (3 managers, 2 workers, real dockerd, moto; {timers} timers: "
          f"watch {watch:g} s, clean-up {cleanup:g} s)")
    medians = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    for key in (FLOOR, FORMED, COLD, LEADER, HEALED, SETTLED, NOTICE_LEADER, NOTICE_LEFT, NOTICE_HEALED, DRAINED):
        print(f"{key:<58} {medians[key]:7.1f} s")
    for key in (FORMED, COLD):
        ratio = statistics.median(r[key] / r[FLOOR] for r in runs)
        print(f"ratio of {key} to floor, same run: {ratio:.1f}x (asked: 3x or less)")


if __name__ == "__main__":
    main()
