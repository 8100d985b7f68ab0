"""The cluster's tree in AWS's slash-separated names, `/swarmstack/<cluster>`, in one
place: the program creates the log groups and the TLS parameters in it, the node script
writes its logs there and keeps the swarm's state beside them (`userdata/`), and the key
and role policies grant exactly it. Pure.

- `/swarmstack/<cluster>/<kind>`: the CloudWatch log groups, one per `LOG_GROUP_KINDS`
  (and `flow-logs`, the VPC's, when asked for);
- `/swarmstack/<cluster>/tls/<leaf>`: the Docker API's TLS parameters (SSM);
- `/swarmstack/<cluster>/<generation>/`: the swarm's state (SSM: init marker, tokens,
  managers), a new tree for each deployment.

The policy pack keeps its own copy of the parameter tree (`policies/identity.py`);
`tests/unit/test_facts.py` pins it to this one.
"""

from __future__ import annotations

LOG_GROUP_KINDS = ("containers", "events", "bootstrap", "prune")
"""The cluster's log groups: the containers' logs, Docker events, the node script's log
(bootstrap) and the prune's output."""


def cluster_tree(cluster: str) -> str:
    """`/swarmstack/<cluster>`: the root of everything the cluster names in SSM and CloudWatch."""
    return f"/swarmstack/{cluster}"


def log_group_names(cluster: str) -> dict[str, str]:
    """`/swarmstack/<cluster>/<kind>` for every kind of `LOG_GROUP_KINDS`."""
    return {kind: f"{cluster_tree(cluster)}/{kind}" for kind in LOG_GROUP_KINDS}


def tls_prefix(cluster: str) -> str:
    """`/swarmstack/<cluster>/tls`: the Docker API's TLS parameters."""
    return f"{cluster_tree(cluster)}/tls"


def state_prefix(cluster: str, generation: str) -> str:
    """`/swarmstack/<cluster>/<generation>`: the swarm's state for one deployment."""
    return f"{cluster_tree(cluster)}/{generation}"
