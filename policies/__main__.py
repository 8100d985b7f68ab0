"""The policy pack as the Pulumi CLI runs it: `pulumi preview --policy-pack policies`.

It only builds the PolicyPack: constructing one starts the analyzer's gRPC server and
serves until the CLI is done, so nothing else may happen here. The rules live in
importable modules (`policies/pack.py`), which the offline evaluator and the tests use.
"""

import sys
from pathlib import Path

# The CLI runs this file with the pack's folder as the working directory; the rules import
# as `policies.*` (and the cron parser as `swarmstack.config.cron`) from the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import EnforcementLevel, PolicyPack

from policies.pack import PACK_NAME, POLICIES

if __name__ == "__main__":
    PolicyPack(
        name=PACK_NAME,
        enforcement_level=EnforcementLevel.ADVISORY,
        policies=POLICIES,
        description="Catches an unsafe Docker Swarm before it exists: Docker API and swarm ports, "
                    "IMDSv2, encryption, manager quorum, logging, IAM, user data secrets, prune.",
    )
