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
README.md; a file's tests stay on one worker, so its module fixtures are built once).
tests/integration and tests/realboot use fixed addresses, network namespaces and root: `-n` on a
run that would collect them is refused.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

PROFILES = ("default", "ci")
SERIAL_ONLY = ("tests/integration", "tests/realboot")

settings.register_profile("default", max_examples=100, deadline=None)
settings.register_profile("ci", max_examples=500, deadline=None)

_profile = os.environ.get("HYPOTHESIS_PROFILE", "default")
if _profile not in PROFILES:
    raise ValueError(f"HYPOTHESIS_PROFILE={_profile!r}: must be one of {', '.join(PROFILES)}")
settings.load_profile(_profile)


def pytest_configure(config: pytest.Config) -> None:
    """Refuse `-n` for a run that would collect tests/integration or tests/realboot."""
    if hasattr(config, "workerinput") or not config.getoption("numprocesses", None):
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
