"""A stand-in for curl, for the node script's unit tests: the EC2 instance metadata
service (from $FAKE_DIR/imds.json) and the Docker engine API's POST /swarm/join over
the unix socket (it joins the fake engine of docker.py). Calls are logged with argv.
imds.json's "_hidden_for": {path: n} keeps a path unanswered for its next n reads (a
notice that arrives later)."""

from __future__ import annotations

import json
from pathlib import Path

from .call import Call, fail


def option(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def answer(call: Call, out: Path | None, body: str, code: str) -> None:
    """The engine's answer as curl gives it: the body to `-o FILE` (else to stdout), then
    `-w`'s format with its status (`%{http_code}`, `\\n` a newline)."""
    if out is not None:
        out.write_text(body)
    else:
        call.write(body)
    call.write((option(call.args, "-w") or "").replace("\\n", "\n").replace("%{http_code}", code))


def main(call: Call) -> None:
    args = call.args
    with open(call.dir / "calls.log", "a") as log:
        log.write("curl " + " ".join(args) + "\n")
    url = args[-1]
    if "--unix-socket" in args:
        engine_path = call.dir / "engine.json"
        engine = json.loads(engine_path.read_text())
        body_arg = option(args, "--data-binary") or ""
        body = json.loads(call.path(body_arg[1:]).read_text()) if body_arg.startswith("@") else {}
        target = option(args, "-o")
        out = call.path(target) if target else None  # else the body on stdout, before -w's
        if url.endswith("/swarm/join"):  # every attempt's managers, in order
            with open(call.dir / "joins.log", "a") as joins:
                joins.write(" ".join(body.get("RemoteAddrs", [])) + "\n")
        ok = url.endswith("/swarm/join") and body.get("JoinToken") in engine.get("valid_tokens", [])
        if ok and engine.get("stuck_joins", 0) > 0:  # sent during an election: 20 s, then on in the background
            # a node identity (its certificate) if the engine got that far ("stuck_identity")
            engine.update(stuck_joins=engine["stuck_joins"] - 1, state="pending",
                          identity=bool(engine.get("stuck_identity")))
            engine_path.write_text(json.dumps(engine))
            answer(call, out, '{"message":"Timeout was reached before node joined. The attempt to join the swarm '
                   'will continue in the background. Use the \\"docker info\\" command to see the current swarm '
                   'status of your node."}', "503")
            return
        if ok:
            engine.update(state="active", manager=body["JoinToken"].endswith("manager"), joined=body, identity=True)
            engine_path.write_text(json.dumps(engine))
        answer(call, out, "" if ok else '{"message": "invalid join token"}', "200" if ok else "400")
        return
    metadata = json.loads((call.dir / "imds.json").read_text())
    if "-X" in args and option(args, "-X") == "PUT":
        call.print("imds-token")
        return
    path = url.split("/latest/", 1)[-1]
    hidden = metadata.get("_hidden_for", {})  # {path: n}: the path answers only from its (n+1)th read on
    if hidden.get(path, 0) > 0:
        hidden[path] -= 1
        (call.dir / "imds.json").write_text(json.dumps(metadata))
        fail("", 22)
    if path not in metadata:
        fail("", 22)  # -f: an HTTP error
    call.print(metadata[path])
