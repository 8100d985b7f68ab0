"""The swarmstack Pulumi program: read the stack's config once, validate it, build
the cluster of the stack's cloud and export what a person needs."""

import pulumi

from swarmstack.config.load import STACKS_DIR, validate
from swarmstack.config.problems import ConfigError
from swarmstack.config.pulumi_source import stack_config

stack = pulumi.get_stack()
try:
    settings = validate(stack, f"{STACKS_DIR}/Pulumi.{stack}.yaml", stack_config())
except ConfigError as err:
    raise pulumi.RunError(str(err)) from None

secrets = pulumi.Config("swarmstack")
ca_key = secrets.get_secret("dockerApiCaKey") if settings.cluster.docker_api.ca == "provided" else None
if settings.cluster.docker_api.enabled and settings.cluster.docker_api.ca == "provided" and ca_key is None:
    raise pulumi.RunError(
        f"{settings.source}: swarmstack:dockerApiCaKey = (missing): dockerApi.ca is provided, so the CA's "
        "private key must be set: pulumi config set --secret swarmstack:dockerApiCaKey < ca-key.pem"
    )

new_network = settings.cluster.network.new
if settings.cluster.cloud == "aws" and new_network is not None:
    import pulumi_aws as aws

    zones = aws.get_availability_zones(state="available").names
    if len(zones) < new_network.zones:
        raise pulumi.RunError(
            f"{settings.source}: swarmstack:cluster.network.new.zones = {new_network.zones}: "
            f"{settings.region} has {len(zones)} zones available ({', '.join(zones)}); use at most {len(zones)}"
        )

if settings.cluster.cloud == "aws":
    from components.aws.cluster import Cluster
else:
    from components.azure.cluster import Cluster  # type: ignore[assignment]

cluster = Cluster(settings.cluster.name, settings, ca_key=ca_key)
for key, value in cluster.exports.items():
    pulumi.export(key, value)
