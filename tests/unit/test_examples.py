"""The example stacks (stacks/examples/Pulumi.<name>.yaml) are run by the tests the way a user
runs them: each is valid, builds a graph through the engine as `swarmstack plan examples/<name>`
does (an existing network stood in for, with the file's own ids), passes the policy pack, and
says in its header how to try it and what to replace."""

from __future__ import annotations

from pathlib import Path

import pytest
from shipped import EXAMPLES, graph_of, share_program_runs

from swarmstack.config.load import load_stack, stack_file
from swarmstack.policy import evaluate

ROOT = Path(__file__).resolve().parents[2]


def test_the_examples_are_shipped_and_apart_from_the_stacks() -> None:
    assert {"examples/brownfield-aws", "examples/brownfield-azure", "examples/single-nat-aws"} <= set(EXAMPLES)
    # the stacks' own glob (stacks/Pulumi.*.yaml) does not reach them, and no name is both
    stacks = {p.name for p in (ROOT / "stacks").glob("Pulumi.*.yaml")}
    assert stacks and not stacks & {p.name for p in (ROOT / "stacks" / "examples").glob("Pulumi.*.yaml")}


@pytest.mark.parametrize("example", EXAMPLES)
def test_an_example_is_valid_and_says_how_to_use_it(example: str) -> None:
    name = example.split("/", 1)[1]
    settings = load_stack(example, ROOT)
    assert settings.source == f"stacks/examples/Pulumi.{name}.yaml" and settings.stack == name
    header = stack_file(example, ROOT).read_text().split("\nconfig:", 1)[0]
    assert f"swarmstack plan {example}" in header and "REPLACE" in header


@pytest.mark.parametrize("example", EXAMPLES)
def test_an_example_plans_offline_and_passes_the_policy_pack(example: str) -> None:
    settings = load_stack(example, ROOT)
    graph = graph_of(example)
    assert graph.stack == settings.stack and graph.cloud == settings.cluster.cloud
    assert [f for f in evaluate(graph, None) if f.level == "mandatory"] == []
    existing = settings.cluster.network.existing
    if existing is not None:  # the stand-in carries the file's own ids
        key = "vpcId" if settings.cluster.cloud == "aws" else "vnetId"
        assert graph.outputs[key] == existing.network_id
        subnets = graph.outputs["nodeSubnetIds"]
        assert set(subnets if isinstance(subnets, list) else subnets.values()) == set(existing.private_subnet_ids)


def test_the_brownfield_example_runs_as_a_user_runs_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    from swarmstack.cli import main

    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    monkeypatch.chdir(tmp_path)
    share_program_runs(monkeypatch)  # the plan's run is test_an_example_plans_offline_and_passes_the_policy_pack's
    assert main(["plan", "examples/brownfield-aws"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Plan for stack brownfield-aws (aws, eu-west-1)")
    assert "vpcId: vpc-0a1b2c3d4e5f60718" in out and "\nPolicies: no findings." in out
    assert "`swarmstack cost examples/brownfield-aws` for the items" in out
