"""The Azure nodes' user data: rendered from the real templates, valid YAML, a script
shellcheck accepts, the prune schedule as the config says, nothing secret inside."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest
import yaml
from test_userdata import body, setting_names, tool_path

from components.common.node_paths import DAEMON_BASE, NODE_SCRIPT
from swarmstack.config.cron import parse_cron, to_systemd
from userdata import NodeUserData, render
from userdata.render import node_files

BASE = dict(cluster="prod", cloud="azure", generation="0a1b2c3d", region="westeurope", vault_name="prod-abc123",
            logging=True, prune=True,
            table_endpoint="https://prodabc123.table.core.windows.net/",
            identity_client_id="12345678-1234-1234-1234-123456789012")


def manager(**changes: object) -> NodeUserData:
    return NodeUserData(**{**BASE, "role": "manager", "pool": "managers", "labels": {}, "docker_api": True,
                                **changes})  # type: ignore[arg-type]


def worker(**changes: object) -> NodeUserData:
    return NodeUserData(**{**BASE, "role": "worker", "pool": "batch", "labels": {"tier": "batch"},
                                "docker_api": False, **changes})  # type: ignore[arg-type]


def files(params: NodeUserData) -> dict[str, str]:
    return {f.path: f.content for f in node_files(params)}


def test_rendering_is_deterministic_and_round_trips() -> None:
    text = render(manager())
    assert text == render(manager())
    document = yaml.safe_load(text)
    assert {f["path"] for f in document["write_files"]} == set(files(manager()))
    # Nothing one-shot: cloud-init only enables and starts the units; the converge service
    # does the rest and systemd reruns it until the node has converged.
    assert document["runcmd"][0] == ["systemctl", "daemon-reload"]
    assert document["runcmd"][1][:4] == ["systemctl", "enable", "--now", "--no-block"]
    assert "swarmstack-converge.service" in document["runcmd"][1]
    assert "swarmstack-health.service" in document["runcmd"][1]


def test_managers_get_the_api_and_clean_up_workers_neither() -> None:
    m, w = files(manager()), files(worker())
    # The API's drop-in is written at boot from the distribution's own docker.service.
    assert not any("docker.service.d" in path for path in m)
    # The certificates and key come from Key Vault on every converge run (renewals reach
    # running managers), never from the custom data.
    assert not any(path.startswith("/etc/docker/tls") for path in m)
    assert "/etc/systemd/system/swarmstack-cleanup.timer" in m
    assert not any("tls" in path or "cleanup" in path for path in w)
    # TLS settings join daemon.json at boot, once the server key is in place.
    assert "readonly DOCKER_API=true" in m[NODE_SCRIPT]
    assert "readonly DOCKER_API=false" in w[NODE_SCRIPT]
    assert "2376" not in w[DAEMON_BASE]


def test_logs_go_to_syslog_facilities_the_agent_ships() -> None:
    daemon = files(worker())[DAEMON_BASE]
    assert '"log-driver": "syslog"' in daemon and '"syslog-facility": "local0"' in daemon
    events = files(worker())["/etc/systemd/system/swarmstack-docker-events.service"]
    assert "docker events --format \"{{json .}}\"" in events and "local1.info" in events
    quiet = files(worker(logging=False))
    assert '"log-driver": "local"' in quiet[DAEMON_BASE]
    assert "/etc/systemd/system/swarmstack-docker-events.service" not in quiet


@pytest.mark.parametrize("schedule", ["42 1 * * *", "0 */6 * * *", "15 3 * * sun", "0 4 1 * *"])
def test_the_prune_timer_fires_when_the_config_says(schedule: str) -> None:
    timer = files(worker(prune_schedule=schedule))["/etc/systemd/system/swarmstack-prune.timer"]
    assert f"OnCalendar={to_systemd(parse_cron(schedule))}\n" in timer


def test_volumes_are_pruned_only_when_asked_with_the_same_commands_as_on_aws() -> None:
    from components.common.prune import prune_commands

    plain = files(worker())[NODE_SCRIPT]
    both = files(worker(prune_volumes=True, prune_until="90m"))[NODE_SCRIPT]
    assert "volume prune" not in plain and "volume prune" in both
    for commands, script in ((prune_commands("24h", False), plain), (prune_commands("90m", True), both)):
        rendered = " ".join(shlex.quote(command) for command in commands)
        assert f"readonly PRUNE_COMMANDS=({rendered})" in script
    assert "/etc/systemd/system/swarmstack-prune.timer" not in files(worker(prune=False))


def test_the_script_names_the_nodes_own_store_and_identity() -> None:
    script = files(worker())[NODE_SCRIPT]
    assert "readonly CLIENT_ID=12345678-1234-1234-1234-123456789012" in script
    assert "https://prod-abc123.vault.azure.net" in script
    assert "readonly POOL_LABELS=(tier=batch)" in script
    assert "PRIVATE KEY" not in render(manager())


@pytest.mark.parametrize(("change", "message"), [
    ({"vault_name": "no--dashes"}, "not a Key Vault name"),
    ({"identity_client_id": "me"}, "not a GUID"),
    ({"prune_schedule": "every day"}, "prune_schedule"),
    ({"labels": {"swarmstack.role": "x"}}, "label key 'swarmstack.role'"),
    ({"table_endpoint": "table"}, "table_endpoint 'table' must be an http"),
    ({"docker_api": True}, "only managers serve the Docker API"),
])
def test_bad_parameters_are_refused_before_rendering(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        worker(**change)


# As on AWS (test_userdata.SHELLCHECKED): shellcheck reads a manager's script and a worker's,
# which give every setting each form it takes; the others differ from them only in settings.
@pytest.mark.parametrize("params", [manager(), worker()], ids=["manager-api", "worker"])
def test_the_node_script_is_shellcheck_clean(tmp_path: Path, params: NodeUserData) -> None:
    script = tmp_path / "swarmstack-node"
    script.write_text(files(params)[NODE_SCRIPT])
    result = subprocess.run([tool_path("shellcheck"), "-s", "bash", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_a_manager_without_the_api_or_logging_runs_the_same_script_with_its_own_settings(tmp_path: Path) -> None:
    plain, api = files(manager(docker_api=False, logging=False))[NODE_SCRIPT], files(manager())[NODE_SCRIPT]
    assert body(plain) == body(api) and setting_names(plain) == setting_names(api) and plain != api
    script = tmp_path / "swarmstack-node"
    script.write_text(plain)
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0


def test_the_script_parses_and_refuses_unknown_commands(tmp_path: Path) -> None:
    script = tmp_path / "swarmstack-node"
    script.write_text(files(worker())[NODE_SCRIPT])
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    result = subprocess.run(["bash", str(script), "bogus"], capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "SWARMSTACK_STATE_DIR": str(tmp_path / "state"),
                                 "SWARMSTACK_RUN_DIR": str(tmp_path / "run"),
                                 "SWARMSTACK_LOG_FILE": str(tmp_path / "log")})
    assert result.returncode == 2 and "usage: swarmstack-node" in result.stderr


def test_the_compacted_azure_script_keeps_its_python_intact() -> None:
    from test_userdata import python_programs

    for params in (manager(), worker()):
        script = files(params)[NODE_SCRIPT]
        programs = python_programs(script)
        assert len(programs) >= 4
        for program in programs:
            compile(program, "<node script>", "exec")
