"""A stand-in for the docker CLI, for the node script's unit tests: one engine's swarm
state in $FAKE_DIR/engine.json ({"state": "inactive"|"active", "manager": bool,
"leader": bool, "tokens": {...}, "inits": n, "managers": [...], "label_rows": ["ID CLAIMED-INSTANCE
ADDR MANAGER-ADDR VERIFIED-INSTANCE", ...], "manager_status": ["ID Leader|Reachable|Unreachable"],
"remote_managers": ["ADDR:PORT"], "node_table": ["ID STATE AVAIL ROLE CLAIMED ADDR MGR-ADDR REACH VERIFIED LEAVING"],
"roles": {id: role}, "configs": {name: {"id", "created" (unix seconds), "labels"}},
"gone_nodes": [id], "leaderless": n (the next n `node inspect` calls find no leader), "init_locked": n
(the next n `swarm init` calls find the raft log still locked), "role_lag": n (after `node demote`
of itself, the engine still reads as a manager for n more `info` reads: raft has dropped it and
its manager has shut its control socket, which `{{.Swarm.Error}}` tells), "removal_blocked": bool
(raft cannot drop the demoted node: the managers left would have no quorum), "demoted_info_unanswered": n (after the demotion, the next n `info`
calls hang, as a demoted manager's did on real engines), "demote_unanswered": n (the next n
`node demote` calls take effect but time out: the manager's answer cut off as it stops),
"leave_unanswered": n (the next n `swarm leave` calls time out, the engine still a member: a
daemon waiting for its stopping manager)});
every call logged to $FAKE_DIR/calls.log with its whole argv (so a test can see no secret was on it). Answered
in the test process (server.py), one call at a time, as the engine's API serialises them."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from .call import Call, fail


def main(call: Call) -> None:
    with open(call.dir / "calls.log", "a") as log:
        log.write("docker " + " ".join(call.args) + "\n")
    path = call.dir / "engine.json"
    engine = json.loads(path.read_text())
    if engine.get("down"):
        fail("Cannot connect to the Docker daemon\n")
    out = run(engine, call.args, path)
    path.write_text(json.dumps(engine))
    if out is not None:
        call.print(out)


def run(engine: dict[str, Any], args: list[str], path: Path) -> str | None:
    fmt = args[args.index("--format") + 1] if "--format" in args else ""
    if args[0] == "version":
        return "20.10.24"
    if args[0] == "info":
        if engine.get("demoted") and engine.get("demoted_info_unanswered", 0) > 0:
            engine["info_unanswered"] = engine.get("info_unanswered", 0) + engine.pop("demoted_info_unanswered")
        if engine.get("info_unanswered", 0) > 0:  # a manager whose raft elects a leader: info hangs
            engine["info_unanswered"] -= 1
            path.write_text(json.dumps(engine))
            fail("", 124)
        if "LocalNodeState" in fmt:
            return engine["state"]
        if "ControlAvailable" in fmt:
            error = ""
            if engine.get("demoted") and engine.get("manager") and not engine.get("removal_blocked"):
                engine["role_lag"] = engine.get("role_lag", 0) - 1  # the role change nears the engine
                engine["manager"] = engine["role_lag"] >= 0
                error = ('rpc error: code = Unavailable desc = connection error: desc = "transport: Error while '
                         'dialing dial unix /var/run/docker/swarm/control.sock: connect: no such file or directory"')
            available = "true" if engine["state"] == "active" and engine.get("manager") else "false"
            return f"{available} {error}" if "Swarm.Error" in fmt else available
        if "RemoteManagers" in fmt:
            return " ".join(engine.get("remote_managers", []))
        if "NodeID" in fmt and engine.get("node_id_unanswered"):  # this query alone hangs (timeout's 124)
            fail("", 124)
        if "NodeID" in fmt:
            return "" if engine["state"] == "inactive" or engine.get("identity") is False else "self-node"
        return "engine-id"
    if args[:2] == ["swarm", "init"]:
        if engine["state"] == "active":
            fail("This node is already part of a swarm.\n")
        if engine.get("init_locked", 0) > 0:  # the old raft node, just stopped, still locks its log
            engine["init_locked"] -= 1
            path.write_text(json.dumps(engine))
            fail("Error response from daemon: manager stopped: can't initialize raft node: failed to open WAL: "
                 "fileutil: file already locked\n")
        engine.update(state="active", manager=True, leader=True, inits=engine.get("inits", 0) + 1)
        return "Swarm initialized"
    if args[:2] == ["swarm", "join-token"]:
        return engine["tokens"][args[-1]]
    if args[:2] == ["swarm", "leave"]:
        if engine.get("leave_unanswered", 0) > 0:
            engine["leave_unanswered"] -= 1
            path.write_text(json.dumps(engine))
            fail("", 124)
        if engine.get("manager") and "--force" not in args:
            fail("You are attempting to leave the swarm on a node that is participating as a manager.\n")
        engine.update(state="inactive", manager=False, leader=False, left=True, identity=None)
        return None
    if args[:2] == ["node", "inspect"] and ".Status.State" in fmt:  # node_table
        return "\n".join(engine.get("node_table", []))
    if args[:2] == ["node", "inspect"] and "Spec.Labels" in fmt:  # label_nodes' listing
        return "\n".join(engine.get("label_rows", []))
    if args[:2] == ["node", "inspect"] and ".Spec.Role" in fmt:
        return engine.get("roles", {}).get(args[2], "worker")
    if args[:2] == ["node", "inspect"] and engine.get("leaderless", 0) > 0:  # raft elects: the next n go unanswered
        engine["leaderless"] -= 1
        path.write_text(json.dumps(engine))
        fail("Error response from daemon: rpc error: code = Unknown desc = The swarm does not have a leader\n")
    if args[:2] == ["node", "inspect"] and args[2] in engine.get("unanswered_nodes", []):
        fail("Error response from daemon: rpc error: code = Unknown desc = The swarm does not have a leader\n")
    if args[:2] == ["node", "inspect"] and args[2] in engine.get("gone_nodes", []):
        fail(f"Error: No such node: {args[2]}\n")
    if args[:2] == ["node", "inspect"]:
        if "Leader" in fmt:
            return "true" if engine.get("leader") else "false"
        if "Reachability" in fmt:
            return "reachable" if engine.get("manager") else ""
        return ""
    if args[:2] == ["node", "ls"] and "{{.ID}} {{.ManagerStatus}}" in fmt:  # the backup taker's listing
        return "\n".join(engine.get("manager_status", []))
    if args[:2] == ["node", "ls"]:
        if engine.get("node_ls_fails"):
            fail("Error response from daemon: rpc error: code = Unknown desc = The swarm does not have a leader\n")
        return "\n".join(engine.get("node_ls", []))
    if args[:2] in (["node", "update"], ["node", "rm"]):
        return None
    if args[:2] == ["node", "demote"]:
        if engine.get("demote_refused"):
            fail("Error response from daemon: can't remove node: quorum\n")
        # Raft hands leadership over at once, then drops the node from its members unless that
        # would cost a quorum ("removal_blocked"); the engine reads as a worker "role_lag" reads later.
        engine.update(leader=False, demoted=True,
                      manager=bool(engine.get("role_lag") or engine.get("removal_blocked")))
        if engine.get("demote_unanswered", 0) > 0:  # done, but its answer cut off with the manager
            engine["demote_unanswered"] -= 1
            path.write_text(json.dumps(engine))
            fail("", 124)
        return None
    if args[0] == "ps":
        return ""
    if args[0] == "config":
        return config(engine, args[1:], fmt)
    fail(f"the fake docker has no {' '.join(args[:2])}\n")


def config(engine: dict[str, Any], args: list[str], fmt: str) -> str | None:
    """Swarm configs, as raft keeps them: a name exists once; `rm` takes an id or a name."""
    configs = engine.setdefault("configs", {})
    if args[0] == "create":
        name = next(a for a in args[1:] if not a.startswith("--") and "=" not in a)
        labels = dict(args[i + 1].split("=", 1) for i, a in enumerate(args) if a == "--label")
        if name in configs:
            fail(f"Error response from daemon: rpc error: code = AlreadyExists desc = config {name} already exists\n")
        engine["config_serial"] = engine.get("config_serial", 0) + 1
        configs[name] = {"id": f"cfg{engine['config_serial']}", "created": int(time.time()), "labels": labels}
        return configs[name]["id"]
    if args[0] == "inspect":
        item = configs.get(args[1])
        if item is None:
            fail(f"Error: no such config: {args[1]}\n")
        holder = item["labels"].get("swarmstack.holder", "")
        if "CreatedAt" in fmt:
            return f"{item['id']} {item['created']} {holder}"
        return f"{item['id']} {holder}"
    if args[0] == "rm":
        for name, item in list(configs.items()):
            if args[1] in (item["id"], name):
                del configs[name]
                return args[1]
        fail(f"Error: no such config: {args[1]}\n")
    fail(f"the fake docker has no config {args[0]}\n")
