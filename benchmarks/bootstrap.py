"""How fast nodes form a swarm, and heal after leader loss, on real engines.

Uses the integration harness (tests/integration/harness.py): real dockerd per
network namespace, moto for SSM/EC2/Auto Scaling, a fake IMDS, and the
`swarmstack-node` script rendered for the `prod-aws` stack. Per run:

- cold start: 3 managers and 2 workers booted at once (configure, dockerd,
  bootstrap) until `docker node ls` shows all Ready, one Leader, two Reachable;
- leader loss: the leader's engine killed (SIGKILL), its instance terminated and
  replaced by the ASG; times to a new leader, and to the replacement Reachable
  with the dead node removed by the managers' clean-up.

Timers run as in production except their period (watch 2 s, clean-up 5 s instead of
10 s and 60 s), so the clean-up figure is a floor of what a node sees with the
default 60 s timer: add up to a minute. Docker for AWS waited on one-minute and
five-minute cron jobs for the same steps.

Run as root:  .venv/bin/python benchmarks/bootstrap.py [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from certs import make_bundle  # noqa: E402
from harness import SUBNET, Harness, missing_requirements  # noqa: E402


def one_run() -> dict[str, float]:
    h = Harness(timer_period=2.0, cleanup_period=5.0)
    try:
        bundle = make_bundle([f"{SUBNET}.{i}" for i in range(10, 60)])
        h.provision(3, {"general": 2}, tls=bundle.ssm_values())
        nodes = h.add_nodes("managers") + h.add_nodes("general")
        start = time.monotonic()
        results = h.boot_all(nodes)
        failed = [name for name, r in results.items() if r.returncode != 0]
        if failed:
            raise RuntimeError(f"bootstrap failed on {failed}")
        h.start_timers()
        h.wait_converged(managers=3, workers=2, timeout=300)
        cold = time.monotonic() - start

        old = h.leader()
        lost = time.monotonic()
        old.stop(graceful=False)
        h.cloud.aws("ec2", "terminate_instances", InstanceIds=[old.instance_id])
        h.cloud.aws("autoscaling", "detach_instances", InstanceIds=[old.instance_id],
                    AutoScalingGroupName=old.group, ShouldDecrementDesiredCapacity=False)
        replacement = h.add_node("managers", h.wait_new_instance("managers"))
        import threading

        booted: list[int] = []
        boot = threading.Thread(target=lambda: booted.append(replacement.boot().returncode))
        boot.start()
        new_leader = None
        while new_leader is None:
            rows = h.view()
            if rows and any(r["manager"] == "Leader" and r["host"] != old.name for r in rows):
                new_leader = time.monotonic() - lost
            elif time.monotonic() - lost > 300:
                raise RuntimeError("no new leader in 300 s")
            else:
                time.sleep(0.2)
        boot.join()
        if booted != [0]:
            raise RuntimeError("the replacement's bootstrap failed")
        h.wait_converged(managers=3, workers=2, timeout=300)
        healed = time.monotonic() - lost
        return {"cold start to converged swarm": cold, "leader loss to new leader": new_leader,
                "leader loss to replacement joined and dead node removed": healed}
    finally:
        h.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs to take the median of (default 3)")
    args = parser.parse_args()
    reason = missing_requirements()
    if reason:
        sys.exit(f"cannot run the bootstrap benchmark: {reason}")
    runs = []
    for index in range(args.runs):
        figures = one_run()
        runs.append(figures)
        print(f"run {index + 1}: " + ", ".join(f"{k} {v:.1f} s" for k, v in figures.items()), flush=True)
    print(f"median of {args.runs} runs (3 managers, 2 workers, real dockerd, moto, harness timers 2 s / 5 s):")
    for key in runs[0]:
        print(f"  {key:<58} {statistics.median(r[key] for r in runs):7.1f} s")


if __name__ == "__main__":
    main()
