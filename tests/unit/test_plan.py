"""`swarmstack plan`'s text: ids read as the names of what they identify, real names stay."""

from __future__ import annotations

from shipped import shipped_graph

from swarmstack.engine.graph import Graph, Resource
from swarmstack.plan import id_names, properties, render_text


def _line(text: str, label: str) -> str:
    found = [line for line in text.splitlines() if line.rstrip().endswith(label) or f"{label}  " in line]
    assert len(found) == 1, (label, found)
    return found[0]


def test_a_log_group_shows_its_real_name() -> None:
    # A CloudWatch log group's id is its name: the plan used to print the Pulumi name there.
    text = render_text(shipped_graph("dev-aws"), "eu-west-1")
    for role in ("bootstrap", "containers", "events", "prune"):
        line = _line(text, f"cloudwatch.LogGroup dev-logs-{role}")
        assert f"name=/swarmstack/dev/{role}  " in line
    # and where another resource names it
    assert _line(text, "cloudwatch.LogMetricFilter dev-monitoring-oom").endswith("logGroupName=/swarmstack/dev/events")


def test_names_that_are_ids_stay_and_opaque_ids_read_as_names() -> None:
    graph = shipped_graph("prod-aws")
    text = render_text(graph, "eu-west-1")
    parameter = _line(text, "ssm.Parameter prod-tls-server-key")
    assert "name=/swarmstack/prod/tls/server-key  " in parameter
    names = id_names(graph)
    bucket = graph.one("aws:s3/bucket:Bucket", "prod-backups-bucket")
    assert bucket.id not in names  # its own name, and the id of its policy, versioning, ...
    vpc = graph.one("aws:ec2/vpc:Vpc", "prod-vpc")
    assert names[vpc.id] == "prod-vpc"
    route = next(line for line in text.splitlines() if "ec2.RouteTableAssociation prod-" in line)
    assert "subnetId=prod-" in route and "subnet-" not in route and "rtb-" not in route


def test_azure_ids_are_arm_paths_and_read_as_names() -> None:
    graph = shipped_graph("prod-azure")
    names = id_names(graph)
    vnet = graph.one("azure-native:network:VirtualNetwork", "prod-vnet")
    assert vnet.id.startswith("/subscriptions/") and names[vnet.id] == "prod-vnet"
    assert "/subscriptions/" not in "\n".join(render_text(graph, "westeurope").split("\nOutputs:\n")[0])


def test_an_id_that_is_a_name_is_never_replaced_nor_a_resources_own_id() -> None:
    log_group = Resource(urn="urn:lg", type="aws:cloudwatch/logGroup:LogGroup", name="lg", parent="", custom=True,
                         inputs={"name": "/swarmstack/x/events"}, outputs={"name": "/swarmstack/x/events"},
                         id="/swarmstack/x/events")
    role = Resource(urn="urn:role", type="aws:iam/role:Role", name="x-role", parent="", custom=True,
                    inputs={}, outputs={"name": "x-role-7430241"}, id="x-role-7430241")  # a generated name
    vpc = Resource(urn="urn:vpc", type="aws:ec2/vpc:Vpc", name="x-vpc", parent="", custom=True,
                   inputs={"cidrBlock": "vpc-1"}, outputs={}, id="vpc-1")  # contrived: its own id as a key property
    graph = Graph(stack="x", cloud="aws", resources=[log_group, role, vpc])
    names = id_names(graph)
    assert names == {"vpc-1": "x-vpc"}
    assert properties(log_group, names) == "name=/swarmstack/x/events"
    assert properties(vpc, names) == "cidrBlock=vpc-1"
