"""docs/outputs.md is generated from the declared stack outputs (swarmstack/config/outputs.py),
and the declaration is what the program really exports: for every shipped and example stack, the graph's
output names are exactly the ones declared for its cloud and config, and so are its secrets."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from shipped import EXAMPLES, STACKS, graph_of, stack_config

from swarmstack.config.load import validate
from swarmstack.config.outputs import CLOUDS, OUTPUTS, documented, reference

DOC = Path(__file__).resolve().parents[2] / "docs" / "outputs.md"


def test_docs_outputs_md_is_what_the_declaration_generates() -> None:
    assert DOC.read_text() == reference(), (
        "docs/outputs.md is stale: run `.venv/bin/python -m swarmstack.config.outputs > docs/outputs.md`")


def test_each_output_is_declared_once_a_cloud_and_says_what_it_is() -> None:
    for cloud in CLOUDS:
        names = [o.name for o in OUTPUTS if cloud in o.clouds]
        assert len(names) == len(set(names)), cloud
    assert all(o.description and set(o.clouds) <= set(CLOUDS) for o in OUTPUTS)


@pytest.mark.parametrize("stack", STACKS + EXAMPLES)
def test_a_stack_exports_exactly_the_documented_outputs(stack: str) -> None:
    config = stack_config(stack)
    cluster = validate(stack, stack, config).cluster
    graph = graph_of(stack, config)
    expected = documented(cluster)
    assert sorted(graph.outputs) == sorted(expected), (
        f"{stack}: exported but not in swarmstack/config/outputs.py: {sorted(set(graph.outputs) - set(expected))}; "
        f"declared but not exported: {sorted(set(expected) - set(graph.outputs))}")
    assert graph.secret_outputs == {name for name, o in expected.items() if o.secret}


FEATURES = {"registry": {"enabled": True, "repositories": ["app"]}, "sharedVolumes": {"enabled": True},
            "metrics": {"enabled": True}}


@pytest.mark.parametrize("stack", ["prod-aws", "prod-azure"])
def test_the_opt_in_features_export_exactly_their_documented_outputs(stack: str) -> None:
    config = stack_config(stack)
    config["swarmstack:cluster"].update(copy.deepcopy(FEATURES))
    cluster = validate(stack, stack, config).cluster
    graph = graph_of(stack, config)
    expected = documented(cluster)
    assert {"registry", "registryRepositories", "sharedVolumes"} <= set(expected)
    assert sorted(graph.outputs) == sorted(expected)
