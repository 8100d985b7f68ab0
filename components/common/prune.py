"""The scheduled prune a node runs, on either cloud. Pure.

What `docker system prune --all` would remove, one kind at a time, so that networks
can be spared where they must be: on a manager, `docker network prune` would delete
every overlay network no task uses at that moment, among them the ones stacks declare
`external: true` and expect to find (a worker only sees its own local networks, so it
may prune them). The role is read when the prune runs, not when it is rendered: the
same commands run on every node (the AWS association targets the whole cluster) and a
worker can be promoted.
"""

from __future__ import annotations

import shlex

IS_WORKER = "[ \"$(docker info --format '{{.Swarm.ControlAvailable}}' 2>/dev/null)\" = false ]"
"""True when the engine answers that it is not a manager; false on a manager, and false when
`docker info` fails (an engine that cannot say is never taken for a worker)."""


def prune_commands(until: str, volumes: bool) -> list[str]:
    """The prune commands, each a complete shell command.

    Containers, images and build cache older than `until` everywhere; local networks
    only on workers (never on a manager: unused overlay networks, `external` ones among
    them, would go). `docker system prune --volumes` refuses `--filter until=`, so
    volumes (only when asked for: pruning them destroys data) are pruned by their own
    command; `docker volume prune -a` takes every unused volume, named ones included.
    """
    older = f"--filter until={shlex.quote(until)}"
    commands = [
        f"docker container prune --force {older}",
        f"docker image prune --all --force {older}",
        f"docker builder prune --all --force {older}",
        f"if {IS_WORKER}; then docker network prune --force {older}; fi",
    ]
    if volumes:
        commands.append("docker volume prune --all --force")
    return commands
