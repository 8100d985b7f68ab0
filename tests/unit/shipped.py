"""Each shipped stack's graph, built once per test process (one xdist worker) and shared by
the modules that only read it: test_deploy_order and test_policies_stacks. A graph takes
seconds to build; those modules used to build the same four twice. Readers that change a
graph (the policy tests break properties on purpose) take a deep copy."""

from __future__ import annotations

import copy
from contextlib import ExitStack
from functools import cache

from swarmstack.config.load import read_stack_file
from swarmstack.engine.graph import Graph
from swarmstack.engine.run import ROOT, backends_for, run_stack

STACKS = ("dev-aws", "prod-aws", "dev-azure", "prod-azure")


@cache
def shipped_graph(stack: str) -> Graph:
    """The real program's graph of `stacks/Pulumi.<stack>.yaml`, as `run_stack` builds it. Shared: do not change it."""
    config = copy.deepcopy(read_stack_file(stack, ROOT)[1])
    with ExitStack() as exits:
        return run_stack(stack, config, ROOT, backends=backends_for(config, exits))
