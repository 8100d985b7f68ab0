"""Graphs of the real program, built once per test run and shared by the tests that only
read them (test_deploy_order, test_policies_stacks, test_tls_rotation_urns,
test_certificate_expiry). A graph takes seconds to build; the same four shipped stacks
used to be built by each of those modules, and again in each xdist worker.

`graph_of(stack, config)` builds `run_stack(stack, config)` (fresh backends with the
stand-ins of an existing network, as `plan` does; `examples/<name>` for an example stack) the first time any worker asks for that stack and config, stores it pickled in the
run's directory (tests/conftest.py names it in $SWARMSTACK_TEST_GRAPHS; the workers inherit
it), and hands every caller its own unpickled copy: a test may change what it gets without
touching another's. A worker that asks while another builds the same graph waits for it
(a lock file per graph). An Azure stack's graph is azure_model_of's run (the same run: one
build serves both).

`azure_model_of(stack, config)` does the same for a run in a fresh Azure model
(`AzureBackend("westeurope")`, fresh TLS and random backends): each caller gets its own copy
of the graph and of the model as the run left it (test_azure_backup, test_azure_metrics,
test_azure_volumes read the model's state after the run). `share_program_runs` hands the
CLI's plan and cost runs (test_cli, test_cost) graph_of's graphs. Tests that read moto's state
after a run, or whose point is a second, independent run, call `run_stack` themselves."""

from __future__ import annotations

import copy
import fcntl
import hashlib
import json
import os
import pickle
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from swarmstack.config.load import EXAMPLES_DIR, STACKS_DIR, read_stack_file, stack_name
from swarmstack.engine.graph import Graph
from swarmstack.engine.run import ROOT, backends_for, run_stack

if TYPE_CHECKING:
    from swarmstack.engine.azure import AzureBackend

STACKS = ("dev-aws", "prod-aws", "dev-azure", "prod-azure")
EXAMPLES = tuple(sorted(f"{EXAMPLES_DIR}/{p.name[len('Pulumi.'):-len('.yaml')]}"
                        for p in (ROOT / STACKS_DIR / EXAMPLES_DIR).glob("Pulumi.*.yaml")))
"""The example stacks, `stacks/examples/Pulumi.<name>.yaml`, as the toolkit names them: `examples/<name>`."""
GRAPHS_DIR = "SWARMSTACK_TEST_GRAPHS"
"""The environment variable naming the directory where one test run keeps its graphs."""

_built: dict[str, bytes] = {}  # this process's graphs, pickled, by key


def stack_config(stack: str) -> dict[str, Any]:
    """A copy of `stacks/Pulumi.<stack>.yaml`'s config (`examples/<name>`: an example's)."""
    return copy.deepcopy(read_stack_file(stack, ROOT)[1])


def graph_of(stack: str, config: dict[str, Any] | None = None) -> Graph:
    """The real program's graph of `stack` with `config` (default: the stack file's), as
    `run_stack` builds it with fresh backends: built once per test run, a copy per call."""
    config = stack_config(stack) if config is None else config
    if _azure_model_run(config):  # the same run as azure_model_of's: one build serves both
        return azure_model_of(stack, config)[0]
    graph = _once("graph", stack, config, lambda: _build(stack, config))
    assert isinstance(graph, Graph)
    return graph


def _azure_model_run(config: dict[str, Any]) -> bool:
    """Whether `_build` of `config` is `_build_azure`'s run: an Azure stack in westeurope with
    no existing network to put in the model first (the AWS model a `_build` adds stays unused:
    the Azure program never calls on it)."""
    cluster = config.get("swarmstack:cluster")
    if not isinstance(cluster, dict) or cluster.get("cloud") != "azure":
        return False
    network = cluster.get("network")
    existing = network.get("existing") if isinstance(network, dict) else None
    return str(config.get("azure-native:location") or "westeurope") == "westeurope" and not existing


def azure_model_of(stack: str, config: dict[str, Any] | None = None) -> tuple[Graph, AzureBackend]:
    """`run_stack(stack, config)` in a fresh Azure model (`AzureBackend("westeurope")`, with
    fresh TLS and random backends), and the model as the run left it: built once per test
    run, a copy of both per call (a caller may change its own copy of the model)."""
    config = stack_config(stack) if config is None else config
    from swarmstack.engine.azure import AzureBackend

    graph, backend = _once("azure-model", stack, config, lambda: _build_azure(stack, config))
    assert isinstance(graph, Graph) and isinstance(backend, AzureBackend)
    return graph, backend


def _once(kind: str, stack: str, config: dict[str, Any], build: Callable[[], bytes]) -> Any:
    # `examples/<name>` and `<name>` are the same Pulumi stack: the same run for the same config
    key = kind + "-" + hashlib.sha256(json.dumps([kind, stack_name(stack), config],
                                                 sort_keys=True).encode()).hexdigest()[:20]
    if key not in _built:
        _built[key] = _shared(stack, key, build)
    return pickle.loads(_built[key])  # our own pickle, written by this run


def share_program_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `swarmstack.engine.run.run_stack` (as the CLI's plan and cost call it: fresh
    backends, the project's program, or a copy of it byte for byte) hand back
    `graph_of(stack, config)`: built once per test run, a copy of its own per call. Any
    other run (given backends, another program) is run as before."""
    import swarmstack.engine.run as run_module

    original = run_module.run_stack
    program = (ROOT / "__main__.py").read_bytes()

    def run(stack: str, config: dict[str, Any], root: Path = ROOT, backends: Any = None) -> Graph:
        main = Path(root) / "__main__.py"
        if backends is None and main.is_file() and main.read_bytes() == program:
            return graph_of(stack, config)
        return original(stack, config, root, backends)

    monkeypatch.setattr(run_module, "run_stack", run)


@pytest.fixture(autouse=True, scope="module")
def program_runs_shared() -> Iterator[None]:
    """`share_program_runs` for a whole test module (import it there: `from shipped import
    program_runs_shared`): the program's plan and cost runs of a stack and config are built
    once per test run; a run of another program is run as before."""
    with pytest.MonkeyPatch.context() as patch:
        share_program_runs(patch)
        yield


def shipped_graph(stack: str) -> Graph:
    """The graph of the shipped stack `stacks/Pulumi.<stack>.yaml` (a copy of its own)."""
    return graph_of(stack)


def _build(stack: str, config: dict[str, Any]) -> bytes:
    with ExitStack() as exits:
        graph = run_stack(stack_name(stack), copy.deepcopy(config), ROOT,
                          backends=backends_for(config, exits, stand_ins=True))
    return pickle.dumps(graph, protocol=pickle.HIGHEST_PROTOCOL)


def _build_azure(stack: str, config: dict[str, Any]) -> bytes:
    from swarmstack.engine.azure import AzureBackend
    from swarmstack.engine.local import RandomBackend, TlsBackend

    backend = AzureBackend("westeurope")
    graph = run_stack(stack_name(stack), copy.deepcopy(config), backends={"azure-native": backend, "tls": TlsBackend(),  # type: ignore[dict-item]
                                                              "random": RandomBackend()})
    return pickle.dumps((graph, backend), protocol=pickle.HIGHEST_PROTOCOL)


def _shared(stack: str, key: str, build: Callable[[], bytes]) -> bytes:
    directory = os.environ.get(GRAPHS_DIR)
    if not directory:  # a run without tests/conftest.py's directory: this process only
        return build()
    path = Path(directory) / f"{stack_name(stack)}-{key}.pickle"
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another worker building it: wait for its graph
        if not path.exists():
            data = build()
            partial = path.with_suffix(".partial")
            partial.write_bytes(data)
            partial.rename(path)
            return data
    return path.read_bytes()
