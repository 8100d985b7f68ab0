"""One node booted with today's user data: systemd is PID 1, cloud-init ran the user
data, dockerd answers. The harness itself, checked before any scenario."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.integration


def test_one_worker_boots_with_real_systemd_and_cloud_init(clusters: Any, timing: Any) -> None:
    cluster = clusters()
    cluster.provision(managers=0, workers={"general": 1}, join_hook=False)
    [worker] = cluster.boot_new()
    machine = worker.machine
    context = cluster.diagnostics()
    timing("boot to cloud-init done", __import__("time").monotonic() - worker.booted_at)

    assert machine.exec("cat", "/proc/1/comm").stdout.strip() == "systemd", context
    assert machine.exec("readlink", "/proc/1/exe").stdout.strip().endswith("/systemd"), context
    status = machine.cloud_init_status()
    assert "status: done" in status, status + context
    # cloud-init wrote the user data's files, from the seed the harness gave it.
    script = machine.read("/usr/local/sbin/swarmstack-node")
    assert script is not None and script.startswith("#!/usr/bin/env bash"), context
    assert machine.read("/etc/systemd/system/swarmstack-bootstrap.service") is not None, context
    assert cluster.params("worker", "general").cluster in script, context
    # dockerd, started by the user data under systemd, answers.
    assert machine.exec("systemctl", "is-active", "docker.service", check=False).stdout.strip() == "active", context
    assert worker.docker("info", "--format", "{{.ServerVersion}}").strip(), context
    # The node read its identity from the IMDS at the real address.
    identity = machine.exec("curl", "-sf", "-X", "PUT", "-H", "X-aws-ec2-metadata-token-ttl-seconds: 60",
                            "http://169.254.169.254/latest/api/token").stdout
    instance = machine.exec("curl", "-sf", "-H", f"X-aws-ec2-metadata-token: {identity}",
                            "http://169.254.169.254/latest/meta-data/instance-id").stdout
    assert instance == worker.instance_id, context
