"""The policy pack as the Pulumi CLI runs it: `pulumi preview --policy-pack policies`.

The CLI runs this file as a script (`python -m pulumi.policy ENGINE policies`), with the
pack's own virtualenv (`requirements.txt`) and nothing else: this folder is not on any
import path as a package. So the pack imports itself from here by location, under the
name `policies`, and its modules import each other relatively. It needs nothing from the
repository around it.

It only builds the PolicyPack: constructing one starts the analyzer's gRPC server and
serves until the CLI is done, so nothing else may happen here. The rules live in
importable modules (`pack.py`), which the offline evaluator and the tests use.
"""

import importlib
import importlib.util
import sys
from pathlib import Path

from pulumi_policy import EnforcementLevel, PolicyPack


def _load_pack():  # type: ignore[no-untyped-def]
    """`policies.pack`, from this folder (already imported when the tests run this file)."""
    if "policies" not in sys.modules:
        here = Path(__file__).resolve().parent
        spec = importlib.util.spec_from_file_location("policies", here / "__init__.py",
                                                      submodule_search_locations=[str(here)])
        assert spec is not None and spec.loader is not None
        package = importlib.util.module_from_spec(spec)
        sys.modules["policies"] = package
        spec.loader.exec_module(package)
    return importlib.import_module("policies.pack")


_pack = _load_pack()
PACK_NAME, POLICIES = _pack.PACK_NAME, _pack.POLICIES

if __name__ == "__main__":
    PolicyPack(
        name=PACK_NAME,
        enforcement_level=EnforcementLevel.ADVISORY,
        policies=POLICIES,
        description="Catches an unsafe Docker Swarm before it exists: Docker API and swarm ports, "
                    "IMDSv2, encryption, manager quorum, logging, IAM, user data secrets, prune.",
    )
