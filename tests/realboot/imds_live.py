"""The fake EC2 IMDS for booted nodes: `tests/integration/imds.py`, listening at the
real address (169.254.169.254:80 in the cloud namespace), with two additions a real
boot needs:

- `meta-data/autoscaling/target-lifecycle-state` is read live from moto (the
  instance's Auto Scaling lifecycle state: `Pending*`/`InService` -> `InService`,
  `Terminating*` -> `Terminated`, `Standby` -> `Standby`, `Detaching` -> `Detached`),
  so a scale-in or a terminate call reaches the node as on AWS;
- the node's files also carry the instance profile's credentials
  (`meta-data/iam/security-credentials/<role>`), which the AWS CLI on the node reads
  as it does on an instance; the harness writes them.

Run as `python imds_live.py <host> <port> <dir> <moto URL>`.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
import urllib.request
from http.server import ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

import imds

LIFECYCLE = "meta-data/autoscaling/target-lifecycle-state"
MOTO_URL = "http://127.0.0.1:5000"
_CACHE: dict[str, tuple[float, str | None]] = {}
_LOCK = threading.Lock()
_STATE = re.compile(r"<LifecycleState>([^<]+)</LifecycleState>")


def target_state(instance_id: str, region: str) -> str | None:
    """The instance's target lifecycle state from moto; None when no group holds it."""
    with _LOCK:
        cached = _CACHE.get(instance_id)
        if cached and time.monotonic() - cached[0] < 1.0:
            return cached[1]
    body = f"Action=DescribeAutoScalingInstances&Version=2011-01-01&InstanceIds.member.1={instance_id}".encode()
    request = urllib.request.Request(MOTO_URL + "/", data=body, method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "Authorization": f"AWS4-HMAC-SHA256 Credential=testing/20260101/{region}/autoscaling/aws4_request, "
                         "SignedHeaders=host, Signature=0"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        found = _STATE.search(answer.read().decode())
    state = None
    if found:
        raw = found.group(1)
        state = ("Terminated" if raw.startswith("Terminat") else "Standby" if "Standby" in raw
                 else "Detached" if raw.startswith("Detach") else "InService")
    with _LOCK:
        _CACHE[instance_id] = (time.monotonic(), state)
    return state


class Handler(imds.Handler):
    def do_GET(self) -> None:
        if self.path == "/latest/" + LIFECYCLE:
            with imds.LOCK:
                known = self.headers.get("X-aws-ec2-metadata-token", "") in imds.TOKENS
            try:
                metadata = json.loads((self.directory / f"{self.client_address[0]}.json").read_text())
            except FileNotFoundError:
                metadata = {}
            if known and "meta-data/instance-id" in metadata:
                zone = metadata.get("meta-data/placement/availability-zone", "eu-west-1a")
                try:
                    state = target_state(metadata["meta-data/instance-id"], zone[:-1])
                except OSError as err:
                    self._answer(500, f"moto: {err}")
                    return
                if state is None:
                    self._answer(404)
                else:
                    self._answer(200, state)
                return
        super().do_GET()


def main(host: str, port: str, directory: str, moto_url: str) -> None:
    global MOTO_URL
    MOTO_URL = moto_url.rstrip("/")
    Handler.directory = Path(directory)
    server = ThreadingHTTPServer((host, int(port)), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main(*sys.argv[1:])
