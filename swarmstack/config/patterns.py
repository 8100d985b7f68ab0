"""What a name or a node label may look like, defined once: the config model checks the
stack file with these (`model.py`, `rules.py`), and the user data parameters check the
values they receive with the same (`userdata/params.py`). Pure.

Each is a regular expression anchored at both ends, for `Field(pattern=...)` and
`re.compile`.
"""

from __future__ import annotations

CLUSTER_NAME = r"^[a-z][a-z0-9-]{1,27}$"
"""A cluster name: lowercase letters, digits and dashes, starting with a letter, 2 to 28
characters (it prefixes every physical name)."""

POOL_NAME = r"^[a-z][a-z0-9-]{0,23}$"
"""A worker pool's name: lowercase letters, digits and dashes, starting with a letter, at
most 24 characters."""

LABEL_KEY = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
"""A swarm node label's name: letters, digits, '.', '_' and '-', at most 63 characters."""

LABEL_VALUE = r"^[A-Za-z0-9._:/@+-]{0,128}$"
"""A node label's value, as the node script passes it to `docker node update`."""

RESERVED_LABEL_PREFIX = "swarmstack."
"""Node labels swarmstack sets itself (`swarmstack.holder`, ...): a pool's labels may not start so."""

DURATION = r"^(\d+[hms])+$"
"""A Go duration of hours, minutes and seconds (`24h`, `90m`, `1h30m`), as `docker ... prune
--filter until=` takes it."""
