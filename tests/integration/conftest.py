"""Integration tests: real dockerd per network namespace, moto, a fake IMDS.

The `integration` marker is registered here (pyproject.toml belongs to others).
Without root or the tools, the tests skip with the reason; with CI=true they fail
instead, so that CI can never pass by skipping them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: needs root, dockerd and network namespaces (tests/integration)")


def require_harness() -> None:
    """Skip (or, under CI=true, fail) when this machine cannot run the harness."""
    from harness import missing_requirements

    reason = missing_requirements()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and the integration harness cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


def require_azure_harness() -> None:
    """As `require_harness`, and Azurite (the Azure tests' Table and Blob storage) must be
    installed: skip without it, fail under CI=true."""
    require_harness()
    from azurite import missing

    reason = missing()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and the Azure harness cannot run: {reason}", pytrace=False)
    pytest.skip(reason)
