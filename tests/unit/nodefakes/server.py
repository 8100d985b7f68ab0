"""The node script's stand-ins for the AWS CLI, the docker CLI and curl, answered by one
server in the test process.

A stand-in on the script's PATH is `client.sh` under the command's name: bash that sends
its name, argv, $FAKE_DIR, $PWD and $AWS_MAX_ATTEMPTS over loopback TCP and prints what
comes back (stdout, stderr, exit code). The answer is worked out here, by the modules
aws.py, docker.py and curl.py of this directory, against the JSON state files in
$FAKE_DIR that the tests read and write. A Python process per call cost about 24 ms of
CPU (interpreter, json, pathlib), and the node-script tests make some 1,800 calls; a
bash client costs about 2 ms, the answer here about 1 ms.

One call is answered at a time (as the engine's API serialises its commands, and as the
fakes' state files need): the script runs some calls side by side, and each sees the
state the one before it left. A call is answered whole once it is sent: a client killed
meanwhile (`timeout`) does not undo it, so a fake never blocks; an engine that hangs is
an answer with exit code 124, as `timeout` gives. Only a client that knows the server's
random token ($FAKE_TOKEN) is answered, and only for an absolute $FAKE_DIR: the fakes
read and write the files a call names, as the user running the tests."""

from __future__ import annotations

import atexit
import secrets
import socketserver
import threading
from collections.abc import Callable
from pathlib import Path

from . import api, aws, curl, docker
from .call import Call, Exit

CLIENT = Path(__file__).with_name("client.sh")
COMMANDS: dict[str, Callable[[Call], None]] = {"aws": aws.main, "docker": docker.main, "curl": curl.main,
                                               "aws_api": api.main}
LOCK = threading.Lock()
TOKEN = secrets.token_hex(16)
"""What a client must send first ($FAKE_TOKEN): no other local process gets an answer."""


def answer(name: str, call: Call) -> tuple[int, str, str]:
    """What the stand-in `name` prints and exits with."""
    with LOCK:
        try:
            COMMANDS[name](call)
        except Exit as end:
            return end.code, "".join(call.out), end.stderr
        except Exception as error:  # a fake's own bug: the script sees a failed command, the test its text
            return 70, "".join(call.out), f"the fake {name} failed: {error!r}\n"
    return 0, "".join(call.out), ""


class _Handler(socketserver.StreamRequestHandler):
    timeout = 30  # a client that connects and says nothing is dropped

    def handle(self) -> None:
        fields = self._fields()
        if fields is None or len(fields) < 5 or not secrets.compare_digest(fields[0], TOKEN):
            return
        name, fake_dir, cwd, attempts, *args = fields[1:]
        if not Path(fake_dir).is_absolute() or not Path(cwd).is_absolute():
            code, out, err = 64, "", f"the fake {name}: FAKE_DIR {fake_dir!r} and PWD {cwd!r} must be absolute\n"
        else:
            code, out, err = answer(name, Call(args, Path(fake_dir), Path(cwd), attempts or "-"))
        self.wfile.write(f"{code}\0{out}\0{err}\0".encode())

    def _fields(self) -> list[str] | None:
        """The client's fields: their count, then each NUL-terminated."""
        data = b""
        while True:
            try:
                chunk = self.rfile.read1(65536)
            except OSError:  # the timeout: nothing to answer
                return None
            if not chunk:
                return None
            data += chunk
            parts = data.split(b"\0")
            if len(parts) > 1 and not parts[0].isdigit():
                return None
            if len(parts) > 1 and len(parts) - 2 >= int(parts[0]):
                return [part.decode() for part in parts[1:int(parts[0]) + 1]]


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False  # the end of a test run never waits for a stalled client


_SERVER: list[_Server] = []


def port() -> int:
    """The server's port on 127.0.0.1, started on first use; stopped when the process ends.
    A client needs TOKEN too ($FAKE_TOKEN)."""
    if not _SERVER:
        server = _Server(("127.0.0.1", 0), _Handler)
        threading.Thread(target=server.serve_forever, name="nodefakes", daemon=True).start()
        atexit.register(server.server_close)
        atexit.register(server.shutdown)
        _SERVER.append(server)
    return int(_SERVER[0].server_address[1])
