"""A small fake of the Azure services an Azure node talks to, one process for many nodes.

- IMDS (`/metadata/...`): instance metadata, managed identity tokens (each with a random
  part, all recorded: `state()["issued"]`) and Scheduled Events, answered by the address
  the request comes from, as the real service does.
  Requests without `Metadata: true` get 400, as on Azure.
- Key Vault (`/kv/secrets/<name>`): GET and PUT of secret values.
- Table storage (`/tables/<table>...`): insert (409 when the row exists), get, replace
  with If-Match (412 on a stale ETag), delete, and a PartitionKey filter.
- ARM (`/arm/subscriptions/.../providers/Microsoft.Compute/...`): the machines that
  exist, for the managers' clean-up and the stale-marker check.
- Blob storage (`/blob/backups/...`): put, get and list of the managers' raft backups.

Access is enforced as the stack's role assignments grant it: a token names the
identity (client id) it was issued to, and each identity may do only what
`components/azure/swarm_store.py` grants its role (workers: read the worker token,
read the swarm table, write the leaving table; managers: read and write both tokens,
read the server key, write both tables; both: Reader of the resource group for
managers only). Anything else is 403, so a script that oversteps fails here.

A control API under `/_control/` lets the test set nodes, events and machines.
Run as `python azure_fake.py <host> <port>`.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

LOCK = threading.Lock()
NODES: dict[str, dict[str, Any]] = {}
"""By address: compute metadata (`vmId`, `name`, `zone`, …) and `role`."""
EVENTS: dict[str, list[dict[str, Any]]] = {}
"""Scheduled events by address; approved ids are recorded in APPROVED."""
APPROVED: list[str] = []
SECRETS: dict[str, str] = {}
TABLES: dict[str, dict[tuple[str, str], dict[str, Any]]] = {"swarm": {}, "leaving": {}}
BLOBS: dict[str, dict[str, bytes]] = {"backups": {}}
LIST_PAGE = 2
"""Blob storage (`/blob/<container>/<name>`): the managers' raft backups."""
MACHINES: set[str] = set()
"""vmIds of the machines that exist (ARM's view)."""
IDENTITIES: dict[str, str] = {}
"""client id -> role (`manager` or `worker`)."""
CALLS: list[tuple[str, str, str, int]] = []
"""(role, method, path, status) of every data-plane call, for the test to inspect."""
ISSUED: list[str] = []
"""Every access token the IMDS issued (each carries a random part)."""

# What each role may do: (method regex, path regex).
GRANTS = {
    "manager": [
        (r"GET|PUT", r"/kv/secrets/swarm-(manager|worker)-token"),
        (r"GET", r"/kv/secrets/docker-server-key"),
        (r"GET|POST|PUT|DELETE", r"/tables/(swarm|leaving)\b.*"),
        (r"GET", r"/arm/.*"),
        (r"GET|PUT", r"/blob/backups(/swarm/[^/]+)?"),
    ],
    "worker": [
        (r"GET", r"/kv/secrets/swarm-worker-token"),
        (r"GET", r"/tables/swarm\b.*"),
        (r"GET|POST|PUT|DELETE", r"/tables/leaving\b.*"),
    ],
}
ENTITY = re.compile(r"^/tables/(\w+)\(PartitionKey='([^']*)',RowKey='([^']*)'\)$")


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

    def _role(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        match = re.fullmatch(r"Bearer tok\.([0-9a-f-]+)\.(.+)", auth)
        return IDENTITIES.get(match.group(1)) if match else None

    def _allowed(self, role: str | None, path: str) -> bool:
        return role is not None and any(re.fullmatch(m, self.command) and re.fullmatch(p, path)
                                        for m, p in GRANTS.get(role, []))

    def _route(self) -> None:
        url = urlparse(self.path)
        path = unquote(url.path)
        query = parse_qs(url.query)
        if path.startswith("/_control/"):
            return self._control(path[len("/_control/"):])
        if path.startswith("/metadata/"):
            return self._imds(path[len("/metadata/"):], query)
        role = self._role()
        if not self._allowed(role, path):
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
            # A value no one could guess, recorded: a test looks for every issued token on
            # every command line (issue 10).
            token = f"tok.{client}.{uuid.uuid4().hex}.{resource}"
            with LOCK:
                ISSUED.append(token)
            return self._send(200, {"access_token": token, "expires_on": "4102444800",
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

    # --- Key Vault, tables, ARM ---

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
        if path.startswith("/tables/"):
            return self._table(path, query)
        if path.startswith("/arm/"):
            return self._arm(path)
        if path.startswith("/blob/"):
            return self._blob(path, query)
        self._send(404, {"error": path})
        return 404

    def _table(self, path: str, query: dict[str, list[str]]) -> int:
        match = ENTITY.match(path)
        if match:
            table, partition, row = match.groups()
            with LOCK:
                rows = TABLES.setdefault(table, {})
                current = rows.get((partition, row))
                if self.command == "GET":
                    if current is None:
                        self._send(404, {"odata.error": {"code": "ResourceNotFound"}})
                        return 404
                    self._send(200, current)
                    return 200
                if self.command == "DELETE":
                    if current is None:
                        self._send(404, {"odata.error": {"code": "ResourceNotFound"}})
                        return 404
                    del rows[(partition, row)]
                    self._send(204)
                    return 204
                # PUT: replace, guarded by If-Match
                match_tag = self.headers.get("If-Match")
                if current is None:
                    self._send(404, {"odata.error": {"code": "ResourceNotFound"}})
                    return 404
                if match_tag not in ("*", current["odata.etag"]):
                    self._send(412, {"odata.error": {"code": "UpdateConditionNotSatisfied"}})
                    return 412
                entity = {**(self._body() or {}), "odata.etag": f"W/\"{uuid.uuid4().hex}\""}
                rows[(partition, row)] = entity
                self._send(204, None, {"ETag": entity["odata.etag"]})
                return 204
        table_match = re.fullmatch(r"/tables/(\w+)(\(\))?", path)
        if not table_match:
            self._send(400, {"error": path})
            return 400
        table = table_match.group(1)
        if self.command == "POST":
            entity = self._body() or {}
            key = (entity.get("PartitionKey", ""), entity.get("RowKey", ""))
            with LOCK:
                rows = TABLES.setdefault(table, {})
                if key in rows:
                    self._send(409, {"odata.error": {"code": "EntityAlreadyExists"}})
                    return 409
                rows[key] = {**entity, "odata.etag": f"W/\"{uuid.uuid4().hex}\""}
            self._send(204)
            return 204
        wanted = re.search(r"PartitionKey eq '([^']*)'", (query.get("$filter") or [""])[0])
        with LOCK:
            rows = [v for (p, _), v in TABLES.get(table, {}).items() if wanted is None or p == wanted.group(1)]
        self._send(200, {"value": rows})
        return 200

    def _blob(self, path: str, query: dict[str, list[str]]) -> int:
        """Put Blob (block blobs), Get Blob and List Blobs, as the Blob service answers them;
        OAuth callers must name a service version (400 without x-ms-version, as on Azure)."""
        if not self.headers.get("x-ms-version"):
            self._send(400, "MissingRequiredHeader: x-ms-version")
            return 400
        container, _, name = path[len("/blob/"):].partition("/")
        if container not in BLOBS:
            self._send(404, "ContainerNotFound")
            return 404
        if not name:
            if query.get("restype") != ["container"] or query.get("comp") != ["list"]:
                self._send(400, "InvalidQueryParameterValue")
                return 400
            prefix = (query.get("prefix") or [""])[0]
            start = int((query.get("marker") or ["0"])[0])
            with LOCK:
                names = sorted(n for n in BLOBS[container] if n.startswith(prefix))
            # Pages of LIST_PAGE names (Azure's are 5,000), so that a caller must follow NextMarker.
            page, more = names[start:start + LIST_PAGE], start + LIST_PAGE < len(names)
            blobs = "".join(f"<Blob><Name>{n}</Name></Blob>" for n in page)
            marker = f"<NextMarker>{start + LIST_PAGE}</NextMarker>" if more else "<NextMarker />"
            self._send(200, f'<?xml version="1.0" encoding="utf-8"?><EnumerationResults><Blobs>{blobs}</Blobs>'
                            f"{marker}</EnumerationResults>")
            return 200
        if self.command == "PUT":
            if self.headers.get("x-ms-blob-type") != "BlockBlob":
                self._send(400, "MissingRequiredHeader: x-ms-blob-type")
                return 400
            length = int(self.headers.get("Content-Length") or 0)
            data = self.rfile.read(length) if length else b""
            with LOCK:
                BLOBS[container][name] = data
            self._send(201)
            return 201
        with LOCK:
            data = BLOBS[container].get(name)
        if data is None:
            self._send(404, "BlobNotFound")
            return 404
        self._send(200, data)
        return 200

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
            elif what == "row":  # {"table", "entity"}: as if a node had written it
                entity = body["entity"]
                TABLES.setdefault(body["table"], {})[(entity["PartitionKey"], entity["RowKey"])] = {
                    **entity, "odata.etag": f"W/\"{uuid.uuid4().hex}\""}
            elif what == "blob":  # {"container", "name", "data"}: as if a manager had stored it
                BLOBS.setdefault(body["container"], {})[body["name"]] = body["data"].encode()
            elif what == "secret":  # {"name", "value"}
                SECRETS[body["name"]] = body["value"]
            elif what == "state":
                return self._send(200, {
                    "secrets": SECRETS, "approved": APPROVED, "calls": CALLS, "issued": ISSUED,
                    "blobs": {c: {n: len(v) for n, v in blobs.items()} for c, blobs in BLOBS.items()},
                    "tables": {t: [v for v in rows.values()] for t, rows in TABLES.items()}})
            else:
                return self._send(404, {"error": what})
        self._send(200, {})


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer((host, port), Handler).serve_forever()


if __name__ == "__main__":
    main()
