"""Raft backups on Azure's adapter (issue 11), on real engines against Azurite's Blob
storage (behind the storage gate of `azure_fake.py`): the backup command of the managers' timer stores the swarm, and after the
only manager is lost, `restore` on a fresh one brings back its services, secrets and
configs; the worker that knew only the lost manager joins again by itself. systemd's part
(stopping and starting the engine) is played by tests/integration/fake_systemd.py.
The same commands run on booted nodes against S3 in tests/realboot (scenario 9)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import require_azure_harness

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def harness() -> Iterator[Any]:
    require_azure_harness()
    from azure_harness import AzureHarness

    h = AzureHarness(timer_period=2.0, overrides={"converge_interval_seconds": 5})
    try:
        h.provision()
        yield h
    finally:
        h.close()


def wait_for(what: str, check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s")
        time.sleep(1)
    return value


def test_a_backup_restores_the_swarm_on_a_fresh_manager_and_the_worker_rejoins(harness: Any) -> None:
    from azurite import ACCOUNT
    from fake_systemd import FakeSystemd

    manager, worker = harness.add_azure_node("managers"), harness.add_azure_node("general")
    results = harness.boot_all([manager, worker])
    assert all(r.returncode == 0 for r in results.values()), {n: r.stderr[-2000:] for n, r in results.items()}
    harness.wait_converged(managers=1, workers=1)
    manager.docker("secret", "create", "db-password", str(manager.dir / "daemon.json"))
    manager.docker("config", "create", "app-config", str(manager.dir / "daemon.base.json"))
    manager.docker("service", "create", "--detach", "--no-resolve-image", "--name", "web", "--replicas", "0",
                   "--secret", "db-password", "--config", "app-config", "swarmstack/sleep:test")

    backed = FakeSystemd(manager).run("backup")
    assert backed.returncode == 0, backed.stderr[-3000:]
    blobs = harness.azure.state()["blobs"]["backups"]
    assert len(blobs) == 1 and next(iter(blobs)).startswith("swarm/"), blobs
    assert "backed up the swarm" in backed.stderr
    calls = harness.azure.state()["calls"]
    assert any(c[0] == "manager" and c[1] == "PUT" and c[2].startswith(f"/{ACCOUNT}/backups/swarm/")
               and c[3] == 201 for c in calls), calls[-10:]
    assert not [c for c in calls if c[0] == "worker" and c[2].startswith(f"/{ACCOUNT}/backups")]

    # Older backups, more than a page of them (Azure and Azurite list 5,000 names a page, in
    # name order, so the newest is on the second page): restore takes the newest.
    older = [f"swarm/2024{i // 1000 + 1:02d}{i % 28 + 1:02d}T{i % 24:02d}0000Z-i-old{i:04d}.tar.gz"
             for i in range(5000)]
    harness.azure.storage.put_blobs("backups", older, b"not a backup")
    manager.stop(graceful=False)  # every manager lost
    harness.gone(manager)
    fresh = harness.add_azure_node("managers")
    configured = fresh.run("configure", timeout=120)
    assert configured.returncode == 0, configured.stderr[-2000:]
    fresh.start_engine()
    restored = FakeSystemd(fresh).run("restore", timeout=300)
    assert restored.returncode == 0, restored.stderr[-3000:] + fresh.tail()
    # the restore tool came with the custom data (docs/azure.md), not from the container
    assert not [c for c in harness.azure.state()["calls"] if "/backups/tools/" in c[2]]
    assert fresh.docker("service", "ls", "--format", "{{.Name}}").split() == ["web"]
    assert fresh.docker("secret", "ls", "--format", "{{.Name}}").split() == ["db-password"]
    assert fresh.docker("config", "ls", "--format", "{{.Name}}").split() == ["app-config"]

    def rejoined() -> bool:
        worker.run("bootstrap", timeout=300)  # what each converge run does
        return fresh.docker("node", "ls", "--filter", "role=worker", "--format", "{{.Hostname}} {{.Status}}"
                            ).split("\n").count(f"{worker.name} Ready") == 1

    wait_for("the worker joined the restored swarm", rejoined, 240)
    assert "joining the restored swarm" in worker.log.read_text()
