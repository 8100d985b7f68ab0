"""One node booted with the user data as rendered today: systemd is PID 1, cloud-init
ran the user data (every file of its write_files is on the node, byte for byte), dockerd
answers, and the IMDS answers at the real address. The harness itself, checked before
any scenario."""

from __future__ import annotations

import time
from typing import Any

import pytest

pytestmark = pytest.mark.integration


def test_one_worker_boots_with_real_systemd_and_cloud_init(clusters: Any, timing: Any) -> None:
    cluster = clusters()
    cluster.provision(managers=0, workers={"general": 1}, join_hook=False)
    [worker] = cluster.boot_new()
    machine = worker.machine
    timing("power-on to cloud-init done", time.monotonic() - worker.booted_at)

    assert machine.exec("cat", "/proc/1/comm").stdout.strip() == "systemd", cluster.diagnostics()
    assert machine.exec("readlink", "/proc/1/exe").stdout.strip().endswith("/systemd"), cluster.diagnostics()
    status = machine.cloud_init_status()
    assert "status: done" in status, status + cluster.diagnostics()
    # cloud-init wrote the user data's files, from the seed the harness gave it.
    rendered = cluster.userdata.render(cluster.params("worker", "general"))
    files = cluster.userdata.files_of(rendered)
    assert files, "the rendered user data writes no files"
    different = [path for path, content in files.items() if machine.read(path) != content]
    assert not different, f"files not written as rendered: {different}\n{cluster.diagnostics()}"
    # dockerd, started by the user data under systemd, answers.
    deadline = time.monotonic() + 120
    while machine.exec("docker", "info", "--format", "{{.ServerVersion}}", check=False).returncode != 0:
        assert time.monotonic() < deadline, "dockerd does not answer\n" + cluster.diagnostics()
        time.sleep(2)
    assert machine.exec("systemctl", "is-active", "docker.service", check=False).stdout.strip() == "active"
    timing("power-on to dockerd answering", time.monotonic() - worker.booted_at)
    # The node reads its identity from the IMDS at the real address.
    token = machine.exec("curl", "-sf", "-X", "PUT", "-H", "X-aws-ec2-metadata-token-ttl-seconds: 60",
                         "http://169.254.169.254/latest/api/token").stdout
    instance = machine.exec("curl", "-sf", "-H", f"X-aws-ec2-metadata-token: {token}",
                            "http://169.254.169.254/latest/meta-data/instance-id").stdout
    assert instance == worker.instance_id, cluster.diagnostics()
