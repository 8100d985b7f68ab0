"""What the node metrics measure and when they alarm, on either cloud. Pure facts.

Each node reports, every minute, its memory use, its swap use and the use of the disks
that fill up on a swarm node: the root disk and, where a node has one, a separate disk
mounted at Docker's data directory (swarmstack's nodes keep Docker's data on the root
disk, so its use is the root's). The clouds' agents differ (`components/aws/metrics.py`,
`components/azure/metrics.py`); what they measure and when they alarm is here.
"""

from __future__ import annotations

DOCKER_DATA_DIR = "/var/lib/docker"
"""Where Docker keeps images, containers and volumes (dockerd's `data-root`)."""
DISK_PATHS = ("/", DOCKER_DATA_DIR)
"""The mount points whose use is measured and alarmed on; one that is not a mount point of
its own reports nothing (its data is the root disk's)."""
INTERVAL_SECONDS = 60
"""How often a node samples its memory, swap and disks."""
DISK_WINDOW_MINUTES = 5
"""A disk alarms as soon as one node's sample over this window passes the threshold."""
MEMORY_WINDOW_MINUTES = 15
"""Memory alarms only when it stays above the threshold this long (a spike is normal)."""
