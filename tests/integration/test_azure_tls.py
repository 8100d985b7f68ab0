"""The Docker API's certificates on Azure come from Key Vault on every converge run, so a
renewed or rotated certificate reaches running managers (issue 10): before, the CA and
server certificates came in the scale set's custom data, which Azure applies only when a
machine is made, and a manager served its first certificate until it was replaced.

A manager with the TLS Docker API boots on a real engine against the fake Key Vault (with
the stack's grants: managers read `docker-ca-cert`, `docker-server-cert` and
`docker-server-key`); a client with the first bundle reaches its 2376. Then what `pulumi
up --replace` of the CA's key writes (a new CA, the server certificate re-signed for its
old key): the manager's next converge run (systemd played by fake_systemd.py) writes the
new files, restarts its engine once, and serves the new certificate; the old bundle is
refused in the handshake. (Only the managers' identity may read those secrets: the unit
tests check the stack's grants, and the fake Key Vault enforces the same.)"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import require_azure_harness
from test_tls_rotation import (
    Generation,
    api,
    bundle_files,
    converge_until_ok,
    first_generation,
    refused,
    refused_in_handshake,
    reissued,
)

pytestmark = pytest.mark.integration


@dataclass
class AzureTls:
    harness: Any
    first: Generation
    clients: Path
    systemd: dict[str, Any] = field(default_factory=dict)


def stored(generation: Generation) -> dict[str, str]:
    return {"ca-cert": generation.ca_cert, "server-cert": generation.server_cert, "server-key": generation.server_key}


@pytest.fixture(scope="module")
def cluster() -> Iterator[AzureTls]:
    require_azure_harness()
    from azure_harness import AzureHarness
    from fake_systemd import FakeSystemd
    from harness import SUBNET

    harness = AzureHarness(timer_period=2.0, overrides={"docker_api": True})
    try:
        first = first_generation([f"{SUBNET}.{i}" for i in range(10, 20)])
        harness.provision(tls=stored(first))
        manager, worker = harness.add_azure_node("managers"), harness.add_azure_node("general")
        results = harness.boot_all([manager, worker])
        assert all(r.returncode == 0 for r in results.values()), {n: r.stderr[-2000:] for n, r in results.items()}
        harness.wait_converged(managers=1, workers=1)
        state = AzureTls(harness=harness, first=first, clients=harness.tmp / "clients")
        (state.clients / "home").mkdir(parents=True)
        (manager.dir / "state" / "engine-restart-pending").unlink(missing_ok=True)
        state.systemd[manager.name] = FakeSystemd(manager)
        yield state
    finally:
        harness.close()


def manager_of(cluster: AzureTls) -> Any:
    return cluster.harness.live("manager")[0]


def test_1_the_manager_serves_the_certificates_key_vault_holds(cluster: AzureTls) -> None:
    node = manager_of(cluster)
    for file, value in (("ca.pem", cluster.first.ca_cert), ("server-cert.pem", cluster.first.server_cert),
                        ("server-key.pem", cluster.first.server_key)):
        assert (node.dir / "tls" / file).read_text().strip() == value.strip(), file
    assert oct((node.dir / "tls" / "server-key.pem").stat().st_mode & 0o777) == "0o600"
    result = api(cluster, node.ip, bundle_files(cluster, "first", cluster.first.bundle()))  # type: ignore[arg-type]
    assert result.returncode == 0, result.stderr


def test_2_a_rotated_ca_reaches_the_running_manager_on_its_next_converge_run(cluster: AzureTls) -> None:
    from harness import SUBNET

    node = manager_of(cluster)
    systemd = cluster.systemd[node.name]
    new = reissued(cluster.first, [f"{SUBNET}.{i}" for i in range(10, 20)], new_ca_key=True,
                   common="swarmstack prod CA")
    started = time.monotonic()
    cluster.harness.store_tls({"ca-cert": new.ca_cert, "server-cert": new.server_cert})
    converge_until_ok(systemd, 180)
    assert (node.dir / "tls" / "ca.pem").read_text().strip() == new.ca_cert.strip()
    restarts = [r for r in systemd.restarts if r.began >= started and r.acted]
    assert [(r.verb, r.ok) for r in restarts] == [("restart", True)], restarts
    ok = api(cluster, node.ip, bundle_files(cluster, "second", new.bundle()))  # type: ignore[arg-type]
    assert ok.returncode == 0, ok.stderr
    old = refused(cluster, node.ip, bundle_files(cluster, "first", cluster.first.bundle()))  # type: ignore[arg-type]
    assert refused_in_handshake(old), (old.returncode, old.stderr)
    # Unchanged certificates: the next run restarts nothing.
    again = time.monotonic()
    assert systemd.run("converge", timeout=300).returncode == 0
    assert [r for r in systemd.restarts if r.began >= again and r.acted] == []

