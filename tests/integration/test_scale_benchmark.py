"""benchmarks/scale.py, run small: the figures in docs/scale.md come from it, so it must finish
and its stand-ins must answer each caller its own answer.

The node script runs some store calls side by side (a manager's first-round election beside
its read, the leader's two token writes beside its manager-list write): several processes of
one node wait on the stand-ins at once. The benchmark once answered through one channel per
node and counted a node as running from an answer until its next call, so a node whose
background call ended and whose main shell still waited never counted as waiting again, and
the virtual clock stopped for good (found with `--nodes 35`; 8 nodes hung in 3 runs of 3).
Here, not among the unit tests: it runs about 20 real bash processes for several seconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from harness import _pids_mentioning

ROOT = Path(__file__).resolve().parents[2]
NODES = "/scale8-"
"""In the command line of every simulated node's bash (its script in /dev/shm/scale8-*/)."""
pytestmark = pytest.mark.integration


def test_a_small_cold_start_finishes_with_every_node_joined_under_the_limits(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    before = set(_pids_mentioning(NODES))
    # Its own process group, stopped below whatever happens.
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "benchmarks" / "scale.py"), "--nodes", "8", "--managers-after", "2",
         "--json", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        raise AssertionError("benchmarks/scale.py did not finish in 120 s: its clock stopped") from None
    finally:  # on a hang, a failure or Ctrl-C alike: SIGTERM lets it stop its nodes (their own groups)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 0, stdout[-2000:] + stderr[-2000:]
    [figures] = json.loads(out.read_text())
    assert figures["missing"] == 0 and figures["all_joined"] is not None, figures
    assert figures["peak"] <= 40 and not figures["unknown"], figures
    # The clock moved on its look at the processes every time, never on the 2 s fallback.
    assert figures["stalls"] == 0, figures
    # Every process it started has ended: each node ran in its own process group.
    assert not set(_pids_mentioning(NODES)) - before, "node processes left running"

