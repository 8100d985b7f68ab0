"""Azurite, Microsoft's Azure Storage emulator, as the harnesses' Table and Blob storage.

Azurite (npm package `azurite`, pinned below; `.ci/run` installs it) is the real
implementation of the storage REST APIs the nodes use: entity insert (409 when the row
exists), get, replace with If-Match (412 on a stale ETag), queries, and block blobs with
container listings. It runs as a process of the harness, in the harness's cloud
namespace, on loopback only, and is stopped by PID with the harness's other processes:

- HTTPS with a certificate issued by the harness's CA (`certs.py`), which the nodes
  trust (`CURL_CA_BUNDLE` on integration nodes, the system store on booted ones);
- `--oauth basic`: a bearer token must be a JWT whose issuer is an Azure AD tenant,
  whose audience is storage and which has not expired; `aad_token` mints them as Azure
  AD does (the fake IMDS hands them to the nodes, the harness mints its own);
- the stack's storage account (`AZURITE_ACCOUNTS`), path-style URLs
  (`https://host:port/<account>/<table>`) where Azure has `https://<account>.table.core.windows.net/<table>`;
- its data in the harness's temporary directory.

Azurite has no role assignments: `azure_fake.py`'s storage gate plays Azure's RBAC in
front of it (each identity only what the stack grants it) and forwards every allowed
request unchanged.

`Storage` is the harness's own client (as the Pulumi program and an operator are): it
creates the tables and the backup container, and reads what the nodes wrote.
"""

from __future__ import annotations

import base64
import concurrent.futures
import json
import os
import shutil
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

ROOT = Path(__file__).resolve().parents[2]
VERSION = "3.35.0"
INSTALL_DIRS = (Path(os.environ["SWARMSTACK_AZURITE_DIR"]) if os.environ.get("SWARMSTACK_AZURITE_DIR") else None,
                ROOT / ".azurite", Path("/var/cache/swarmstack/azurite"))
"""Where `npm install --prefix DIR azurite@VERSION` may have put it, in this order."""
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
"""The directory (tenant) the fake Azure AD issues tokens for."""
ACCOUNT = "prodabc123"
"""The storage account of the `prod-azure` stack the harnesses render for."""
ACCOUNT_KEY = base64.b64encode(b"swarmstack-test-account-key-0123456789abcdef").decode()
TABLE_PORT = 10002
BLOB_PORT = 10000
QUEUE_PORT = 10001
TABLE_VERSION = "2020-12-06"
BLOB_VERSION = "2021-08-06"


def script() -> Path | None:
    """Azurite's entry point in the first install directory that holds the pinned version."""
    for base in INSTALL_DIRS:
        if base is None:
            continue
        package = base / "node_modules" / "azurite"
        try:
            version = json.loads((package / "package.json").read_text())["version"]
        except (OSError, ValueError, KeyError):
            continue
        if version == VERSION and (package / "dist" / "src" / "azurite.js").exists():
            return package / "dist" / "src" / "azurite.js"
    return None


def node() -> str | None:
    """Node.js: $SWARMSTACK_NODE, /usr/bin/node, or the PATH's."""
    explicit = os.environ.get("SWARMSTACK_NODE")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    if os.access("/usr/bin/node", os.X_OK):
        return "/usr/bin/node"
    return shutil.which("node")


def missing() -> str | None:
    """Why Azurite cannot run here, or None."""
    if node() is None:
        return "Node.js is missing (Azurite runs on it; apt-get install nodejs)"
    if script() is None:
        dirs = ", ".join(str(d) for d in INSTALL_DIRS if d is not None)
        return (f"Azurite {VERSION} is not installed in any of {dirs} "
                f"(npm install --prefix /var/cache/swarmstack/azurite azurite@{VERSION}, as .ci/run does)")
    return None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def aad_token(client_id: str, resource: str, lifetime: int = 3600) -> tuple[str, int]:
    """An access token for `client_id` and `resource` as Azure AD (v1.0) issues a managed
    identity's: a JWT with the tenant's issuer, the resource as audience (without the
    trailing slash), the identity's app and object ids, issue/not-before/expiry times and
    a unique token id. The signature is not a real one: Azurite's `basic` OAuth level does
    not verify signatures (it checks issuer, audience and lifetime), nor does the fake.
    Returns (token, expires_on)."""
    now = int(time.time())
    claims = {"aud": resource.rstrip("/"), "iss": f"https://sts.windows.net/{TENANT}/", "iat": now - 5,
              "nbf": now - 5, "exp": now + lifetime, "appid": client_id, "appidacr": "2",
              "idp": f"https://sts.windows.net/{TENANT}/", "oid": client_id, "sub": client_id, "tid": TENANT,
              "uti": uuid.uuid4().hex, "ver": "1.0"}
    header = {"alg": "RS256", "typ": "JWT", "kid": "swarmstack-test"}
    body = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{body}.{_b64(os.urandom(32))}", now + lifetime


def claims_of(token: str) -> dict[str, Any]:
    """The claims of a JWT (unverified), or {} when it is not one."""
    try:
        payload = token.split(".")[1]
        return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))
    except (IndexError, ValueError):
        return {}


def storage_tls(tmp: Path, addresses: list[str]) -> tuple[Path, Path, Path]:
    """A CA for this run and a server certificate for the storage endpoints' addresses
    (Azurite's, its gate's, a proxy's): (ca.pem, cert.pem, key.pem) in `tmp`."""
    from certs import ca, issue

    ca_pair, ca_key = ca("swarmstack test storage CA")
    server = issue(ca_pair, ca_key, "storage", server=True, addresses=addresses)
    paths = tmp / "storage-ca.pem", tmp / "storage-cert.pem", tmp / "storage-key.pem"
    for path, text in zip(paths, (ca_pair.cert, server.cert, server.key), strict=True):
        path.write_text(text)
    paths[2].chmod(0o600)
    return paths


class Azurite:
    """One Azurite process (Blob, Queue, Table) on `host`, started through `start`
    (the harness's `Procs`, so stopped by PID with its other processes)."""

    def __init__(self, start: Callable[[list[str], Path, dict[str, str]], Any], prefix: list[str], host: str,
                 cert: Path, key: Path, workdir: Path) -> None:
        reason = missing()
        if reason is not None:
            raise RuntimeError(reason)
        self.host = host
        self.data = workdir / "azurite"
        self.data.mkdir(parents=True, exist_ok=True)
        self.log = workdir / "azurite.log"
        args = [*prefix, str(node()), str(script()),
                "--blobHost", host, "--blobPort", str(BLOB_PORT),
                "--queueHost", host, "--queuePort", str(QUEUE_PORT),
                "--tableHost", host, "--tablePort", str(TABLE_PORT),
                "--location", str(self.data), "--debug", str(workdir / "azurite-debug.log"),
                "--oauth", "basic", "--cert", str(cert), "--key", str(key),
                "--disableProductStyleUrl", "--disableTelemetry"]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.data),
               "AZURITE_ACCOUNTS": f"{ACCOUNT}:{ACCOUNT_KEY}"}
        self.proc = start(args, self.log, env)

    @property
    def table_url(self) -> str:
        return f"https://{self.host}:{TABLE_PORT}"

    @property
    def blob_url(self) -> str:
        return f"https://{self.host}:{BLOB_PORT}"


class Storage:
    """The harness's client of the storage account (as an operator with a token of
    its own): runs every request through `call` (a thread in the cloud namespace)."""

    def __init__(self, table_url: str, blob_url: str, ca_file: Path, call: Callable[..., Any]) -> None:
        self.table_url = f"{table_url}/{ACCOUNT}"
        self.blob_url = f"{blob_url}/{ACCOUNT}"
        self.context = ssl.create_default_context(cafile=str(ca_file))
        self.call = call

    def _request(self, method: str, url: str, body: bytes | None = None,
                 headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        return self.call(lambda: self._send(method, url, body, headers))  # type: ignore[no-any-return]

    def _send(self, method: str, url: str, body: bytes | None = None,
              headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """One request from the calling thread (which must be in the cloud namespace)."""
        token, _ = aad_token("swarmstack-harness", "https://storage.azure.com/")
        request = urllib.request.Request(url, data=body, method=method,
                                         headers={"Authorization": f"Bearer {token}", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=30, context=self.context) as answer:
                return answer.status, dict(answer.headers.items()), answer.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers.items()), err.read()

    def _table(self, method: str, path: str, body: Any = None,
               extra: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        headers = {"x-ms-version": TABLE_VERSION, "Accept": "application/json;odata=minimalmetadata",
                   "Content-Type": "application/json", "DataServiceVersion": "3.0", **(extra or {})}
        data = json.dumps(body).encode() if body is not None else None
        return self._request(method, f"{self.table_url}/{path}", data, headers)

    def wait_up(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._table("GET", "Tables")
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("Azurite did not start") from None
                time.sleep(0.3)

    def create_table(self, name: str) -> None:
        status, _, data = self._table("POST", "Tables", {"TableName": name}, {"Prefer": "return-no-content"})
        if status not in (201, 204, 409):
            raise RuntimeError(f"creating table {name}: {status} {data[:300]!r}")

    def insert(self, table: str, entity: dict[str, str]) -> None:
        status, _, data = self._table("POST", table, entity, {"Prefer": "return-no-content"})
        if status not in (201, 204):
            raise RuntimeError(f"inserting into {table}: {status} {data[:300]!r}")

    def rows(self, table: str) -> list[dict[str, Any]]:
        """Every entity of `table`, over every page (x-ms-continuation-* headers)."""
        out: list[dict[str, Any]] = []
        query = ""
        while True:
            status, headers, data = self._table("GET", f"{table}(){query}")
            if status != 200:
                raise RuntimeError(f"querying {table}: {status} {data[:300]!r}")
            out += json.loads(data)["value"]
            lower = {k.lower(): v for k, v in headers.items()}
            partition = lower.get("x-ms-continuation-nextpartitionkey")
            if not partition:
                return out
            query = "?" + urllib.parse.urlencode({"NextPartitionKey": partition,
                                                  "NextRowKey": lower.get("x-ms-continuation-nextrowkey", "")})

    def create_container(self, name: str) -> None:
        status, _, data = self._request("PUT", f"{self.blob_url}/{name}?restype=container", b"",
                                        {"x-ms-version": BLOB_VERSION})
        if status not in (201, 409):
            raise RuntimeError(f"creating container {name}: {status} {data[:300]!r}")

    def put_blob(self, container: str, name: str, data: bytes) -> None:
        status, _, answer = self._request("PUT", f"{self.blob_url}/{container}/{urllib.parse.quote(name)}", data,
                                          {"x-ms-version": BLOB_VERSION, "x-ms-blob-type": "BlockBlob"})
        if status != 201:
            raise RuntimeError(f"putting blob {name}: {status} {answer[:300]!r}")

    def put_blobs(self, container: str, names: list[str], data: bytes, workers: int = 8) -> None:
        """Many blobs at once (`workers` requests in flight): threads started by the thread
        in the cloud namespace are in it too."""
        def put(name: str) -> int:
            status, _, _ = self._send("PUT", f"{self.blob_url}/{container}/{urllib.parse.quote(name)}", data,
                                      {"x-ms-version": BLOB_VERSION, "x-ms-blob-type": "BlockBlob"})
            return status

        def run() -> list[int]:
            with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
                return list(pool.map(put, names))

        failed = [(n, status) for n, status in zip(names, self.call(run), strict=True) if status != 201]
        if failed:
            raise RuntimeError(f"putting {len(failed)} blobs failed, first: {failed[0]}")

    def blobs(self, container: str) -> dict[str, int]:
        """Name -> size of every blob in `container`, over every page (NextMarker)."""
        out: dict[str, int] = {}
        marker = ""
        while True:
            query = "restype=container&comp=list" + (f"&marker={urllib.parse.quote(marker)}" if marker else "")
            status, _, data = self._request("GET", f"{self.blob_url}/{container}?{query}", None,
                                            {"x-ms-version": BLOB_VERSION})
            if status != 200:
                raise RuntimeError(f"listing {container}: {status} {data[:300]!r}")
            root = ElementTree.fromstring(data)
            for blob in root.iter("Blob"):
                out[blob.findtext("Name", "")] = int(blob.findtext("Properties/Content-Length", "0") or 0)
            marker = root.findtext("NextMarker") or ""
            if not marker:
                return out
