"""What the Docker engine itself does not let a stack tune, shown on the real engine so that
docs/bootstrap.md ("Healing") stays true when the engine changes.

swarmkit's raft elects a new leader 10 to 20 one-second ticks after the old one stops
answering (ElectionTick 10, randomised up to twice that). moby keeps `SwarmRaftElectionTick`
and `SwarmRaftHeartbeatTick` in its daemon configuration, but no flag sets them, and a
daemon.json that names them is refused: `dockerd` exits at start with "the following
directives don't match any configuration option". (The swarm spec's `Raft.ElectionTick`,
given to `POST /swarm/init`, is only recorded: `docker info` shows it, raft does not use it;
tried by hand with three engines on 2026-12-01, a new leader came 12.5 and 20.4 s after
the old one's SIGKILL with ElectionTick 3 recorded.) A lost leader's heal therefore waits
on the engine's own election, whatever a stack sets; this test fails the day an engine
accepts the directives, which is the day to offer the setting.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import require_harness

pytestmark = pytest.mark.integration


def test_the_engine_refuses_raft_election_and_heartbeat_ticks_in_daemon_json() -> None:
    require_harness()
    from harness import kill_tree

    with tempfile.TemporaryDirectory(prefix="sst-engine-") as tmp:
        root = Path(tmp)
        config = root / "daemon.json"
        config.write_text(json.dumps({"swarm-raft-election-tick": 5, "swarm-raft-heartbeat-tick": 1}))
        # Its own network namespace, data and sockets: should it start after all, it
        # touches nothing of this machine's, and it is stopped by its PID below.
        process = subprocess.Popen(
            ["unshare", "--net", "--", "dockerd", "--config-file", str(config),
             "-H", f"unix://{root / 'docker.sock'}", "--data-root", str(root / "data"),
             "--exec-root", str(root / "exec"), "--pidfile", str(root / "docker.pid"),
             "--iptables=false", "--ip-masq=false", "--bridge=none"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            _, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            kill_tree([process.pid])
            process.communicate()
            pytest.fail("dockerd started with swarm-raft-election-tick in daemon.json: the engine now takes "
                        "the election timer, so the stack can offer it (docs/bootstrap.md, Healing)")
        assert process.returncode != 0
        assert "don't match any configuration option" in stderr, stderr[-2000:]
        assert "swarm-raft-election-tick" in stderr and "swarm-raft-heartbeat-tick" in stderr, stderr[-2000:]
