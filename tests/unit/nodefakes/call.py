"""One command line of the node script, as a stand-in (aws.py, docker.py, curl.py) sees it,
and how it ends."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn


class Exit(Exception):
    """The command ends with this exit code (and this text on stderr)."""

    def __init__(self, code: int, stderr: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.stderr = stderr


@dataclass
class Call:
    """One command line of the script, as the stand-in sees it."""

    args: list[str]  # argv[1:]
    dir: Path  # $FAKE_DIR: the state files
    cwd: Path  # the caller's working directory: relative paths are its
    max_attempts: str  # $AWS_MAX_ATTEMPTS, "-" when unset
    out: list[str] = field(default_factory=list)

    def print(self, text: str) -> None:
        self.out.append(text + "\n")

    def write(self, text: str) -> None:
        self.out.append(text)

    def path(self, name: str) -> Path:
        return self.cwd / name


def fail(message: str, code: int = 1) -> NoReturn:
    """End the command: `message` on stderr, exit code `code`."""
    raise Exit(code, message)
