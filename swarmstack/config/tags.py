"""The tag keys swarmstack sets itself, defined once: the components put them on what they
create, the config refuses user tags that would collide with them (`rules.py`), and the
policy pack finds the managers by the role tag (its copy, `policies/_cluster.py`, is pinned
to this one by `tests/unit/test_facts.py`). Pure."""

from __future__ import annotations

CLUSTER_TAG = "swarmstack:cluster"
"""The cluster's name, on every resource."""
STACK_TAG = "swarmstack:stack"
"""The Pulumi stack's name, on every resource."""
ROLE_TAG = "swarmstack:role"
"""`manager` or `worker` on node groups and their roles; `managers`, `workers` or `lb` on
the firewall groups and identities of a role."""
POOL_TAG = "swarmstack:pool"
"""A node group's pool name."""
RESERVED_TAG_KEYS = ("Name", CLUSTER_TAG, STACK_TAG, ROLE_TAG, POOL_TAG)
"""Tag keys a stack's `tags` may not set."""
