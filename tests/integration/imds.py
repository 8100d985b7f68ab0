"""A stand-in for the EC2 instance metadata service (IMDSv2), one for many nodes.

It answers each node as the real service answers an instance: by the address the
request comes from. What it serves for node `<ip>` is the JSON file `<dir>/<ip>.json`
(`{"meta-data/instance-id": "i-...", ...}`), read on every request, so a test changes
a node's metadata (e.g. `meta-data/autoscaling/target-lifecycle-state`) by rewriting
that file. IMDSv2 only: a GET without a token from a PUT to `/latest/api/token` gets 401.

Run as `python imds.py <host> <port> <dir>`.
"""

from __future__ import annotations

import json
import secrets
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

TOKENS: set[str] = set()
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    directory = Path(".")

    def log_message(self, format: str, *args: object) -> None:
        return

    def _answer(self, code: int, body: str = "") -> None:
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self) -> None:
        if self.path != "/latest/api/token":
            self._answer(404)
            return
        ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
        if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
            self._answer(400)
            return
        token = secrets.token_urlsafe(24)
        with LOCK:
            TOKENS.add(token)
        self._answer(200, token)

    def do_GET(self) -> None:
        with LOCK:
            known = self.headers.get("X-aws-ec2-metadata-token", "") in TOKENS
        if not known:
            self._answer(401)
            return
        if not self.path.startswith("/latest/"):
            self._answer(404)
            return
        node = self.directory / f"{self.client_address[0]}.json"
        try:
            metadata = json.loads(node.read_text())
        except FileNotFoundError:
            self._answer(404)
            return
        value = metadata.get(self.path[len("/latest/"):])
        if value is None:
            self._answer(404)
        else:
            self._answer(200, str(value))


def main(host: str, port: str, directory: str) -> None:
    Handler.directory = Path(directory)
    ThreadingHTTPServer((host, int(port)), Handler).serve_forever()


if __name__ == "__main__":
    main(*sys.argv[1:])
