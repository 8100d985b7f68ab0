"""The pack as a whole: metadata of every rule, the files the CLI reads, `__main__.py`
building the pack without serving it, the docs, and the summary reaching stack rules."""

from __future__ import annotations

import ast
import json
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from policy_testing import graph
from pulumi_policy import EnforcementLevel, ResourceValidationArgs, ResourceValidationPolicy, StackValidationPolicy

from policies.pack import BY_NAME, PACK_NAME, PACK_VERSION, POLICIES, SCANNER_EQUIVALENTS
from swarmstack.engine.run import ROOT
from swarmstack.policy import evaluate, schema_document

PACK = ROOT / "policies"
DOCS = ROOT / "docs" / "policies.md"

REQUIRED = {
    # what the issue asks for, by rule
    "no-plaintext-docker-api", "docker-tls-api-not-public", "docker-tls-api-only-when-enabled",
    "swarm-ports-internal-only", "swarm-ports-from-nodes-only", "esp-between-nodes", "ssh-rdp-not-public",
    "azure-password-auth-disabled", "imdsv2-required", "disks-encrypted", "manager-count-odd",
    "managers-spread-over-zones", "managers-on-demand", "single-manager-not-production", "log-retention-set",
    "log-groups-encrypted", "load-balancer-deletion-protection", "load-balancer-access-logs", "iam-no-wildcards",
    "user-data-no-secrets", "prune-volumes-opt-in", "prune-at-most-hourly",
}


def test_the_pack_has_every_rule_the_issue_asks_for() -> None:
    assert set(BY_NAME) >= REQUIRED
    assert len(BY_NAME) == len(POLICIES)


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
def test_every_rule_is_complete(policy: Any) -> None:
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", policy.name)
    assert policy.description.endswith(".")
    assert policy.enforcement_level in (EnforcementLevel.MANDATORY, EnforcementLevel.ADVISORY)
    assert policy.remediation_steps
    assert isinstance(policy, ResourceValidationPolicy | StackValidationPolicy)
    if policy.config_schema is not None:
        jsonschema.Draft7Validator.check_schema({"type": "object", "properties": policy.config_schema.properties})
        # a rule of the pack the config leaves alone runs on these defaults, unvalidated (swarmstack.policy._normalise)
        defaults = {key: spec["default"] for key, spec in policy.config_schema.properties.items() if "default" in spec}
        assert not list(jsonschema.Draft7Validator(schema_document(policy.config_schema)).iter_errors(defaults))


def test_the_cli_files() -> None:
    manifest = yaml.safe_load((PACK / "PulumiPolicy.yaml").read_text())
    assert manifest["runtime"]["name"] == "python"
    assert manifest["runtime"]["options"]["virtualenv"] == "venv"
    assert "venv/" in (PACK / ".gitignore").read_text()
    assert manifest["version"] == PACK_VERSION
    requirements = (PACK / "requirements.txt").read_text()
    assert "pulumi-policy" in requirements


def test_main_builds_the_list_without_serving() -> None:
    """Importing `__main__.py` (not as the main module) constructs the rules and returns at once."""
    done = subprocess.run([sys.executable, "-c", "import runpy; ns = runpy.run_path('policies/__main__.py', "
                           "run_name='pack'); print(len(ns['POLICIES']))"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(len(POLICIES))


def test_main_hands_every_rule_to_the_policy_pack(monkeypatch: pytest.MonkeyPatch) -> None:
    import pulumi_policy

    built: dict[str, Any] = {}
    monkeypatch.setattr(pulumi_policy, "PolicyPack", lambda **kwargs: built.update(kwargs))
    runpy.run_path(str(PACK), run_name="__main__")  # as `python -m pulumi.policy ENGINE policies` does
    assert built["name"] == PACK_NAME
    assert [p.name for p in built["policies"]] == [p.name for p in POLICIES]
    assert built["enforcement_level"] == EnforcementLevel.ADVISORY


def test_the_example_policy_config_is_valid() -> None:
    config = json.loads((PACK / "policy-config.example.json").read_text())
    assert evaluate(graph(), config) == []


def test_the_docs_list_every_rule_with_its_level_and_scanner_equivalent() -> None:
    text = DOCS.read_text()
    assert set(SCANNER_EQUIVALENTS) == set(BY_NAME)
    for policy in POLICIES:
        row = next((line for line in text.splitlines() if line.startswith(f"| `{policy.name}`")), None)
        assert row is not None, f"docs/policies.md has no row for {policy.name}"
        assert f"| {policy.enforcement_level.value} |" in row, policy.name
        assert SCANNER_EQUIVALENTS[policy.name] in row, policy.name
    assert "pulumi preview --policy-pack policies" in text
    assert "--policy-pack-config policies/policy-config.example.json" in text


def test_the_cluster_registers_its_summary_as_outputs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stack rules see a component's registered outputs, not its inputs (the engine's
    AnalyzeStack reads state outputs). Record what the real Cluster registers."""
    from pulumi.runtime import rpc

    from policies._cluster import SUMMARY_KEYS
    from swarmstack.config.load import read_stack_file
    from swarmstack.engine import run as engine_run

    registered: dict[str, dict[str, Any]] = {}

    class Recording(engine_run.RecordingMonitor):  # type: ignore[misc, name-defined]
        def RegisterResourceOutputs(self, request: Any) -> Any:
            registered[request.urn] = rpc.deserialize_properties(request.outputs)
            return super().RegisterResourceOutputs(request)

    monkeypatch.setattr(engine_run, "RecordingMonitor", Recording)
    _, config = read_stack_file("dev-aws", ROOT)
    engine_run.run_stack("dev-aws", config, ROOT)
    cluster = next(v for urn, v in registered.items() if urn.split("::")[2].split("$")[-1] == "swarmstack:aws:Cluster")
    assert set(SUMMARY_KEYS) <= set(cluster)


def test_the_pack_serves_as_the_cli_runs_it(tmp_path: Path) -> None:
    """Start the pack the way `pulumi-analyzer-policy-python` does (`python -m pulumi.policy
    ENGINE PROGRAM_DIR`), from a copy of the folder outside the repository, ask it what it
    serves over gRPC, and have it analyse one resource."""
    import grpc
    from google.protobuf import empty_pb2, json_format, struct_pb2
    from pulumi.runtime import proto
    from pulumi.runtime.proto import analyzer_pb2_grpc

    shutil.copytree(PACK, tmp_path / "pack", ignore=shutil.ignore_patterns("venv", "__pycache__"))
    server = subprocess.Popen([sys.executable, "-I", "-u", "-m", "pulumi.policy", "127.0.0.1:0", "pack"],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = server.stdout.readline().strip() if server.stdout else ""
        assert port.isdigit(), server.stderr.read() if server.stderr else port
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = analyzer_pb2_grpc.AnalyzerStub(channel)
            info = stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
            assert info.name == PACK_NAME
            served = {p.name: p for p in info.policies}
            assert set(served) == set(BY_NAME)
            assert served["imdsv2-required"].enforcementLevel == proto.MANDATORY
            assert served["log-retention-set"].enforcementLevel == proto.ADVISORY
            assert "maxHopLimit" in served["imdsv2-required"].configSchema.properties
            props = json_format.ParseDict({"securityGroupId": "sg-1", "ipProtocol": "tcp", "fromPort": 2375,
                                           "toPort": 2375, "cidrIpv4": "0.0.0.0/0"}, struct_pb2.Struct())
            result = stub.Analyze(proto.AnalyzeRequest(
                type="aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", properties=props,
                urn="urn:pulumi:dev::swarmstack::aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule::oops",
                name="oops"), timeout=30)
            assert {d.policyName for d in result.diagnostics} == {"no-plaintext-docker-api"}
            assert result.diagnostics[0].message.endswith(
                "ingress allows 2375/tcp from 0.0.0.0/0, which opens the plaintext Docker API (2375/tcp)")
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_pack_needs_only_what_its_requirements_install(tmp_path: Path) -> None:
    """The CLI's virtualenv for the pack has pulumi and pulumi-policy only, and the folder may
    sit anywhere: a copy outside the repository, run in isolated mode (no current directory
    or PYTHONPATH on the path), imports none of the cloud SDKs, the program or the toolkit."""
    shutil.copytree(PACK, tmp_path / "pack", ignore=shutil.ignore_patterns("venv", "__pycache__"))
    script = """
import importlib.abc, sys
BANNED = ("pulumi_aws", "pulumi_azure_native", "pulumi_tls", "pulumi_random", "pydantic", "jinja2",
          "boto3", "moto", "jsonschema", "swarmstack", "components", "userdata", "tests", "policy_testing")
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in BANNED):
            raise ImportError("the policy pack's virtualenv has no " + name)
        return None
sys.meta_path.insert(0, Block())
import runpy
ns = runpy.run_path("pack", run_name="pack")
from policies.maintenance import aws_schedule_runs_per_hour
print(len(ns["POLICIES"]), aws_schedule_runs_per_hour("cron(*/20 * * * ? *)"), sys.modules["policies"].__file__)
"""
    done = subprocess.run([sys.executable, "-I", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    count, runs, where = done.stdout.split()
    assert (count, runs) == (str(len(POLICIES)), "3")
    assert Path(where).resolve() == (tmp_path / "pack" / "__init__.py").resolve()


def test_no_module_of_the_pack_edits_the_import_path_or_imports_outside_it() -> None:
    for module in PACK.glob("*.py"):
        text = module.read_text()
        assert "sys.path" not in text.replace("no `sys.path` edit", ""), module.name
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module != "__future__":
                roots = [str(node.module).split(".")[0]]
            else:
                continue
            assert set(roots) <= ALLOWED_IMPORTS, f"{module.name}: line {node.lineno} imports {roots}"


ALLOWED_IMPORTS = {"base64", "binascii", "collections", "dataclasses", "fnmatch", "functools", "gzip", "importlib",
                   "ipaddress", "json", "pathlib", "pulumi_policy", "re", "sys", "typing", "yaml"}


@pytest.mark.parametrize("policy", [p for p in POLICIES if isinstance(p, ResourceValidationPolicy)],
                         ids=lambda p: p.name)
def test_every_resource_rule_declares_its_resource_types(policy: Any) -> None:
    """The pack filters by the declared types; a rule never sees a resource it does not judge."""
    assert policy.resource_types and all(":" in t for t in policy.resource_types)
    seen: list[str] = []
    probe = ResourceValidationArgs("aws:s3/bucket:Bucket", {}, "urn:x", "x", None, None, {}, {})
    policy.validate(probe, lambda message, urn=None: seen.append(message))
    assert seen == []


def test_no_rule_checks_resource_types_by_hand() -> None:
    for module in PACK.glob("[!_]*.py"):
        text = module.read_text()
        assert not re.search(r"(?m)^\s*if args\.resource_type (not in|!=)", text), module.name


@settings(deadline=None, max_examples=300)
@given(st.lists(st.one_of(
    st.just("*"), st.integers(0, 59).map(str),
    st.tuples(st.integers(0, 59), st.integers(0, 59)).map(lambda t: f"{min(t)}-{max(t)}"),
    st.tuples(st.sampled_from(["*", "0", "5", "10-50"]), st.integers(1, 61)).map(lambda t: f"{t[0]}/{t[1]}")),
    min_size=1, max_size=4).map(",".join))
def test_the_packs_cron_reading_agrees_with_the_toolkits(minute: str) -> None:
    from policies._cron import minute_runs_per_hour
    from swarmstack.config.cron import parse_cron, runs_per_hour

    try:
        expected: int | str = runs_per_hour(parse_cron(f"{minute} * * * *"))
    except ValueError as err:
        expected = str(err)
    try:
        found: int | str = minute_runs_per_hour(minute)
    except ValueError as err:
        found = str(err)
    assert found == expected
