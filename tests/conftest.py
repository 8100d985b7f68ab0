"""Settings for the whole suite.

Hypothesis profiles, picked by `HYPOTHESIS_PROFILE` (the hypothesis pytest plugin is off,
see pyproject.toml):

- `default`: what `pytest` runs on a laptop and in the pull-request workflow: hypothesis's
  own example count for the pure property tests, and a few examples for the ones that build
  a whole program per example (tests/unit/examples.py);
- `ci`: thorough, for `.ci/run`: five times the examples, and the program-building tests
  at their full counts.

No deadline in either: a shared machine's load is not a failure.

Workers: the unit suite runs in parallel (`pytest -n auto --dist loadfile tests/unit`, see
README.md). A file's tests stay together on one worker (its module fixtures are built once),
except in the modules of SPREAD, whose tests share nothing costly: they are handed out one by
one to whichever worker is free (`pytest_xdist_make_scheduler` below). The heavy files are
handed out first (HEAVY), the SPREAD tests last, so that both workers finish together. The
shipped stacks' graphs are built once per run for all workers (tests/unit/shipped.py, in the
directory $SWARMSTACK_TEST_GRAPHS names).
tests/integration and tests/realboot use fixed addresses, network namespaces and root: `-n` on a
run that would collect them is refused.
"""

from __future__ import annotations

import gc
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings

from swarmstack.cli import GC_THRESHOLDS

PROFILES = ("default", "ci")
SERIAL_ONLY = ("tests/integration", "tests/realboot")
GRAPHS_DIR = "SWARMSTACK_TEST_GRAPHS"  # tests/unit/shipped.py
_OWN_GRAPHS_DIR = pytest.StashKey[str]()
# Unit modules whose tests each do their own costly work (a bash run of the node script,
# shellcheck, a program of their own) and share no module fixture: one test at a time to any
# free worker.
SPREAD = ("test_node_script", "test_node_scale", "test_userdata", "test_azure_userdata", "test_azure_engine",
          "test_engine", "test_cost", "test_cli", "test_azure_configs", "test_program_properties")
# Unit modules that take longest as a whole on one worker, longest first: handed out first.
HEAVY = ("test_azure_stacks", "test_policies_stacks", "test_aws_cluster", "test_deploy_order", "test_aws_backup",
         "test_azure_backup", "test_aws_node_access", "test_certificate_expiry", "test_aws_hardening",
         "test_policy_pack", "test_tls_rotation_urns", "test_azure_pure")

settings.register_profile("default", max_examples=100, deadline=None)
settings.register_profile("ci", max_examples=500, deadline=None)

_profile = os.environ.get("HYPOTHESIS_PROFILE", "default")
if _profile not in PROFILES:
    raise ValueError(f"HYPOTHESIS_PROFILE={_profile!r}: must be one of {', '.join(PROFILES)}")
settings.load_profile(_profile)


def pytest_configure(config: pytest.Config) -> None:
    """Give the run (and its workers, which inherit it) a directory for shared graphs; refuse
    `-n` for a run that would collect tests/integration or tests/realboot. Every process
    (the workers too) collects garbage at the command's thresholds (swarmstack/cli.py): at
    CPython's own, the collector took a third of each program run."""
    gc.set_threshold(*GC_THRESHOLDS)
    if hasattr(config, "workerinput"):
        return
    if GRAPHS_DIR not in os.environ:
        os.environ[GRAPHS_DIR] = tempfile.mkdtemp(prefix="swarmstack-graphs-")
        config.stash[_OWN_GRAPHS_DIR] = os.environ[GRAPHS_DIR]
    if not config.getoption("numprocesses", None):
        return
    serial = [config.rootpath / name for name in SERIAL_ONLY]
    for arg in config.args:
        path = (config.invocation_params.dir / arg.split("::")[0]).resolve()
        for directory in serial:
            if path == directory or directory in path.parents or path in directory.parents:
                raise pytest.UsageError(
                    f"{arg} holds {directory.relative_to(config.rootpath)}/, whose tests must not run in xdist "
                    "workers (fixed addresses, network namespaces): run `pytest -n auto --dist loadfile tests/unit`, "
                    "then `pytest tests/integration` and `pytest tests/realboot`, one run each (README.md)")


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the run's graphs directory, if this process made it.

    An xdist worker, its results sent (`workerfinished`, in pytest_sessionfinish), leaves
    without the interpreter's teardown, as the command does (swarmstack/cli.py `run`): freeing
    the SDK's, botocore's and moto's objects kept the whole run waiting about 5 s at its end.
    The master took the worker as finished when the results came, and nothing the worker
    started is left behind: the node-script fakes' server is a thread of its own process."""
    if hasattr(config, "workerinput"):
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os._exit(0)
    directory = config.stash.get(_OWN_GRAPHS_DIR, None)
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)
        os.environ.pop(GRAPHS_DIR, None)


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """`--dist loadfile`, but a SPREAD module's tests are each a unit of their own."""
    if config.getoption("dist", "no") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class Scheduling(LoadFileScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return nodeid if path.startswith("tests/unit/") and Path(path).stem in SPREAD else path

    config.option.loadscopereorder = False  # the workers' order below, not the files' test counts
    return Scheduling(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In an xdist worker: the HEAVY unit modules first, longest first, then the rest, the
    SPREAD modules last (their tests fill the gaps). A module's tests keep their order."""
    if not hasattr(config, "workerinput"):
        return
    unit = config.rootpath / "tests" / "unit"

    def rank(item: pytest.Item) -> int:
        module = item.path.stem
        if item.path.parent != unit:
            return len(HEAVY) + 1
        if module in HEAVY:
            return HEAVY.index(module)
        return len(HEAVY) + (2 if module in SPREAD else 1)

    items.sort(key=rank)
