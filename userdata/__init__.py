"""Cloud-init user data for swarmstack nodes: parameters, rendering, encoding."""

from userdata.params import NodeUserData, params_for
from userdata.render import encode, files_of, node_files, render

__all__ = ["NodeUserData", "encode", "files_of", "node_files", "params_for", "render"]
