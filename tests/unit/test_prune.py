"""The scheduled prune, run for real through bash against a recording `docker`: a
manager never prunes networks (stacks' `external: true` overlay networks must survive
while no task uses them), a worker prunes its local ones, and everything else
`docker system prune --all` removed is still pruned on both."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from components.aws.maintenance import prune_script
from components.common.prune import prune_commands

FAKE_DOCKER = """#!/bin/bash
echo "$*" >> "$DOCKER_CALLS"
if [ "$1" = info ]; then
  [ "$FAKE_ROLE" = manager ] && echo true || echo false
fi
"""
# The association script ships its output with the AWS CLI: a stand-in records the call, so
# that the test never waits on a real CLI looking for credentials and endpoints.
FAKE_AWS = """#!/bin/bash
echo "$*" >> "$AWS_CALLS"
"""


def run_prune(tmp_path: Path, role: str, commands: list[str]) -> list[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(0o755)
    aws = bin_dir / "aws"
    aws.write_text(FAKE_AWS)
    aws.chmod(0o755)
    calls = tmp_path / f"calls-{role}"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "DOCKER_CALLS": str(calls), "FAKE_ROLE": role,
           "AWS_CALLS": str(tmp_path / f"aws-{role}")}
    for command in commands:  # as the node script runs them: `bash -c "$command"`, each must succeed
        subprocess.run(["bash", "-c", command], env=env, check=True)
    return [line for line in calls.read_text().splitlines() if not line.startswith("info")]


@pytest.mark.parametrize("volumes", [False, True])
def test_a_manager_never_prunes_networks(tmp_path: Path, volumes: bool) -> None:
    calls = run_prune(tmp_path, "manager", prune_commands("24h", volumes))
    assert not [c for c in calls if c.startswith(("network", "system"))], calls
    assert calls == ["container prune --force --filter until=24h", "image prune --all --force --filter until=24h",
                     "builder prune --all --force --filter until=24h",
                     *(["volume prune --all --force"] if volumes else [])]


def test_a_worker_prunes_its_local_networks_too(tmp_path: Path) -> None:
    calls = run_prune(tmp_path, "worker", prune_commands("90m", False))
    assert calls == ["container prune --force --filter until=90m", "image prune --all --force --filter until=90m",
                     "builder prune --all --force --filter until=90m", "network prune --force --filter until=90m"]


@pytest.mark.parametrize("role", ["manager", "worker"])
def test_the_aws_association_script_spares_a_managers_networks(tmp_path: Path, role: str) -> None:
    script = tmp_path / "prune.sh"
    script.write_text(prune_script("24h", False, "/swarmstack/prod/prune", "eu-west-1"))
    calls = run_prune(tmp_path, role, [f"bash {script}"])
    assert ("network prune --force --filter until=24h" in calls) is (role == "worker")
    assert not [c for c in calls if c.startswith("system")]
    assert "image prune --all --force --filter until=24h" in calls
    shipped = (tmp_path / f"aws-{role}").read_text().splitlines()
    assert [line.split()[:2] for line in shipped] == [["logs", "create-log-stream"], ["logs", "put-log-events"]]
    assert all("--log-group-name /swarmstack/prod/prune" in line for line in shipped)
