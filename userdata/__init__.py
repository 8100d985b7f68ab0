"""Cloud-init user data for swarmstack nodes: parameters, rendering, encoding."""

from userdata.params import NodeUserData, params_for
from userdata.render import encode, files_of, node_files, render, restore_tool, restore_tool_key, restore_tool_sha256

__all__ = ["NodeUserData", "encode", "files_of", "node_files", "params_for", "render", "restore_tool",
           "restore_tool_key", "restore_tool_sha256"]
