"""How long `swarmstack plan` takes and how much memory it needs, against the floor.

Prints medians over several fresh processes of:
- floor: a process that only imports the same SDK modules (the pulumi-aws modules the
  program uses, tls, random, policy) and starts the same moto services (the part no
  change to swarmstack can remove), and ends as `swarmstack` does, without the
  interpreter's teardown of those modules (1.5 to 2 s that the command skips, so the
  floor skips it too), with the command's garbage-collector thresholds;
- `swarmstack plan prod-aws` (with the policy pack);
- the same for a large stack: 7 managers and 10 worker pools (the program's own work
  must stay small as the cluster grows).

The cases take turns within each round (floor, prod-aws, large), so that a change in the
machine's load falls on all of them alike: run one case after the other, the ratio moved
between 1.28x and 1.53x on this 2-core machine from one run to the next.

The warm-up run, not counted, writes the bytecode of swarmstack's own modules, as a user's
first run does wherever Python writes bytecode (its default), so that the counted runs,
like the floor reading the bytecode pip wrote of the SDK, do not compile. On this machine,
which sets PYTHONDONTWRITEBYTECODE=1 for every process, each plan otherwise compiles
`swarmstack`, `components` and `policies` again: about 0.2 s (`python -X importtime`: 384 ms
of their imports against 168 ms with bytecode).

    .venv/bin/python benchmarks/plan.py [--runs 5]
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable

FLOOR = """
import gc
from swarmstack.cli import GC_THRESHOLDS
gc.set_threshold(*GC_THRESHOLDS)  # as `swarmstack` runs (cli.run): the collector's work on the SDK is floor too
import pulumi, pulumi_tls, pulumi_random, pulumi_policy, jinja2, yaml, pydantic  # noqa: F401
import pulumi_aws
from pulumi_aws import autoscaling, cloudwatch, ec2, iam, kms, lb, s3, scheduler, sns, ssm, vpc  # noqa: F401
# The SDK's modules are lazy: touching a class loads the module, as the program does.
_ = (autoscaling.Group, cloudwatch.LogGroup, ec2.Vpc, iam.Role, kms.Key, lb.LoadBalancer, s3.Bucket,
     sns.Topic, ssm.Parameter, vpc.SecurityGroupIngressRule, scheduler.Schedule, pulumi_tls.PrivateKey,
     pulumi_random.RandomId,
     pulumi_aws.get_availability_zones)
import boto3
from moto import mock_aws
with mock_aws():
    region = "eu-west-1"
    boto3.client("ec2", region_name=region).describe_availability_zones()
    boto3.client("iam", region_name=region).list_roles()
    boto3.client("ssm", region_name=region).describe_parameters()
    boto3.client("autoscaling", region_name=region).describe_auto_scaling_groups()
    boto3.client("elbv2", region_name=region).describe_load_balancers()
    boto3.client("logs", region_name=region).describe_log_groups()
    boto3.client("cloudwatch", region_name=region).describe_alarms()
    boto3.client("kms", region_name=region).list_keys()
    boto3.client("sts", region_name=region).get_caller_identity()
    boto3.client("s3", region_name=region).list_buckets()
    boto3.client("sns", region_name=region).list_topics()
    boto3.client("scheduler", region_name=region).list_schedules()
import os
os._exit(0)  # as `swarmstack` ends (cli.run): the interpreter's teardown is no floor
"""


def measure(argv: list[str], cwd: Path, write_bytecode: bool = False) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one fresh process. Bytecode is read where it was
    written; it is written only when `write_bytecode` (the warm-up)."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env={**os.environ, "PYTHONDONTWRITEBYTECODE": "" if write_bytecode else "1",
                                    # this checkout's swarmstack, also for the large stack's folder
                                    # (else an installed copy, from another checkout, would run)
                                    "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                                                 os.environ.get("PYTHONPATH")]))})
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {process.stderr.read().decode() if process.stderr else ''}")
    return elapsed, usage.ru_maxrss / 1024


def large_project() -> Path:
    """A temporary project with one extra stack: 7 managers, 10 pools of 100 workers."""
    folder = Path(tempfile.mkdtemp(prefix="swarmstack-bench-"))
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, folder / name)
    (folder / "stacks").mkdir()
    document = yaml.safe_load((ROOT / "stacks" / "Pulumi.prod-aws.yaml").read_text())
    cluster = copy.deepcopy(document["config"]["swarmstack:cluster"])
    cluster["managers"]["count"] = 7
    cluster["workers"] = [
        {"name": f"pool{i}", "count": 100, "instanceType": ["m6i.large", "m5.large"] if i % 2 else "m6i.large",
         "spot": bool(i % 2), "labels": {"pool": str(i)}}
        for i in range(10)
    ]
    document["config"]["swarmstack:cluster"] = cluster
    (folder / "stacks" / "Pulumi.large-aws.yaml").write_text(yaml.safe_dump(document))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    large = large_project()
    cli = [PYTHON, "-m", "swarmstack.cli", "plan"]
    floor, prod, big = ("floor (imports + moto services)", "swarmstack plan prod-aws",
                        "swarmstack plan large-aws (7 managers, 10 pools)")
    cases = {floor: ([PYTHON, "-c", FLOOR], ROOT), prod: ([*cli, "prod-aws"], ROOT), big: ([*cli, "large-aws"], large)}
    for argv, cwd in cases.values():
        # not counted: warms the page cache, and compiles swarmstack's own modules once as
        # any first run does where Python writes bytecode (its default; pip compiled the
        # floor's packages when it installed them)
        measure(argv, cwd, write_bytecode=True)
    samples: dict[str, list[tuple[float, float]]] = {label: [] for label in cases}
    for _ in range(runs):
        for label, (argv, cwd) in cases.items():
            samples[label].append(measure(argv, cwd))
    results = {label: (statistics.median(s[0] for s in taken), statistics.median(s[1] for s in taken))
               for label, taken in samples.items()}
    shutil.rmtree(large)
    floor_time = results[floor][0]
    print(f"median of {runs} fresh processes each, the cases taking turns ({os.cpu_count()} cores)")
    print(f"{'case':52s} {'wall s':>8s} {'x floor':>8s} {'peak MiB':>9s}")
    for label, (seconds, mib) in results.items():
        print(f"{label:52s} {seconds:8.2f} {seconds / floor_time:8.2f} {mib:9.0f}")
    print(f"program's own work: prod-aws {results[prod][0] - floor_time:.2f} s, "
          f"large-aws {results[big][0] - floor_time:.2f} s above the floor")
    print(f"large-aws to prod-aws: {results[big][0] / results[prod][0]:.2f}x (asked: 1.3x or less); "
          f"prod-aws to the floor: {results[prod][0] / floor_time:.2f}x (asked: 1.2x or less)")


if __name__ == "__main__":
    main()
