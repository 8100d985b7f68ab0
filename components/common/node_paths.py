"""Where a node keeps swarmstack's files, defined once: the renderer writes them
(`userdata/render.py`), the node script and the units name them (their templates take
them from here), and the tests read the rendered files by these paths. Pure.

The node script takes each directory from the environment first (`SWARMSTACK_STATE_DIR`
and so on), so the tests can run it in a scratch directory; these are production's.
"""

from __future__ import annotations

NODE_SCRIPT = "/usr/local/sbin/swarmstack-node"
"""The node script; every swarmstack unit runs `NODE_SCRIPT <command>`."""
UNIT_DIR = "/etc/systemd/system"
"""Where the swarmstack units are written."""
DAEMON_BASE = "/etc/swarmstack/daemon.json"
"""The Docker daemon settings as rendered; the script merges them into Docker's own."""
DOCKER_DROPIN = f"{UNIT_DIR}/docker.service.d/swarmstack-api.conf"
"""The docker.service drop-in that opens the TLS Docker API on managers."""
STATE_DIR = "/var/lib/swarmstack"
"""What the node keeps across reboots."""
RUN_DIR = "/run/swarmstack"
"""What the node keeps until the next boot (locks, markers, the health file)."""
HEALTH_DIR = f"{RUN_DIR}/health"
"""Azure: the Application Health extension's file, served on 127.0.0.1."""
LOG_FILE = "/var/log/swarmstack/bootstrap.log"
"""The node script's log."""
RESTORE_TOOL_PATH = "/usr/local/lib/swarmstack/restore.sh"
"""Azure: the managers' restore tool, written from the custom data."""
REGISTRY_TOOL = "/usr/local/sbin/swarmstack-registry"
"""The registry tool (`templates/node/registry.sh.j2`): Azure writes it from the custom data,
AWS's State Manager association (`components/aws/registry.py`) from its own script."""
CREDENTIAL_HELPER = "/usr/local/sbin/docker-credential-swarmstack"
"""The Docker CLI's credential helper for the cluster's registry: a link to the registry tool.
In `sbin`, which root's PATH holds on Amazon Linux too (under `sudo -i`; its sudo's
secure_path and root's profile leave out /usr/local/bin)."""


def template_paths() -> dict[str, str]:
    """The paths as the templates name them (`{{ node_script }}`, `{{ state_dir }}`, ...)."""
    return {"node_script": NODE_SCRIPT, "daemon_base": DAEMON_BASE, "docker_dropin": DOCKER_DROPIN,
            "state_dir": STATE_DIR, "run_dir": RUN_DIR, "health_dir": HEALTH_DIR, "log_file": LOG_FILE,
            "restore_tool_path": RESTORE_TOOL_PATH, "registry_tool": REGISTRY_TOOL,
            "credential_helper": CREDENTIAL_HELPER}
