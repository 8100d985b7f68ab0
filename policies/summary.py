"""The stack rules read the Cluster component's summary; this rule says when they can't."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, StackValidationArgs

from ._cluster import CLUSTER_TYPES, SUMMARY_KEYS
from ._props import plain
from ._rules import Report, stack_rule


def _cluster_summary_visible(args: StackValidationArgs, report: Report) -> None:
    clusters = [r for r in args.resources if r.resource_type in CLUSTER_TYPES]
    if not clusters:
        args.not_applicable("no swarmstack Cluster component in the stack")
    for cluster in clusters:
        props = plain(cluster.props)
        missing = [key for key in SUMMARY_KEYS if key not in props]
        if missing:
            report(f"{cluster.name}: the Cluster's outputs lack {', '.join(missing)}, so the stack rules that "
                   "depend on them (production, managers, logKms, prune volumes, Docker API) cannot judge "
                   "this stack; the component must register its summary as outputs too", cluster.urn)


cluster_summary_visible = stack_rule(
    name="cluster-summary-visible",
    description="The Cluster component exposes its summary (production, managerCount, …) to stack rules.",
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=_cluster_summary_visible,
    remediation_steps="In the Cluster component, include cluster_summary(settings) in register_outputs: "
                      "stack rules see a component's outputs, not its inputs.",
)

RESOURCE_POLICIES: list = []
STACK_POLICIES = [cluster_summary_visible]
