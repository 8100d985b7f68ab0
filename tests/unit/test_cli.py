"""The offline toolkit as a user runs it: `swarmstack validate` and `swarmstack plan`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from shipped import program_runs_shared  # noqa: F401 (an autouse fixture: the CLI's runs shared)

from swarmstack.cli import EXIT_CONFIG, main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the project's program and stacks, as the working directory."""
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_validate_a_good_stack(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "prod-aws"]) == 0
    assert capsys.readouterr().out == (
        "stacks/Pulumi.prod-aws.yaml: valid (aws in eu-west-1: 3 managers, 5 workers in 2 pools)\n")


def test_validate_a_bad_stack_prints_each_problem_and_exits_2(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = project / "stacks" / "Pulumi.prod-aws.yaml"
    document = yaml.safe_load(path.read_text())
    document["config"]["swarmstack:cluster"]["managers"]["count"] = 4
    document["config"]["swarmstack:cluster"]["loadBalancer"]["ports"].append({"port": 2375})
    path.write_text(yaml.safe_dump(document))
    assert main(["validate", "prod-aws"]) == EXIT_CONFIG
    assert capsys.readouterr().err.splitlines() == [
        "stacks/Pulumi.prod-aws.yaml: swarmstack:cluster.managers.count = 4: must be 1, 3, 5 or 7 "
        "(an odd count keeps a raft quorum)",
        "stacks/Pulumi.prod-aws.yaml: swarmstack:cluster.loadBalancer.ports[2].port = 2375: "
        "is the plaintext Docker API; publish services on another port",
    ]


def test_plan_refuses_bad_config_before_anything_runs(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = project / "stacks" / "Pulumi.dev-aws.yaml"
    document = yaml.safe_load(path.read_text())
    document["config"]["swarmstack:cluster"]["loadBalancer"]["ports"] = [{"port": 4789, "protocol": "udp"}]
    path.write_text(yaml.safe_dump(document))
    assert main(["plan", "dev-aws"]) == EXIT_CONFIG
    assert capsys.readouterr().err.strip() == (
        "stacks/Pulumi.dev-aws.yaml: swarmstack:cluster.loadBalancer.ports[0].port = 4789: "
        "is the swarm overlay (VXLAN); publish services on another port")


def test_validate_an_unknown_stack(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "staging"]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert err.startswith("stacks/Pulumi.staging.yaml: swarmstack:cluster = (missing): no such stack file; "
                          "stacks here: dev-aws, dev-azure, prod-aws, prod-azure")


def test_plan_json_is_the_whole_graph(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["plan", "dev-aws", "--json", "--no-policy"])
    document = json.loads(capsys.readouterr().out)
    assert code == 0
    assert document["stack"] == "dev-aws" and document["cloud"] == "aws"
    types = {r["type"] for r in document["resources"]}
    assert {"swarmstack:aws:Cluster", "swarmstack:aws:Network", "aws:ec2/vpc:Vpc"} <= types
    vpc = next(r for r in document["resources"] if r["type"] == "aws:ec2/vpc:Vpc")
    assert vpc["inputs"]["cidrBlock"] == "10.30.0.0/20" and vpc["id"].startswith("vpc-")
    assert document["summary"]["resources"] == sum(1 for r in document["resources"] if r["custom"])
    assert document["outputs"]["vpcId"] == vpc["id"]
    # the dependency graph, as the program hands it to the Pulumi engine
    subnet = next(r for r in document["resources"] if r["type"] == "aws:ec2/subnet:Subnet")
    assert vpc["urn"] in subnet["dependencies"]
    assert subnet["propertyDependencies"]["vpcId"] == [vpc["urn"]]
    group = next(r for r in document["resources"] if r["type"] == "aws:autoscaling/group:Group")
    assert "customTimeouts" in group


def test_plan_text_shows_the_tree_outputs_and_summary(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "dev-aws", "--no-policy"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Plan for stack dev-aws (aws, eu-west-1): offline, through the engine\n")
    assert "└─ aws.Cluster dev" in out
    assert "ec2.Vpc dev-vpc  cidrBlock=10.30.0.0/20" in out
    assert "\nOutputs:\n" in out and "\nSummary: " in out


def test_plan_prod_aws_passes_the_policy_pack(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "prod-aws"]) == 0
    out = capsys.readouterr().out
    policies = out[out.index("\nPolicies: "):]
    assert policies.startswith("\nPolicies: no findings.") or policies.startswith("\nPolicies: 0 mandatory")


def test_a_bad_policy_config_is_refused_with_its_file(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "policy.json").write_text('{"no-such-rule": "mandatory"}')
    assert main(["plan", "dev-aws", "--policy-config", "policy.json"]) == EXIT_CONFIG
    assert capsys.readouterr().err.startswith("policy.json: policy config: no-such-rule: no such rule in the pack")


def test_plan_in_preview_mode_has_no_mandatory_finding(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "dev-aws", "--preview", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert all(f["level"] != "mandatory" for f in document["findings"])


def test_the_command_as_installed_prints_everything_and_keeps_its_exit_code(project: Path) -> None:
    """`swarmstack` ends with os._exit (cli.run: no interpreter teardown after the work): the
    whole JSON plan still reaches a pipe, a config error still exits 2, and a reader that
    goes away after one line gets no traceback."""
    command = [sys.executable, "-c", "import sys; from swarmstack.cli import run; sys.argv[0] = 'swarmstack'; run()"]
    # stdout into a pipe is block-buffered (unless PYTHONUNBUFFERED): what run() must flush
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}, "PYTHONPATH": str(ROOT)}
    planned = subprocess.run([*command, "plan", "dev-aws", "--json", "--no-policy"], cwd=project, env=env,
                             capture_output=True, text=True, timeout=300)
    assert planned.returncode == 0, planned.stderr
    document = json.loads(planned.stdout)  # a cut document does not parse
    assert planned.stdout.endswith("}\n"), planned.stdout[-200:]  # nor is print's last write lost
    assert len(planned.stdout) > 50_000 and document["resources"]
    path = project / "stacks" / "Pulumi.dev-aws.yaml"
    broken = yaml.safe_load(path.read_text())
    broken["config"]["swarmstack:cluster"]["managers"]["count"] = 4
    path.write_text(yaml.safe_dump(broken))
    refused = subprocess.run([*command, "validate", "dev-aws"], cwd=project, env=env, capture_output=True,
                             text=True, timeout=300)
    assert refused.returncode == EXIT_CONFIG and "managers.count" in refused.stderr, refused.stderr
    reader = subprocess.Popen([*command, "validate", "prod-aws"], cwd=project, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    assert reader.stdout is not None and reader.stderr is not None
    reader.stdout.close()  # gone before the command prints
    _, err = reader.communicate(timeout=300)
    assert b"Traceback" not in err, err.decode()
    assert reader.returncode == 141  # as a shell reports SIGPIPE; 1 would read as a policy violation
