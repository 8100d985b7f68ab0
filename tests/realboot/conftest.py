"""Real-boot tests: nodes booted with systemd and cloud-init under systemd-nspawn.

Like tests/integration, they need root; without it (or without the tools, or when the
base root cannot be built) they skip with the reason, and under CI=true they fail
instead, so that CI never passes by skipping them. The time each scenario took to a
converged swarm is printed and collected in $SWARMSTACK_REALBOOT_TIMINGS
(default /tmp/swarmstack-realboot-timings.json).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "integration"))
sys.path.insert(0, str(HERE.parents[1]))

TOOLS = ("systemd-nspawn", "debootstrap", "dpkg-scanpackages", "nsenter", "ip", "mount", "chroot")
TIMINGS = Path(os.environ.get("SWARMSTACK_REALBOOT_TIMINGS", "/tmp/swarmstack-realboot-timings.json"))
FAILURES = Path(os.environ.get("SWARMSTACK_REALBOOT_FAILURES", "/tmp/swarmstack-realboot-failures.log"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: needs root, dockerd and network namespaces (tests/integration)")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """A failure's full text (node logs included) is written as soon as it happens: a
    scenario takes minutes, and pytest prints failures only at the end."""
    if report.failed and "realboot" in report.nodeid:
        with open(FAILURES, "a") as out:
            out.write(f"===== {time.strftime('%H:%M:%S')} {report.nodeid} ({report.when})\n{report.longreprtext}\n")


def missing_requirements() -> str | None:
    """Why this machine cannot boot nodes, or None when it can."""
    if os.geteuid() != 0:
        return "real-boot tests need root (namespaces, overlay mounts, systemd-nspawn)"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return "missing tools: " + ", ".join(missing) + " (apt-get install systemd-container debootstrap dpkg-dev)"
    for cgroup in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd"):
        if not os.path.isdir(cgroup):
            return f"no {cgroup}: the recipe needs a hybrid cgroup layout (see ../shared/notes/real-boot.md)"
    return None


def fail_or_skip(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and the real-boot harness cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def base_root() -> Path:
    """The cached base root, built on first use (about two minutes)."""
    reason = missing_requirements()
    if reason is not None:
        fail_or_skip(reason)
    from rootfs import ensure_root

    try:
        return ensure_root()
    except Exception as err:  # no mirror, no space...
        fail_or_skip(f"cannot build the base root: {err}")
        raise


@pytest.fixture
def clusters(base_root: Path) -> Iterator[Any]:
    """Make `RealBootCluster`s; every one is closed at the end, whatever happened."""
    from cluster import RealBootCluster

    made: list[RealBootCluster] = []

    def make(kind: type[RealBootCluster] = RealBootCluster, **kwargs: Any) -> RealBootCluster:
        made.append(kind(**kwargs))
        return made[-1]

    try:
        yield make
    finally:
        for cluster in reversed(made):
            cluster.close()


@pytest.fixture
def timing(request: pytest.FixtureRequest) -> Iterator[Any]:
    """`timing(label, seconds)`: print and record a figure for this scenario."""
    recorded: dict[str, float] = {}
    started = time.monotonic()

    def record(label: str, seconds: float) -> None:
        recorded[label] = round(seconds, 1)
        print(f"\n[realboot] {request.node.name}: {label} {seconds:.1f}s", flush=True)

    yield record
    try:
        data = json.loads(TIMINGS.read_text())
    except (OSError, ValueError):
        data = {}
    data[request.node.name] = {**recorded, "wall_s": round(time.monotonic() - started, 1),
                               "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    TIMINGS.write_text(json.dumps(data, indent=1, sort_keys=True))
