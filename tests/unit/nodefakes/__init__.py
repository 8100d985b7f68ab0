"""Stand-ins for the AWS CLI, the docker CLI and curl on the node script's PATH in the unit
tests (server.py)."""
