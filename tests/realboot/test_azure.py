"""Azure on booted nodes: the fake Azure's IMDS at 169.254.169.254, its data plane
(Key Vault, ARM, and Azurite's Table storage over HTTPS) behind the fault proxy, custom
data rendered for the `prod-azure` stack. The same
cluster then shows two properties of issue 10: no join or bearer token was on any
command line while it formed, and its containers cannot reach the metadata service
while the nodes themselves can."""

from __future__ import annotations

import time
from typing import Any

import pytest
from conftest import fail_or_skip
from test_scenarios import converge, one_swarm, tokens_match_swarm, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def azurite_installed() -> None:
    """Azure's Table storage here is Azurite: skip without it (fail under CI=true)."""
    from azurite import missing

    reason = missing()
    if reason is not None:
        fail_or_skip(reason)


def test_azure_nodes_boot_before_role_assignments_apply(clusters: Any, timing: Any) -> None:
    """Scenario 1 on Azure: for the first minute every Key Vault, Table and ARM call is
    refused (403: the role assignments are not applied yet, as RBAC takes minutes; Table
    storage's calls by the HTTPS proxy in front of Azurite), and
    writes to Key Vault for two (its role assignment applies last): the manager can win
    the election and init, then fail to store the tokens. It must still store them; the
    worker joins. Then, on the same cluster, issue 10: no secret was on a command line
    while it formed, and containers cannot reach the metadata service; and issue 12: the
    registry tool's timer ran under systemd and left the credential helper in root's
    Docker config."""
    from argv_watch import ArgvWatch
    from cluster_azure import AzureRealBootCluster

    cluster = clusters(kind=AzureRealBootCluster, overrides={"registry": REGISTRY})
    cluster.provision(1, {"general": 1})
    started = time.monotonic()
    cluster.faults.add("denied", 60)
    cluster.faults.add("denied", 120, service="kv", operation="PUT")
    with ArgvWatch() as watch:  # every command line on the machine, the nodes' included
        cluster.boot_new()
        wait_for("a refused call", lambda: [c for c in cluster.faults.calls() if c["fault"] == "denied"], 90,
                 cluster.diagnostics)
        wait_for("a refused Table storage call", lambda: [c for c in cluster.faults.calls()
                                                         if c["fault"] == "denied" and c["service"] == "tables"],
                 90, cluster.diagnostics)
        converge(cluster, timing, "boot to converged swarm (403 for a minute)", 420, since=started, in_service=False)
        one_swarm(cluster)
        tokens = tokens_match_swarm(cluster)
    no_secret_on_a_command_line(cluster, watch, list(tokens.values()))
    checked = time.monotonic()
    containers_cannot_reach_the_metadata_service(cluster)
    timing("containers and the metadata service, checked", time.monotonic() - checked)
    the_registry_timer_installed_the_helper(cluster)


REGISTRY = "prodrega1b2c3.azurecr.io"


def the_registry_timer_installed_the_helper(cluster: Any) -> None:
    """Issue 12 under real systemd: the custom data's `swarmstack-registry.timer` ran the tool
    (`converge`) on every node and it succeeded (on the leader too, where the refresh looks
    for services); root's Docker config names the helper for the registry and holds no
    password; the timer stays armed for the next run. The helper's answer itself needs
    the registry's token exchange (tests/unit/test_registry_tool.py)."""
    import json

    for member in cluster.members:
        node = member.machine
        def ran() -> dict[str, str] | None:
            shown = dict(line.split("=", 1) for line in node.sh(  # noqa: B023 (called at once)
                "systemctl show -p Result,ExecMainStatus,ExecMainExitTimestampMonotonic,ActiveState "
                "swarmstack-registry.service").splitlines() if "=" in line)
            done = shown.get("ExecMainExitTimestampMonotonic", "0") != "0" and shown.get("ActiveState") != "activating"
            return shown if done else None

        shown = wait_for(f"{member.name}: swarmstack-registry.service ran", ran, 90, cluster.diagnostics)
        assert (shown["Result"], shown["ExecMainStatus"]) == ("success", "0"), shown
        config = json.loads(node.sh("cat /root/.docker/config.json"))
        assert config == {"credHelpers": {REGISTRY: "swarmstack"}}, config
        assert node.sh("stat -c %a /root/.docker /root/.docker/config.json").split() == ["700", "600"]
        assert node.sh("readlink -f /usr/local/sbin/docker-credential-swarmstack").strip() == \
            "/usr/local/sbin/swarmstack-registry"
        # root's login shell finds the helper, which the Docker CLI looks up on the PATH
        assert node.sh("su -l root -c 'command -v docker-credential-swarmstack'").strip() == \
            "/usr/local/sbin/docker-credential-swarmstack"
        assert node.sh("systemctl is-active swarmstack-registry.timer").strip() == "active"
        assert "swarmstack-registry" in node.sh("systemctl list-timers --all --no-legend swarmstack-registry.timer")


def no_secret_on_a_command_line(cluster: Any, watch: Any, tokens: list[str]) -> None:
    """Issue 10: no join token and no bearer token the IMDS issued was ever in the argv
    of any process (the nodes' processes, under nspawn, are in the host's /proc)."""
    from argv_watch import redact

    issued = cluster.azure.control("state")["issued"]
    assert issued and all(t.startswith("SWMTKN-1-") for t in tokens) and len(tokens) == 2
    secrets = tokens + issued
    # The watch saw the commands that carry them, so finding nothing means something.
    for needles in (("curl", "-X PUT", "-H @", "/kv/secrets/swarm-manager-token"),
                    ("curl", "-H @", "/kv/secrets/swarm-worker-token"),
                    ("curl", "identity/oauth2/token", "client_id="),
                    ("curl", "POST", "http://localhost/swarm/join")):
        assert watch.seen(*needles), f"the watch never saw a command line with {needles}: {watch.summary()}"
    print(f"\n[argv] {watch.summary()}", flush=True)
    leaks = watch.leaks(secrets)
    if leaks:  # the message, not pytest's introspection, so that it shows no whole secret
        pytest.fail(redact(f"secrets on command lines ({watch.summary()}): {leaks}", secrets), pytrace=False)


METADATA = "169.254.169.254"
DROP_RULE = ("-d", f"{METADATA}/32", "-j", "DROP")
# A tiny image from the node's own bash and timeout (and their libraries): no registry.
PROBE_IMAGE = """set -euo pipefail
files=$( { for b in /usr/bin/bash /usr/bin/timeout; do echo "$b"; ldd "$b" | grep -o '/[^ ]*'; done; } | sort -u)
tar -chf - $files 2>/dev/null | docker import - swarmstack/probe:test >/dev/null
"""
# One HTTP request to ADDRESS:80 from the container; prints the status line. 124: no
# connection within 5 s (dropped).
PROBE = ("exec 3<>/dev/tcp/$0/80 && printf 'GET /metadata/instance/compute?api-version=2021-02-01 HTTP/1.0\\r\\n"
         "Metadata: true\\r\\n\\r\\n' >&3 && read -r line <&3 && echo \"$line\"")


def from_container(member: Any, address: str) -> tuple[int, str]:
    """(exit code, status line) of one HTTP request from a container on `member`'s default
    bridge to `address`:80."""
    result = member.machine.exec("docker", "run", "--rm", "--network", "bridge", "swarmstack/probe:test",
                                 "/usr/bin/timeout", "5", "/usr/bin/bash", "-c", PROBE, address,
                                 timeout=60, check=False)
    return result.returncode, (result.stdout + result.stderr).strip()


def drop_rule_present(member: Any) -> bool:
    return member.machine.exec("iptables", "-w", "10", "-C", "DOCKER-USER", *DROP_RULE, check=False).returncode == 0


def containers_cannot_reach_the_metadata_service(cluster: Any) -> None:
    """Issue 10: on every node a container's connection to 169.254.169.254 goes nowhere
    (the DOCKER-USER rule drops it), while the node itself gets its metadata there and the
    same container reaches the same server at its other address. The proof has teeth: with
    the rule removed the container reaches the metadata service; converge puts the rule
    back, and an engine restart keeps it."""
    from cloud import CLOUD_IP

    for member in cluster.live():
        host = member.machine.exec("curl", "-sS", "--max-time", "5", "-H", "Metadata: true",
                                   f"http://{METADATA}/metadata/instance/compute?api-version=2021-02-01", check=False)
        assert host.returncode == 0 and member.instance_id in host.stdout, \
            f"{member.name}: the node itself must reach the IMDS: {host.stdout} {host.stderr}"
        assert drop_rule_present(member), member.machine.sh("iptables -S; iptables -S DOCKER-USER || true")
        member.machine.sh(PROBE_IMAGE, timeout=120)
        code, out = from_container(member, CLOUD_IP)
        assert code == 0 and out.startswith("HTTP/1."), f"{member.name}: a container must reach {CLOUD_IP}: {code} {out}"
        code, out = from_container(member, METADATA)
        assert code == 124 and "HTTP/" not in out, \
            f"{member.name}: a container reached the metadata service: exit {code}, {out!r}"
    worker = cluster.live("worker")[0]
    worker.machine.exec("iptables", "-w", "10", "-D", "DOCKER-USER", *DROP_RULE)
    code, out = from_container(worker, METADATA)
    assert code == 0 and out.startswith("HTTP/1.") and " 200 " in out, \
        f"without the rule the container got: exit {code}, {out!r}"
    worker.machine.exec("systemctl", "start", "swarmstack-converge.service")
    wait_for("converge to put the DOCKER-USER rule back", lambda: drop_rule_present(worker), 90,
             lambda: worker.machine.sh("iptables -S DOCKER-USER; tail -5 /var/log/swarmstack/bootstrap.log"))
    worker.machine.exec("systemctl", "restart", "docker", timeout=120)
    wait_for("the engine back after its restart", lambda: worker.machine.exec(
        "docker", "info", "--format", "{{.Swarm.LocalNodeState}}", check=False).stdout.strip() == "active", 90)
    assert drop_rule_present(worker), "an engine restart removed the rule"
    code, out = from_container(worker, METADATA)
    assert code == 124 and "HTTP/" not in out, f"after an engine restart a container got: exit {code}, {out!r}"
