"""The `docker system prune` a node runs on schedule, on either cloud. Pure."""

from __future__ import annotations

import shlex


def prune_commands(until: str, volumes: bool) -> list[str]:
    """The prune commands.

    `docker system prune --volumes` refuses `--filter until=`, so volumes (only when
    asked for: pruning them destroys data) are pruned by a second command; `docker
    volume prune -a` takes every unused volume, named ones included.
    """
    commands = [f"docker system prune --all --force --filter until={shlex.quote(until)}"]
    if volumes:
        commands.append("docker volume prune --all --force")
    return commands
