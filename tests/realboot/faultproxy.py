"""A fault-injecting HTTP proxy in front of a cloud fake (moto, or the fake Azure).

Nodes are given this proxy as their cloud endpoint. Every request is forwarded to
the upstream unchanged, except while a rule matches it; a rule then answers in the
cloud's own error shape instead, or adds latency before forwarding:

    {"faults": [{"fault": "throttle" | "error" | "denied" | "latency",
                 "from": <epoch s>, "until": <epoch s>,      # the window (both optional)
                 "source": "10.198.0.11",                     # the caller's address (optional)
                 "service": "ssm", "operation": "PutParameter",  # optional
                 "body": "/swarmstack/prod/tokens/",          # a substring of the body or path (optional)
                 "seconds": 2.5}]}                            # latency only

The rules file is re-read whenever it changes, so the test process controls the
proxy by rewriting it (atomically). Service and operation: on AWS the service is the
credential scope of the SigV4 `Authorization` header (`ssm`, `ec2`, `autoscaling`,
`logs`) and the operation the `X-Amz-Target` suffix (JSON protocols) or the `Action=`
form field (query protocols); on Azure the service is the first path segment (`kv`,
`tables`, `arm`; a proxy in front of one storage service is told its name, as Azurite's
paths start with the account) and the operation the HTTP method.

Served over HTTPS when given a certificate and key (Azurite's storage takes OAuth
tokens over HTTPS only), and forwarding to an `https://` upstream with the given CA.

Error shapes, as the clouds send them:
- AWS JSON protocol (SSM, Logs): HTTP 400 `{"__type": "ThrottlingException"}`,
  400 `AccessDeniedException`, 500 `InternalServerError`;
- AWS query protocol (Auto Scaling, EC2): XML `ErrorResponse` (EC2: `Response/Errors`)
  with `Throttling` / `RequestLimitExceeded` (400), `AccessDenied` /
  `UnauthorizedOperation` (403), `InternalFailure` / `InternalError` (500);
- Azure: 429 with `Retry-After`, 403 `Forbidden`, 500 `InternalServerError`, as
  `{"error": {"code", "message"}}`.

Every request is appended to the log (JSON lines: time, source, service, operation,
status, fault) for the test to inspect.

Run as `python faultproxy.py <host> <port> <upstream URL> <rules.json> <log.jsonl> aws|azure
[<service> <cert.pem> <key.pem> <ca.pem>]`.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import ssl
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "host", "content-length"}
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")


class Rules:
    """The rules file, re-read when its modification time changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.mtime = -1.0
        self.faults: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def current(self) -> list[dict[str, Any]]:
        with self.lock:
            try:
                mtime = os.stat(self.path).st_mtime
            except FileNotFoundError:
                self.faults, self.mtime = [], -1.0
                return self.faults
            if mtime != self.mtime:
                with open(self.path) as f:
                    self.faults = list(json.load(f).get("faults", []))
                self.mtime = mtime
            return self.faults


def matches(rule: dict[str, Any], now: float, source: str, service: str, operation: str, text: str) -> bool:
    if "from" in rule and now < float(rule["from"]):
        return False
    if "until" in rule and now >= float(rule["until"]):
        return False
    if rule.get("source") and rule["source"] != source:
        return False
    if rule.get("service") and rule["service"].lower() != service.lower():
        return False
    if rule.get("operation") and rule["operation"].lower() != operation.lower():
        return False
    return not (rule.get("body") and rule["body"] not in text)


def aws_error(fault: str, service: str, operation: str, json_protocol: bool) -> tuple[int, dict[str, str], bytes]:
    request_id = str(uuid.uuid4())
    if json_protocol:
        kind, status, message = {
            "throttle": ("ThrottlingException", 400, "Rate exceeded"),
            "denied": ("AccessDeniedException", 400,
                       f"User: arn:aws:sts::123456789012:assumed-role/node/i-0 is not authorized to perform: "
                       f"{service}:{operation} because no identity-based policy allows the "
                       f"{service}:{operation} action"),
            "error": ("InternalServerError", 500, "Internal Server Error"),
        }[fault]
        body = json.dumps({"__type": kind, "message": message}).encode()
        return status, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": request_id}, body
    ec2 = service == "ec2"
    kind, status, message = {
        "throttle": ("RequestLimitExceeded" if ec2 else "Throttling", 400, "Rate exceeded"),
        "denied": ("UnauthorizedOperation" if ec2 else "AccessDenied", 403,
                   f"You are not authorized to perform: {service}:{operation}"),
        "error": ("InternalError" if ec2 else "InternalFailure", 500, "An internal error has occurred"),
    }[fault]
    if ec2:
        xml = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>{kind}</Code>"
               f"<Message>{message}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>")
    else:
        xml = (f"<ErrorResponse><Error><Type>{'Receiver' if status >= 500 else 'Sender'}</Type>"
               f"<Code>{kind}</Code><Message>{message}</Message></Error>"
               f"<RequestId>{request_id}</RequestId></ErrorResponse>")
    return status, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}, xml.encode()


def azure_error(fault: str) -> tuple[int, dict[str, str], bytes]:
    status, code, message = {
        "throttle": (429, "TooManyRequests", "Too many requests; retry later"),
        "denied": (403, "Forbidden", "The identity is not authorized to perform this action "
                                      "(the role assignment has not been applied yet)"),
        "error": (500, "InternalServerError", "Internal server error"),
    }[fault]
    headers = {"Content-Type": "application/json", "x-ms-request-id": str(uuid.uuid4())}
    if status == 429:
        headers["Retry-After"] = "1"
    return status, headers, json.dumps({"error": {"code": code, "message": message}}).encode()


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream = urlparse("http://127.0.0.1:5000")
    rules: Rules
    log_path = ""
    flavor = "aws"
    service = ""
    upstream_context: ssl.SSLContext | None = None
    log_lock = threading.Lock()

    def log_message(self, format: str, *args: object) -> None:
        return

    def _identify(self, body: bytes) -> tuple[str, str]:
        if self.flavor == "azure" and self.service:
            return self.service, self.command
        if self.flavor == "azure":
            segment = self.path.lstrip("/").split("/", 1)[0].split("?", 1)[0]
            return segment, self.command
        scope = _SCOPE.search(self.headers.get("Authorization", ""))
        service = scope.group(1) if scope else ""
        target = self.headers.get("X-Amz-Target", "")
        if target:
            return service, target.rsplit(".", 1)[-1]
        query = parse_qs(urlparse(self.path).query)
        if "Action" in query:
            return service, query["Action"][0]
        form = parse_qs(body.decode(errors="replace"))
        return service, (form.get("Action") or [""])[0]

    def _record(self, **entry: Any) -> None:
        if not self.log_path:
            return
        with self.log_lock, open(self.log_path, "a") as out:
            out.write(json.dumps({"time": time.time(), **entry}) + "\n")

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        source = self.client_address[0]
        service, operation = self._identify(body)
        text = self.path + "\n" + body.decode(errors="replace")
        now = time.time()
        delay = 0.0
        fault = ""
        for rule in self.rules.current():
            if not matches(rule, now, source, service, operation, text):
                continue
            if rule["fault"] == "latency":
                delay = max(delay, float(rule.get("seconds", 1)))
            elif not fault:
                fault = rule["fault"]
        if delay:
            time.sleep(delay)
        if fault:
            if self.flavor == "azure":
                status, headers, data = azure_error(fault)
            else:
                status, headers, data = aws_error(fault, service, operation, bool(self.headers.get("X-Amz-Target")))
            self._reply(status, headers, data)
            self._record(source=source, service=service, operation=operation, status=status, fault=fault)
            return
        try:
            status, headers, data = self._forward(body)
        except OSError as err:
            status, headers, data = 502, {"Content-Type": "text/plain"}, f"upstream: {err}".encode()
        self._reply(status, headers, data)
        self._record(source=source, service=service, operation=operation, status=status, fault="",
                     latency=delay or None)

    def _forward(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        connection: http.client.HTTPConnection
        if self.upstream.scheme == "https":
            connection = http.client.HTTPSConnection(self.upstream.hostname or "", self.upstream.port, timeout=120,
                                                     context=self.upstream_context)
        else:
            connection = http.client.HTTPConnection(self.upstream.hostname or "", self.upstream.port, timeout=120)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            headers["Host"] = self.headers.get("Host", self.upstream.netloc)
            # Tell a fake that answers by address who is really asking.
            headers["X-Forwarded-For"] = self.client_address[0]
            connection.request(self.command, self.path, body=body or None, headers=headers)
            answer = connection.getresponse()
            data = answer.read()
            out = {k: v for k, v in answer.getheaders() if k.lower() not in HOP_BY_HOP}
            return answer.status, out, data
        finally:
            connection.close()

    def _reply(self, status: int, headers: dict[str, str], data: bytes) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle


def main(host: str, port: str, upstream: str, rules: str, log: str, flavor: str = "aws", service: str = "",
         cert: str = "", key: str = "", ca: str = "") -> None:
    Proxy.upstream = urlparse(upstream)
    Proxy.rules = Rules(rules)
    Proxy.log_path = log
    Proxy.flavor = flavor
    Proxy.service = service
    if ca:
        Proxy.upstream_context = ssl.create_default_context(cafile=ca)
    server = ThreadingHTTPServer((host, int(port)), Proxy)
    if cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main(*sys.argv[1:])
