"""The AWS JSON APIs (SSM, CloudWatch Logs) the node script calls without the CLI
(`aws_api`: python3 signs each request itself), answered over HTTP on loopback.

Each request's SigV4 signature is checked with botocore against the credentials the fake
IMDS hands the node (imds.json) and the node's region, with its date, as AWS checks them;
a request that fails the check gets AWS's 403 `SignatureDoesNotMatch`. Its body is then
validated against botocore's model of the API (400 `ValidationException`, as AWS answers). The call is then answered by aws.py, from the same
state, with the same faults and the calls.log line of the CLI form of the call
(`--via api ssm put-parameter --name ...`): the body's fields become the CLI's options, a
value is passed as a file, so calls.log never holds one.

The node's AWS_ENDPOINT_URL is `http://127.0.0.1:PORT/<TOKEN><FAKE_DIR>` (`endpoint`): the
path names the node's state files, the token keeps other local processes out.
"""

from __future__ import annotations

import datetime
import functools
import json
import re
import secrets
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ParamValidationError
from botocore.validate import validate_parameters

from . import aws
from .call import Call, Exit

SERVICES = {"AmazonSSM": "ssm", "Logs_20140328": "logs"}


def cli_args(service: str, operation: str, body: dict[str, Any], value_file: Path | None) -> list[str]:
    """The CLI's command line for the same call (what aws.py answers and calls.log shows)."""
    command = re.sub(r"(?<!^)([A-Z])", r"-\1", operation).lower()  # PutParameter: put-parameter
    args = ["--via", "api", service, command]
    if "Name" in body:
        args += ["--name", body["Name"]]
    if "Names" in body:
        args += ["--names", *body["Names"]]
    if "Type" in body:
        args += ["--type", body["Type"]]
    if "KeyId" in body:
        args += ["--key-id", body["KeyId"]]
    if "Overwrite" in body:
        args.append("--overwrite" if body["Overwrite"] else "--no-overwrite")
    if body.get("WithDecryption"):
        args.append("--with-decryption")
    for field, option in (("logGroupName", "--log-group-name"), ("logStreamName", "--log-stream-name")):
        if field in body:
            args += [option, body[field]]
    if value_file is not None:
        args += ["--log-events" if service == "logs" else "--value", f"file://{value_file}"]
    return args


def signature_error(handler: BaseHTTPRequestHandler, body: bytes, service: str, region: str,
                    credentials: dict[str, str]) -> str:
    """Why AWS would refuse the request's signature; "" when it would not."""
    authorization = handler.headers.get("Authorization", "")
    found = re.fullmatch(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                         r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})", authorization)
    if not found:
        return f"malformed Authorization header: {authorization!r}"
    key_id, day, signed_region, signed_service, names, signature = found.groups()
    if (key_id, signed_region, signed_service) != (credentials["AccessKeyId"], region, service):
        return f"signed as {key_id} for {signed_service} in {signed_region}"
    stamp = handler.headers.get("X-Amz-Date", "")
    try:
        sent = datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
    except ValueError:
        return f"X-Amz-Date {stamp!r} is not YYYYMMDDTHHMMSSZ"
    if day != stamp[:8] or abs((datetime.datetime.now(datetime.UTC) - sent).total_seconds()) > 300:
        return f"the scope's day {day} or X-Amz-Date {stamp} is off (AWS allows 5 minutes)"
    signed = names.split(";")
    for required in ("host", "x-amz-date", "x-amz-security-token", "x-amz-target", "content-type"):
        if required not in signed:
            return f"{required} is not signed"
    if handler.headers.get("X-Amz-Security-Token") != credentials["Token"]:
        return "not the session's token"
    request = AWSRequest(method="POST", url=f"http://{handler.headers['Host']}{handler.path}", data=body,
                         headers={name: handler.headers[name] for name in signed})
    request.context["timestamp"] = handler.headers["X-Amz-Date"]
    auth = SigV4Auth(Credentials(key_id, credentials["SecretAccessKey"], credentials["Token"]), service, region)
    expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
    return "" if secrets.compare_digest(expected, signature) else "the signature does not match"


@functools.cache
def _model(service: str) -> Any:
    return botocore.session.get_session().get_service_model(service)


def invalid_request(service: str, operation: str, request: dict[str, Any], content_type: str) -> str:
    """What AWS would refuse in the request itself, by botocore's model of the API (unknown
    operation, missing or unknown fields, wrong types, an empty `logEvents`); "" if nothing."""
    if content_type != "application/x-amz-json-1.1":
        return f"content type {content_type!r}"
    model = _model(service)
    if operation not in model.operation_names:
        return f"{service} has no operation {operation}"
    try:
        validate_parameters(request, model.operation_model(operation).input_shape)
    except ParamValidationError as error:
        return str(error)
    return ""


def answer(directory: Path, service: str, operation: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """The API's answer (HTTP status, JSON) to a valid request, worked out by aws.py as the
    CLI's same call, from the node's state files."""
    value_file = None
    if "Value" in body or "logEvents" in body:
        with tempfile.NamedTemporaryFile("w", dir=directory, prefix="value.", delete=False) as file:
            file.write(body["Value"] if "Value" in body else json.dumps(body["logEvents"]))
        value_file = Path(file.name)
    call = Call(cli_args(service, operation, body, value_file), directory, directory, "-")
    try:
        aws.main(call)
    except Exit as end:
        code = re.search(r"\((\w+)\)", end.stderr)
        return 400, {"__type": code.group(1) if code else "InternalFailure", "message": end.stderr.strip()}
    finally:
        if value_file is not None:
            value_file.unlink()
    out = "".join(call.out).rstrip("\n")
    if operation == "GetParameter":
        return 200, {"Parameter": {"Name": body["Name"], "Value": out}}
    if operation == "GetParameters":
        return 200, json.loads(out)
    if operation == "PutParameter":
        return 200, {"Version": 1, "Tier": "Standard"}
    return 200, {}


def main(call: Call) -> None:
    """`aws_api` itself stood in (most node-script tests; `make_node(real_api=False)`): the
    same arguments, the same answers as the python3 client prints them, without a Python
    start per call (about 50 ms of CPU; the suite makes about a thousand). The request is
    validated as over HTTP; the signing is not involved (the tests with `real_api=True`
    and tests/integration check it)."""
    service, operation, form, request, *value = call.args
    body = json.loads(request)
    if value and service == "logs":
        text = call.path(value[0]).read_text(errors="replace")
        body["logEvents"] = [{"timestamp": 0, "message": line} for line in text.splitlines() if line.strip()]
    elif value:
        body["Value"] = call.path(value[0]).read_text()
    invalid = invalid_request(service, operation, body, "application/x-amz-json-1.1")
    status, result = (400, {"__type": "ValidationException", "message": invalid}) if invalid else \
        answer(call.dir, service, operation, body)
    if status != 200:
        raise Exit(1, f"An error occurred ({status}) when calling the {operation} operation: "
                      f"{json.dumps(result).encode()!r}\n")
    if form == "value":
        call.print(result["Parameter"]["Value"])
    elif form == "rows":
        call.write("".join(f"{p['Name']}\t{p['Value']}\n" for p in result["Parameters"]))
    elif form.startswith("/"):
        if result["InvalidParameters"]:
            raise Exit(1, f"ParameterNotFound: {result['InvalidParameters']}\n")
        for parameter in result["Parameters"]:
            target = Path(form) / parameter["Name"].rpartition("/")[2]
            target.write_text(parameter["Value"].rstrip("\n") + "\n")
            target.chmod(0o600)


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        token, _, fake_dir = self.path[1:].partition("/")
        if not secrets.compare_digest(token, TOKEN):
            self._send(403, {"__type": "AccessDeniedException", "message": "not this test run's token"})
            return
        directory = Path("/" + fake_dir)
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        prefix, _, operation = self.headers.get("X-Amz-Target", "").partition(".")
        service = SERVICES.get(prefix, "")
        from .server import LOCK  # one fake call at a time, the CLI's and these alike

        with LOCK:
            metadata = json.loads((directory / "imds.json").read_text())
            role = metadata["meta-data/iam/security-credentials/"]
            credentials = json.loads(metadata[f"meta-data/iam/security-credentials/{role}"])
            region = metadata["meta-data/placement/availability-zone"][:-1]
            problem = signature_error(self, body, service, region, credentials)
            if problem:
                self._send(403, {"__type": "SignatureDoesNotMatch", "message": problem})
                return
            request = json.loads(body)
            invalid = invalid_request(service, operation, request, self.headers.get("Content-Type", ""))
            if invalid:
                self._send(400, {"__type": "ValidationException", "message": invalid})
                return
            self._send(*answer(directory, service, operation, request))

    def _send(self, status: int, result: dict[str, Any]) -> None:
        data = json.dumps(result).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


TOKEN = secrets.token_hex(16)
_SERVER: list[ThreadingHTTPServer] = []


def endpoint(fake_dir: Path) -> str:
    """The node's AWS_ENDPOINT_URL: this server, its token and the node's state directory."""
    if not _SERVER:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, name="nodefakes-api", daemon=True).start()
        _SERVER.append(server)
    return f"http://127.0.0.1:{_SERVER[0].server_address[1]}/{TOKEN}{fake_dir}"
