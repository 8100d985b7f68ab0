"""The VPC a swarm lives in: new (subnets per zone, gateways, routes) or existing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from components.aws.identity import Account
from components.common.cidr import split
from components.common.names import LIMITS, fit
from components.common.namespace import cluster_tree
from swarmstack.config.problems import Problem


def subnet_problem(vpc_id: str, subnets: list[tuple[str, str, str]]) -> str | None:
    """What is wrong with existing subnets (id, VPC, zone) for a swarm, or None. Pure.

    Every subnet must be in the given VPC, and each in its own zone: the zones are
    what lets the swarm survive the loss of one.
    """
    for subnet, vpc, _zone in subnets:
        if vpc != vpc_id:
            return f"{subnet} is in {vpc}, not in {vpc_id}"
    zones = [zone for _subnet, _vpc, zone in subnets]
    doubled = sorted({zone for zone in zones if zones.count(zone) > 1})
    if doubled:
        return f"two subnets share zone {', '.join(doubled)}; list one subnet per availability zone"
    return None


def flow_logs_trust_policy(partition: str, region: str, account: str) -> dict[str, Any]:
    """VPC Flow Logs may assume the delivery role only for this account's flow logs in
    this region (`aws:SourceAccount`, `aws:SourceArn`: no confused deputy). Pure."""
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
        "Condition": {"StringEquals": {"aws:SourceAccount": account},
                      "ArnLike": {"aws:SourceArn": f"arn:{partition}:ec2:{region}:{account}:vpc-flow-log/*"}}}]}


@dataclass(frozen=True)
class NewNetworkArgs:
    """A VPC that the component creates."""

    cidr: str
    """The VPC's address space."""
    zones: int
    """How many availability zones to use (the first N the region offers)."""
    nat: Literal["none", "single", "perZone"]
    """Egress for private subnets; `none` puts nodes in public subnets."""
    flow_logs: bool
    """Send VPC flow logs to CloudWatch Logs."""
    flow_log_retention_days: int
    """Retention of the flow log group."""
    tags: dict[str, str]
    """Tags for every resource."""
    account: Account
    """The account, partition and region (looked up once by the cluster: `account_of`)."""
    source: str
    """The stack file, which a refusal of the zones names (as every config problem reads)."""
    flow_log_kms_key_arn: pulumi.Input[str] | None = None
    """Encrypt the flow log group with this key (when the stack encrypts its logs)."""


@dataclass(frozen=True)
class ExistingNetworkArgs:
    """A VPC that exists already; nothing of it is created."""

    vpc_id: str
    """The VPC's id."""
    private_subnet_ids: list[str]
    """Subnets for the nodes, one per zone."""
    public_subnet_ids: list[str]
    """Subnets for an internet-facing load balancer, one per zone."""
    source: str
    """The stack file, which a refusal of the subnets names (as every config problem reads)."""


class Network(pulumi.ComponentResource):
    """A VPC with public and (unless `nat: none`) private subnets in every zone."""

    vpc_id: pulumi.Output[str]
    cidr: pulumi.Output[str]
    public_subnet_ids: pulumi.Output[list[str]]
    node_subnet_ids: pulumi.Output[list[str]]
    """Where nodes go: the private subnets, or the public ones when there is no NAT."""
    nodes_public: bool
    """True when nodes sit in public subnets and need public addresses."""
    cidr_text: str
    """The VPC's range as known at deploy time (given, or looked up for an existing VPC)."""
    node_egress: list[pulumi.Resource]
    """What gives the node subnets their way out (route table associations and default
    routes): node groups depend on it, so a first boot can install packages. Empty for
    an existing VPC, whose routing is the user's."""

    def __init__(self, name: str, args: NewNetworkArgs | ExistingNetworkArgs,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("swarmstack:aws:Network", name, None, opts)
        if isinstance(args, ExistingNetworkArgs):
            self._existing(args)
        else:
            self._new(name, args)
        self.register_outputs({"vpcId": self.vpc_id, "nodeSubnetIds": self.node_subnet_ids})

    def _existing(self, args: ExistingNetworkArgs) -> None:
        invoke = pulumi.InvokeOptions(parent=self)
        vpc = aws.ec2.get_vpc(id=args.vpc_id, opts=invoke)
        for kind, ids in (("private", args.private_subnet_ids), ("public", args.public_subnet_ids)):
            subnets = [aws.ec2.get_subnet(id=subnet, opts=invoke) for subnet in ids]
            problem = subnet_problem(args.vpc_id, [(s.id, s.vpc_id, s.availability_zone) for s in subnets])
            if problem:
                refused = Problem(f"network.existing.{kind}SubnetIds", list(ids), problem)
                raise pulumi.RunError(refused.line(args.source))
        self.vpc_id = pulumi.Output.from_input(args.vpc_id)
        self.cidr = pulumi.Output.from_input(vpc.cidr_block)
        self.cidr_text = vpc.cidr_block
        self.public_subnet_ids = pulumi.Output.from_input(list(args.public_subnet_ids))
        self.node_subnet_ids = pulumi.Output.from_input(list(args.private_subnet_ids))
        self.nodes_public = False
        self.node_egress = []

    def _new(self, name: str, args: NewNetworkArgs) -> None:
        child = pulumi.ResourceOptions(parent=self)
        available = aws.get_availability_zones(state="available", opts=pulumi.InvokeOptions(parent=self)).names
        if len(available) < args.zones:
            raise pulumi.RunError(Problem("network.new.zones", args.zones, f"this region has only {len(available)} "
                                          f"zones available ({', '.join(available)})").line(args.source))
        zones = list(available[: args.zones])
        private = args.nat != "none"
        cidrs = split(args.cidr, 2 * args.zones)
        tags = args.tags

        vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block=args.cidr, enable_dns_hostnames=True,
                          enable_dns_support=True, tags={**tags, "Name": f"{name}-vpc"}, opts=child)
        aws.ec2.DefaultSecurityGroup(f"{name}-default-sg", vpc_id=vpc.id, ingress=[], egress=[],
                                     tags={**tags, "Name": f"{name}-default-closed"}, opts=child)
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags={**tags, "Name": f"{name}-igw"}, opts=child)
        public_egress: list[pulumi.Resource] = []
        private_egress: list[pulumi.Resource] = []
        public_rt = aws.ec2.RouteTable(f"{name}-public-rt", vpc_id=vpc.id,
                                       tags={**tags, "Name": f"{name}-public"}, opts=child)
        public_egress.append(aws.ec2.Route(f"{name}-public-default", route_table_id=public_rt.id,
                                           destination_cidr_block="0.0.0.0/0", gateway_id=igw.id, opts=child))

        public_subnets, private_subnets, nats = [], [], []
        for index, zone in enumerate(zones):
            letter = zone[-1]
            subnet = aws.ec2.Subnet(f"{name}-public-{letter}", vpc_id=vpc.id, cidr_block=cidrs[index],
                                    availability_zone=zone, map_public_ip_on_launch=not private,
                                    tags={**tags, "Name": f"{name}-public-{letter}", "swarmstack:tier": "public"},
                                    opts=child)
            public_egress.append(aws.ec2.RouteTableAssociation(f"{name}-public-{letter}", subnet_id=subnet.id,
                                                               route_table_id=public_rt.id, opts=child))
            public_subnets.append(subnet)
            if args.nat == "perZone" or (args.nat == "single" and index == 0):
                eip = aws.ec2.Eip(f"{name}-nat-{letter}", domain="vpc",
                                  tags={**tags, "Name": f"{name}-nat-{letter}"}, opts=child)
                nats.append(aws.ec2.NatGateway(f"{name}-nat-{letter}", allocation_id=eip.id, subnet_id=subnet.id,
                                               tags={**tags, "Name": f"{name}-nat-{letter}"},
                                               opts=pulumi.ResourceOptions(parent=self, depends_on=[igw])))

        if private:
            for index, zone in enumerate(zones):
                letter = zone[-1]
                subnet = aws.ec2.Subnet(f"{name}-private-{letter}", vpc_id=vpc.id,
                                        cidr_block=cidrs[args.zones + index], availability_zone=zone,
                                        map_public_ip_on_launch=False,
                                        tags={**tags, "Name": f"{name}-private-{letter}", "swarmstack:tier": "private"},
                                        opts=child)
                table = aws.ec2.RouteTable(f"{name}-private-{letter}", vpc_id=vpc.id,
                                           tags={**tags, "Name": f"{name}-private-{letter}"}, opts=child)
                nat = nats[index] if args.nat == "perZone" else nats[0]
                private_egress.append(aws.ec2.Route(f"{name}-private-{letter}-default", route_table_id=table.id,
                                                    destination_cidr_block="0.0.0.0/0", nat_gateway_id=nat.id,
                                                    opts=child))
                private_egress.append(aws.ec2.RouteTableAssociation(f"{name}-private-{letter}", subnet_id=subnet.id,
                                                                    route_table_id=table.id, opts=child))
                private_subnets.append(subnet)

        if args.flow_logs:
            self._flow_logs(name, vpc, args)

        self.vpc_id = vpc.id
        self.cidr = vpc.cidr_block
        self.cidr_text = args.cidr
        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in public_subnets])
        nodes = private_subnets if private else public_subnets
        self.node_subnet_ids = pulumi.Output.all(*[s.id for s in nodes])
        self.nodes_public = not private
        self.node_egress = private_egress if private else public_egress

    def _flow_logs(self, name: str, vpc: aws.ec2.Vpc, args: NewNetworkArgs) -> None:
        child = pulumi.ResourceOptions(parent=self)
        # IAM names are global to the account: the region keeps two stacks of one name apart.
        region = args.account.region
        group = aws.cloudwatch.LogGroup(f"{name}-flow-logs", name=f"{cluster_tree(name)}/flow-logs",
                                        retention_in_days=args.flow_log_retention_days,
                                        kms_key_id=args.flow_log_kms_key_arn, tags=args.tags, opts=child)
        role = aws.iam.Role(f"{name}-flow-logs",
                            name=fit(f"swarmstack-{name}-{region}-flow-logs", LIMITS["iam-role"]),
                            assume_role_policy=pulumi.Output.json_dumps(flow_logs_trust_policy(
                                args.account.partition, region, args.account.id)),
                            tags=args.tags, opts=child)
        aws.iam.RolePolicy(f"{name}-flow-logs", name=fit(f"{name}-flow-logs", LIMITS["iam-policy"]), role=role.id,
                           policy=pulumi.Output.json_dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow",
                           "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                           "Resource": [group.arn, pulumi.Output.concat(group.arn, ":*")]}],
        }), opts=child)
        aws.ec2.FlowLog(f"{name}-flow-logs", vpc_id=vpc.id, traffic_type="ALL", log_destination=group.arn,
                        log_destination_type="cloud-watch-logs", iam_role_arn=role.arn, tags=args.tags, opts=child)
