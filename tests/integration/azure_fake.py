"""A small fake of the Azure services an Azure node talks to that have no official
emulator, one process for many nodes; storage itself is Azurite's (`azurite.py`).

- IMDS (`/metadata/...`): instance metadata, managed identity tokens and Scheduled
  Events, answered by the address the request comes from, as the real service does.
  Requests without `Metadata: true` get 400, as on Azure. Tokens are JWTs as Azure AD
  issues them (`azurite.aad_token`: the tenant's issuer, the resource as audience, an
  expiry, a unique id), all recorded: `state()["issued"]`.
- Key Vault (`/kv/secrets/<name>`): GET and PUT of secret values.
- ARM (`/arm/subscriptions/.../providers/Microsoft.Compute/...`): the machines that
  exist, for the managers' clean-up and the stale-marker check.
- The storage gate (`--gate HOST:PORT=UPSTREAM`, HTTPS with `--tls CERT KEY CA`): Azure's
  role-based access in front of Azurite, which has none. A request the caller's identity
  is granted is forwarded to Azurite unchanged (Azurite checks the token's issuer,
  audience and lifetime and does the storage); any other is refused with 403, as Azure's
  front end refuses it (`AuthorizationPermissionMismatch`).

Access is enforced as the stack's role assignments grant it: a token names the
identity (client id, `appid`) it was issued to, and each identity may do only what
`components/azure/store.py` grants its role (workers: read the worker token,
read the swarm table, write the leaving table; managers: read and write both tokens,
read the server key, write both tables, write the backup container; both: Reader of the
resource group for managers only). Key Vault and ARM take only tokens of their own
audience that have not expired. Anything else is 403, so a script that oversteps fails here.

A control API under `/_control/` lets the test set nodes, events and machines.
Run as `python azure_fake.py <host> <port> [--gate HOST:PORT=URL]... [--tls CERT KEY CA]`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import ssl
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from azurite import aad_token, claims_of

LOCK = threading.Lock()
NODES: dict[str, dict[str, Any]] = {}
"""By address: compute metadata (`vmId`, `name`, `zone`, …) and `role`."""
EVENTS: dict[str, list[dict[str, Any]]] = {}
"""Scheduled events by address; approved ids are recorded in APPROVED."""
APPROVED: list[str] = []
SECRETS: dict[str, str] = {}
MACHINES: set[str] = set()
"""vmIds of the machines that exist (ARM's view)."""
IDENTITIES: dict[str, str] = {}
"""client id -> role (`manager` or `worker`)."""
CALLS: list[tuple[str, str, str, int]] = []
"""(role, method, path, status) of every data-plane call, for the test to inspect; storage
paths are Azurite's (`/<account>/<table>...`, `/<account>/<container>/<blob>`)."""
ISSUED: list[str] = []
"""Every access token the IMDS issued (each carries a random part)."""

# What each role may do: (service, method regex, path regex). Storage paths name the
# account first; the gate's upstream says which service (table or blob) a request is for.
GRANTS = {
    "manager": [
        ("kv", r"GET|PUT", r"/kv/secrets/swarm-(manager|worker)-token"),
        ("kv", r"GET", r"/kv/secrets/docker-(ca-cert|server-cert|server-key)"),
        ("table", r"GET|POST|PUT|DELETE", r"/\w+/(swarm|leaving)\b.*"),
        ("arm", r"GET", r"/arm/.*"),
        ("blob", r"GET|PUT", r"/\w+/backups(/swarm/[^/]+)?"),
    ],
    "worker": [
        ("kv", r"GET", r"/kv/secrets/swarm-worker-token"),
        ("table", r"GET", r"/\w+/swarm\b.*"),
        ("table", r"GET|POST|PUT|DELETE", r"/\w+/leaving\b.*"),
    ],
}
AUDIENCES = {"kv": "https://vault.azure.net", "arm": "https://management.azure.com"}
"""Key Vault and ARM take tokens of their own audience only (storage's is Azurite's check)."""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        return

    # --- plumbing ---

    def _send(self, code: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else (body if isinstance(body, bytes) else
                                          (body.encode() if isinstance(body, str) else json.dumps(body).encode()))
        self.send_response(code)
        self.send_header("Content-Type", "application/json" if not isinstance(body, str) else "text/plain")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw) if raw else None

    def _role(self, service: str) -> str | None:
        """The role of the identity the bearer token was issued to; None when the token is
        not one the fake IMDS could have issued, has expired, or (Key Vault, ARM) is for
        another audience."""
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return None
        claims = claims_of(auth[len("Bearer "):])
        if not claims or float(claims.get("exp", 0)) < time.time():
            return None
        if service in AUDIENCES and claims.get("aud") != AUDIENCES[service]:
            return None
        return IDENTITIES.get(str(claims.get("appid", "")))

    def _allowed(self, service: str, role: str | None, path: str) -> bool:
        return role is not None and any(s == service and re.fullmatch(m, self.command) and re.fullmatch(p, path)
                                        for s, m, p in GRANTS.get(role, []))

    def _route(self) -> None:
        url = urlparse(self.path)
        path = unquote(url.path)
        query = parse_qs(url.query)
        if path.startswith("/_control/"):
            return self._control(path[len("/_control/"):])
        if path.startswith("/metadata/"):
            return self._imds(path[len("/metadata/"):], query)
        service = path.lstrip("/").split("/", 1)[0]
        role = self._role(service)
        if not self._allowed(service, role, path):
            with LOCK:
                CALLS.append((role or "-", self.command, path, 403))
            return self._send(403, {"error": {"code": "Forbidden", "message": f"{role} may not {self.command} {path}"}})
        status = self._data(path, query)
        with LOCK:
            CALLS.append((role or "-", self.command, path, status))

    do_GET = do_PUT = do_POST = do_DELETE = _route

    # --- IMDS ---

    def _imds(self, path: str, query: dict[str, list[str]]) -> None:
        if self.headers.get("Metadata") != "true":
            return self._send(400, {"error": "Metadata header missing"})
        ip = self.client_address[0]
        with LOCK:
            node = NODES.get(ip)
        if node is None:
            return self._send(404, {"error": f"no machine at {ip}"})
        if path == "instance/compute":
            return self._send(200, node["compute"])
        if path == "instance/network/interface/0/ipv4/ipAddress/0/privateIpAddress":
            return self._send(200, ip)
        if path == "identity/oauth2/token":
            client = (query.get("client_id") or [""])[0]
            resource = (query.get("resource") or [""])[0]
            if client != node["client_id"]:
                return self._send(400, {"error": "invalid_request",
                                        "error_description": "identity not assigned to this machine"})
            # A value no one could guess (a unique id, a random signature), recorded: a test
            # looks for every issued token on every command line (issue 10).
            token, expires = aad_token(client, resource)
            with LOCK:
                ISSUED.append(token)
            return self._send(200, {"access_token": token, "expires_on": str(expires), "expires_in": "3600",
                                    "resource": resource, "token_type": "Bearer"})
        if path == "scheduledevents":
            if self.command == "POST":
                body = self._body() or {}
                with LOCK:
                    for start in body.get("StartRequests", []):
                        APPROVED.append(start["EventId"])
                        EVENTS[ip] = [e for e in EVENTS.get(ip, []) if e["EventId"] != start["EventId"]]
                return self._send(200, "")
            with LOCK:
                events = list(EVENTS.get(ip, []))
            return self._send(200, {"DocumentIncarnation": len(APPROVED) + 1, "Events": events})
        return self._send(404, {"error": path})

    # --- Key Vault, ARM ---

    def _data(self, path: str, query: dict[str, list[str]]) -> int:
        if path.startswith("/kv/secrets/"):
            name = path.rsplit("/", 1)[-1]
            if self.command == "PUT":
                value = (self._body() or {}).get("value", "")
                with LOCK:
                    SECRETS[name] = value
                self._send(200, {"value": value, "id": f"https://vault/secrets/{name}/{uuid.uuid4().hex}"})
                return 200
            with LOCK:
                value = SECRETS.get(name)
            if value is None:
                self._send(404, {"error": {"code": "SecretNotFound"}})
                return 404
            self._send(200, {"value": value})
            return 200
        if path.startswith("/arm/"):
            return self._arm(path)
        self._send(404, {"error": path})
        return 404

    def _arm(self, path: str) -> int:
        """One Uniform scale set per pool (`<cluster>-<pool>`, tagged with its pool), its
        machines (those that exist) and their network interfaces, as ARM lists them."""
        with LOCK:
            nodes = [n for n in NODES.values() if n["compute"]["vmId"] in MACHINES]
            sets = {n["compute"]["vmScaleSetName"]: n.get("pool", "") for n in NODES.values()}
        base = path[len("/arm"):].split("/providers/")[0]
        set_id = f"{base}/providers/Microsoft.Compute/virtualMachineScaleSets"
        match = re.search(r"/virtualMachineScaleSets/([^/]+)/(virtualMachines|networkInterfaces)$", path)
        if path.endswith("/virtualMachineScaleSets"):
            self._send(200, {"value": [{"name": name, "id": f"{set_id}/{name}", "tags": {"swarmstack:pool": pool},
                                        "properties": {"orchestrationMode": "Uniform"}}
                                       for name, pool in sorted(sets.items())]})
        elif match:
            name, kind = match.groups()
            members = [n for n in nodes if n["compute"]["vmScaleSetName"] == name]

            def vm_id(n: dict[str, Any]) -> str:
                return f"{set_id}/{name}/virtualMachines/{n['compute']['name']}"

            if kind == "virtualMachines":
                self._send(200, {"value": [{"id": vm_id(n), "zones": [n["compute"]["zone"]],
                                            "sku": {"name": n["compute"]["vmSize"]},
                                            "properties": {"vmId": n["compute"]["vmId"]}} for n in members]})
            else:
                self._send(200, {"value": [{"properties": {
                    "virtualMachine": {"id": vm_id(n)},
                    "ipConfigurations": [{"properties": {"privateIPAddress": n["ip"]}}]}} for n in members]})
        elif path.endswith("/virtualMachines") or path.endswith("/networkInterfaces"):
            self._send(200, {"value": []})
        else:
            self._send(404, {"error": path})
            return 404
        return 200

    # --- control ---

    def _control(self, what: str) -> None:
        body = self._body() if self.command in ("POST", "PUT") else None
        with LOCK:
            if what == "node":  # {"ip", "compute", "client_id", "role", "pool"}
                NODES[body["ip"]] = body
                IDENTITIES[body["client_id"]] = body["role"]
                MACHINES.add(body["compute"]["vmId"])
            elif what == "gone":  # {"vmId"}
                MACHINES.discard(body["vmId"])
            elif what == "event":  # {"ip", "event"}
                EVENTS.setdefault(body["ip"], []).append(body["event"])
            elif what == "secret":  # {"name", "value"}
                SECRETS[body["name"]] = body["value"]
            elif what == "state":
                return self._send(200, {"secrets": SECRETS, "approved": APPROVED, "calls": CALLS, "issued": ISSUED})
            else:
                return self._send(404, {"error": what})
        self._send(200, {})


class Gate(Handler):
    """Azure's role-based access in front of Azurite: the caller's identity must be
    granted the request (GRANTS, this gate's service); a granted request goes to Azurite
    unchanged (its Authorization header included: Azurite checks the token) and its
    answer comes back unchanged. Every request is recorded in CALLS."""

    service = "table"
    upstream = urlparse("https://127.0.0.1:10002")
    context: ssl.SSLContext | None = None

    def _route(self) -> None:
        path = unquote(urlparse(self.path).path)
        role = self._role(self.service)
        if not self._allowed(self.service, role, path):
            with LOCK:
                CALLS.append((role or "-", self.command, path, 403))
            # Azure storage's refusal of a token without the role (its data actions), in the
            # service's own error shape (Table: OData JSON; Blob: XML).
            message = ("This request is not authorized to perform this operation using this permission."
                       f"\nRequestId:{uuid.uuid4()}")
            if self.service == "table":
                body = json.dumps({"odata.error": {"code": "AuthorizationPermissionMismatch",
                                                   "message": {"lang": "en-US", "value": message}}})
                kind = "application/json;odata=minimalmetadata"
            else:
                body = ('<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthorizationPermissionMismatch</Code>'
                        f"<Message>{message}</Message></Error>")
                kind = "application/xml"
            self.send_response(403)
            self.send_header("Content-Type", kind)
            self.send_header("x-ms-error-code", "AuthorizationPermissionMismatch")
            self.send_header("Content-Length", str(len(body.encode())))
            self.end_headers()
            self.wfile.write(body.encode())
            return
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else None
        connection = http.client.HTTPSConnection(self.upstream.hostname or "", self.upstream.port, timeout=60,
                                                 context=self.context)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
            connection.request(self.command, self.path, body=data, headers=headers)
            answer = connection.getresponse()
            body_out = answer.read()
            status = answer.status
            out = [(k, v) for k, v in answer.getheaders()
                   if k.lower() not in ("connection", "keep-alive", "transfer-encoding", "content-length")]
        except OSError as err:
            status, out, body_out = 502, [("Content-Type", "text/plain")], f"upstream: {err}".encode()
        finally:
            connection.close()
        self.send_response(status)
        for key, value in out:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body_out)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body_out)
        with LOCK:
            CALLS.append((role or "-", self.command, path, status))

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_MERGE = do_PATCH = _route


def serve(server: ThreadingHTTPServer) -> None:
    server.daemon_threads = True
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--gate", action="append", default=[],
                        help="SERVICE@HOST:PORT=UPSTREAM_URL: a storage gate (table or blob) in front of Azurite")
    parser.add_argument("--tls", nargs=3, metavar=("CERT", "KEY", "CA"), help="the gates' certificate and the CA")
    args = parser.parse_args()
    threads = []
    for gate in args.gate:
        listen, upstream = gate.split("=", 1)
        service, _, listen = listen.partition("@")
        assert service in ("table", "blob"), gate
        host, port = listen.rsplit(":", 1)
        assert args.tls, "a storage gate serves HTTPS only (--tls)"
        cert, key, ca = args.tls
        upstream_url = urlparse(upstream)
        kind = type("Gate", (Gate,), {
            "service": service, "upstream": upstream_url,
            "context": ssl.create_default_context(cafile=ca)})
        server = ThreadingHTTPServer((host, int(port)), kind)
        server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_context.load_cert_chain(cert, key)
        server.socket = server_context.wrap_socket(server.socket, server_side=True)
        threads.append(threading.Thread(target=serve, args=(server,), daemon=True))
    for thread in threads:
        thread.start()
    serve(ThreadingHTTPServer((args.host, args.port), Handler))


if __name__ == "__main__":
    main()
