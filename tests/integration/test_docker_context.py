"""`swarmstack context` against a real engine serving the TLS Docker API.

One dockerd with `tlsverify` (server certificate for its address, signed by the
cluster's CA, as `components/*/tls.py` make them) in a network namespace of its own;
the docker CLI runs in a second namespace on the same bridge, with a temporary
DOCKER_CONFIG, so the user's own contexts are never touched. The outputs file is
what `pulumi stack output --json --show-secrets` prints for such a stack.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import require_harness

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ENGINE_IP = "10.199.0.10"


@dataclass
class Engine:
    tmp: Path
    client_ns: str
    bundle: Any
    """The certificates (tests/integration/certs.py: Bundle)."""
    config: Path
    """The DOCKER_CONFIG the test's docker CLI and `swarmstack context` use."""

    def outputs(self, name: str, ca: str, cert: str, key: str) -> Path:
        path = self.tmp / f"{name}.json"
        path.write_text(json.dumps({
            "dockerHost": f"tcp://{ENGINE_IP}:2376",
            "clientTls": {"ca.pem": ca, "cert.pem": cert, "key.pem": key},
            "managerGroup": "prod-managers-asg",
        }))
        return path

    def env(self) -> dict[str, str]:
        return {"DOCKER_CONFIG": str(self.config), "HOME": str(self.tmp / "home"), "LANG": "C.UTF-8",
                "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")}

    def swarmstack_context(self, stack: str, outputs: Path) -> subprocess.CompletedProcess[str]:
        from harness import DOCKER

        return subprocess.run([sys.executable, "-m", "swarmstack.cli", "context", stack, "--outputs", str(outputs),
                               "--docker", DOCKER], capture_output=True, text=True, cwd=ROOT, env=self.env(),
                              timeout=60)

    def docker(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The docker CLI as an admin's machine runs it: from its own namespace, over TCP."""
        from harness import DOCKER, Network

        return subprocess.run(["nsenter", f"--net={Network.path(self.client_ns)}", DOCKER, *args],
                              capture_output=True, text=True, env=self.env(), timeout=60)


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    require_harness()
    from certs import make_bundle
    from harness import DOCKER, Network, Procs, kill_tree

    tmp = Path(tempfile.mkdtemp(prefix="ssctx-", dir="/tmp"))
    procs = Procs()
    net: Network | None = None
    dockerd: subprocess.Popen[bytes] | None = None
    try:
        net = Network(f"x{os.getpid() % 100000}")  # the client lives in its "cloud" namespace
        engine_ns = f"{net.prefix}-engine"
        net.attach(engine_ns, ENGINE_IP)
        bundle = make_bundle([ENGINE_IP])
        server = tmp / "server"
        server.mkdir()
        for name, text in (("ca.pem", bundle.ca.cert), ("cert.pem", bundle.server.cert),
                           ("key.pem", bundle.server.key)):
            (server / name).write_text(text)
        socket = tmp / "docker.sock"
        dockerd = procs.start([
            "nsenter", f"--net={Network.path(engine_ns)}", "dockerd",
            "--tlsverify", "--tlscacert", str(server / "ca.pem"), "--tlscert", str(server / "cert.pem"),
            "--tlskey", str(server / "key.pem"), "-H", "tcp://0.0.0.0:2376", "-H", f"unix://{socket}",
            "--data-root", str(tmp / "data"), "--exec-root", str(tmp / "exec"), "--pidfile", str(tmp / "docker.pid"),
            "--iptables=false", "--ip-masq=false", "--bridge=none",
        ], tmp / "dockerd.log")
        deadline = time.monotonic() + 60
        while subprocess.run([DOCKER, "-H", f"unix://{socket}", "info", "--format", "{{.ID}}"],
                             capture_output=True, text=True, timeout=15).returncode != 0:
            if dockerd.poll() is not None or time.monotonic() > deadline:
                log = (tmp / "dockerd.log").read_text(errors="replace").splitlines()[-15:]
                raise RuntimeError("dockerd did not start:\n" + "\n".join(log))
            time.sleep(0.3)
        (tmp / "home").mkdir()
        yield Engine(tmp=tmp, client_ns=net.cloud, bundle=bundle, config=tmp / "docker-config")
    finally:
        if dockerd is not None and dockerd.poll() is None:
            dockerd.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                dockerd.wait(timeout=10)
        procs.stop_all()
        if dockerd is not None:
            kill_tree([dockerd.pid])
        for line in reversed(Path("/proc/self/mountinfo").read_text().splitlines()):
            point = line.split()[4]
            if point.startswith(str(tmp) + "/"):
                subprocess.run(["umount", "-l", point], capture_output=True)
        if net is not None:
            net.close()
        shutil.rmtree(tmp, ignore_errors=True)


def test_the_context_reaches_the_engine_with_the_admin_bundle(engine: Engine) -> None:
    bundle = engine.bundle
    outputs = engine.outputs("prod", bundle.ca.cert, bundle.admin.cert, bundle.admin.key)
    made = engine.swarmstack_context("ctxtest", outputs)
    assert made.returncode == 0, made.stderr
    assert made.stdout.splitlines()[1] == "Use it:  docker --context swarmstack-ctxtest node ls"
    folder = engine.config / "swarmstack" / "ctxtest"
    assert sorted(p.name for p in folder.iterdir()) == ["ca.pem", "cert.pem", "key.pem"]
    assert {stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()} == {0o600}

    version = engine.docker("--context", "swarmstack-ctxtest", "version", "--format", "{{.Server.Version}}")
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip()
    info = engine.docker("--context", "swarmstack-ctxtest", "info", "--format", "{{.ID}}")
    assert info.returncode == 0 and info.stdout.strip(), info.stderr
    # Running it again updates the same context, and it still works.
    again = engine.swarmstack_context("ctxtest", outputs)
    assert again.returncode == 0 and "swarmstack-ctxtest updated" in again.stdout, again.stderr
    assert engine.docker("--context", "swarmstack-ctxtest", "version").returncode == 0


def test_a_context_with_another_ca_is_refused(engine: Engine) -> None:
    bundle = engine.bundle
    outputs = engine.outputs("wrong-ca", bundle.stranger_ca.cert, bundle.admin.cert,
                             bundle.admin.key)
    made = engine.swarmstack_context("ctxtest-wrongca", outputs)
    assert made.returncode == 0, made.stderr  # the files are well-formed; only the engine can tell
    refused = engine.docker("--context", "swarmstack-ctxtest-wrongca", "version", "--format", "{{.Server.Version}}")
    assert refused.returncode != 0
    assert "certificate" in refused.stderr.lower(), refused.stderr


def test_a_client_certificate_from_another_ca_is_refused_by_the_engine(engine: Engine) -> None:
    bundle = engine.bundle
    outputs = engine.outputs("stranger", bundle.ca.cert, bundle.stranger.cert,
                             bundle.stranger.key)
    assert engine.swarmstack_context("ctxtest-stranger", outputs).returncode == 0
    refused = engine.docker("--context", "swarmstack-ctxtest-stranger", "version", "--format", "{{.Server.Version}}")
    assert refused.returncode != 0
    assert "certificate" in refused.stderr.lower() or "tls" in refused.stderr.lower(), refused.stderr


def test_the_users_own_docker_config_is_untouched(engine: Engine) -> None:
    real = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    assert not (real / "swarmstack" / "ctxtest").exists() or real == engine.config
    listed = engine.docker("context", "ls", "--format", "{{.Name}}")
    assert "swarmstack-ctxtest" in listed.stdout.split()
