"""The AWS model: every `aws:*` resource and invoke is carried out in moto, in process.

Each handler turns the Pulumi inputs of one resource type into the boto3 calls the
provider would make, so moto checks the references (a subnet outside its VPC, a
rule naming a missing group, an ASG in an unknown subnet) as AWS would, and the
outputs are the ids, ARNs and attributes moto gives back.

Where moto lacks an operation (see `docs/engine.md`), the handler checks the inputs
itself against AWS's documented rules and says so in its docstring.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
from botocore.exceptions import ClientError, ParamValidationError

from swarmstack.engine.mocks import EngineError, UnsupportedByEngine

Outputs = dict[str, Any]
Handler = Callable[["AwsBackend", str, dict[str, Any]], tuple[str, Outputs]]
Invoke = Callable[["AwsBackend", dict[str, Any]], Outputs]

HANDLERS: dict[str, Handler] = {}
INVOKES: dict[str, Invoke] = {}


def handles(type_: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[type_] = fn
        return fn
    return register


def answers(token: str) -> Callable[[Invoke], Invoke]:
    def register(fn: Invoke) -> Invoke:
        INVOKES[token] = fn
        return fn
    return register


class AwsBackend:
    """One moto account in one region, for one run of the program."""

    account = "123456789012"

    def __init__(self, region: str):
        self.region = region
        self._mock: Any = None
        self._clients: dict[str, Any] = {}
        self.state: dict[str, Any] = {}
        """Facts handlers share that moto does not keep (e.g. SSM associations)."""

    def __enter__(self) -> AwsBackend:
        import os

        from moto import mock_aws

        for key, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                           ("AWS_SESSION_TOKEN", "testing"), ("AWS_DEFAULT_REGION", self.region)):
            os.environ.setdefault(key, value)
        self._mock = mock_aws()
        self._mock.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._mock is not None:
            self._mock.stop()
            self._mock = None

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = boto3.client(service, region_name=self.region)
        return self._clients[service]

    @property
    def ec2(self) -> Any:
        return self.client("ec2")

    def arn(self, service: str, resource: str, region: bool = True) -> str:
        return f"arn:aws:{service}:{self.region if region else ''}:{self.account}:{resource}"

    def create(self, type_: str, name: str, inputs: dict[str, Any]) -> tuple[str, Outputs]:
        handler = HANDLERS.get(type_)
        if handler is None:
            raise UnsupportedByEngine(f"{type_} '{name}': the engine has no model of this AWS resource type")
        try:
            rid, outputs = handler(self, name, inputs)
        except (ClientError, ParamValidationError) as err:
            raise EngineError(f"{type_} '{name}': AWS refuses it: {err}") from None
        return rid, {**inputs, **outputs, "id": rid}

    def invoke(self, token: str, args: dict[str, Any]) -> Outputs:
        fn = INVOKES.get(token)
        if fn is None:
            raise UnsupportedByEngine(f"{token}: the engine has no model of this AWS invoke")
        try:
            return fn(self, args)
        except ClientError as err:
            raise EngineError(f"{token}: AWS refuses it: {err}") from None


def tag_specs(kind: str, inputs: dict[str, Any]) -> list[dict[str, Any]]:
    tags = inputs.get("tags") or {}
    if not tags:
        return []
    return [{"ResourceType": kind, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]


def tags_all(inputs: dict[str, Any]) -> Outputs:
    return {"tagsAll": dict(inputs.get("tags") or {})}


def need(inputs: dict[str, Any], key: str, type_: str, name: str) -> Any:
    if inputs.get(key) in (None, ""):
        raise EngineError(f"{type_} '{name}': {key} is required")
    return inputs[key]


def as_int(value: Any) -> int:
    """Numbers come back from the mock runtime as floats."""
    return int(value)


# ---------------------------------------------------------------- invokes

@answers("aws:index/getAvailabilityZones:getAvailabilityZones")
def _zones(aws: AwsBackend, args: dict[str, Any]) -> Outputs:
    zones = aws.ec2.describe_availability_zones()["AvailabilityZones"]
    state = args.get("state")
    zones = [z for z in zones if state is None or z["State"] == state]
    return {"names": [z["ZoneName"] for z in zones], "zoneIds": [z["ZoneId"] for z in zones],
            "id": aws.region, "groupNames": [aws.region] * len(zones)}


@answers("aws:index/getRegion:getRegion")
def _region(aws: AwsBackend, args: dict[str, Any]) -> Outputs:
    return {"name": aws.region, "region": aws.region, "id": aws.region,
            "endpoint": f"ec2.{aws.region}.amazonaws.com", "description": aws.region}


@answers("aws:index/getCallerIdentity:getCallerIdentity")
def _caller(aws: AwsBackend, args: dict[str, Any]) -> Outputs:
    ident = aws.client("sts").get_caller_identity()
    return {"accountId": ident["Account"], "arn": ident["Arn"], "userId": ident["UserId"], "id": ident["Account"]}


@answers("aws:index/getPartition:getPartition")
def _partition(aws: AwsBackend, args: dict[str, Any]) -> Outputs:
    return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws",
            "reverseDnsPrefix": "com.amazonaws"}


@answers("aws:ssm/getParameter:getParameter")
def _parameter(aws: AwsBackend, args: dict[str, Any]) -> Outputs:
    found = aws.client("ssm").get_parameter(Name=args["name"], WithDecryption=bool(args.get("withDecryption", True)))
    p = found["Parameter"]
    return {"name": p["Name"], "value": p["Value"], "type": p["Type"], "arn": p["ARN"],
            "version": p["Version"], "id": p["Name"], "insecureValue": p["Value"]}


# ---------------------------------------------------------------- network

@handles("aws:ec2/vpc:Vpc")
def _vpc(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    vpc = aws.ec2.create_vpc(CidrBlock=need(i, "cidrBlock", "Vpc", name),
                             TagSpecifications=tag_specs("vpc", i))["Vpc"]
    vid = vpc["VpcId"]
    for attr in ("enableDnsHostnames", "enableDnsSupport"):
        if attr in i:
            aws.ec2.modify_vpc_attribute(VpcId=vid, **{attr[0].upper() + attr[1:]: {"Value": bool(i[attr])}})
    groups = aws.ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vid]},
                                                       {"Name": "group-name", "Values": ["default"]}])
    tables = aws.ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vid]}])["RouteTables"]
    acls = aws.ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vid]}])["NetworkAcls"]
    return vid, {"arn": aws.arn("ec2", f"vpc/{vid}"), "cidrBlock": vpc["CidrBlock"],
                 "defaultSecurityGroupId": groups["SecurityGroups"][0]["GroupId"],
                 "mainRouteTableId": tables[0]["RouteTableId"] if tables else "",
                 "defaultNetworkAclId": acls[0]["NetworkAclId"] if acls else "",
                 "ownerId": aws.account, **tags_all(i)}


@handles("aws:ec2/subnet:Subnet")
def _subnet(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    kwargs: dict[str, Any] = {"VpcId": need(i, "vpcId", "Subnet", name),
                              "CidrBlock": need(i, "cidrBlock", "Subnet", name),
                              "TagSpecifications": tag_specs("subnet", i)}
    if i.get("availabilityZone"):
        kwargs["AvailabilityZone"] = i["availabilityZone"]
    subnet = aws.ec2.create_subnet(**kwargs)["Subnet"]
    sid = subnet["SubnetId"]
    if i.get("mapPublicIpOnLaunch"):
        aws.ec2.modify_subnet_attribute(SubnetId=sid, MapPublicIpOnLaunch={"Value": True})
    return sid, {"arn": subnet.get("SubnetArn", aws.arn("ec2", f"subnet/{sid}")),
                 "availabilityZone": subnet["AvailabilityZone"],
                 "availabilityZoneId": subnet.get("AvailabilityZoneId", ""),
                 "mapPublicIpOnLaunch": bool(i.get("mapPublicIpOnLaunch", False)), **tags_all(i)}


@handles("aws:ec2/internetGateway:InternetGateway")
def _igw(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    igw = aws.ec2.create_internet_gateway(TagSpecifications=tag_specs("internet-gateway", i))["InternetGateway"]
    gid = igw["InternetGatewayId"]
    if i.get("vpcId"):
        aws.ec2.attach_internet_gateway(InternetGatewayId=gid, VpcId=i["vpcId"])
    return gid, {"arn": aws.arn("ec2", f"internet-gateway/{gid}"), "ownerId": aws.account, **tags_all(i)}


@handles("aws:ec2/eip:Eip")
def _eip(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    eip = aws.ec2.allocate_address(Domain=i.get("domain", "vpc"), TagSpecifications=tag_specs("elastic-ip", i))
    return eip["AllocationId"], {"allocationId": eip["AllocationId"], "publicIp": eip["PublicIp"],
                                 "domain": "vpc", **tags_all(i)}


@handles("aws:ec2/natGateway:NatGateway")
def _nat(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    kwargs: dict[str, Any] = {"SubnetId": need(i, "subnetId", "NatGateway", name),
                              "TagSpecifications": tag_specs("natgateway", i)}
    if i.get("connectivityType", "public") == "public":
        kwargs["AllocationId"] = need(i, "allocationId", "NatGateway", name)
        if not aws.ec2.describe_addresses(AllocationIds=[kwargs["AllocationId"]])["Addresses"]:
            raise EngineError(f"NatGateway '{name}': allocation {kwargs['AllocationId']} does not exist")
    nat = aws.ec2.create_nat_gateway(**kwargs)["NatGateway"]
    return nat["NatGatewayId"], {"connectivityType": i.get("connectivityType", "public"), **tags_all(i)}


@handles("aws:ec2/routeTable:RouteTable")
def _route_table(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    table = aws.ec2.create_route_table(VpcId=need(i, "vpcId", "RouteTable", name),
                                       TagSpecifications=tag_specs("route-table", i))["RouteTable"]
    tid = table["RouteTableId"]
    for route in i.get("routes") or []:
        _add_route(aws, name, tid, route)
    return tid, {"arn": aws.arn("ec2", f"route-table/{tid}"), "ownerId": aws.account, **tags_all(i)}


def _add_route(aws: AwsBackend, name: str, table_id: str, route: dict[str, Any]) -> None:
    kwargs: dict[str, Any] = {"RouteTableId": table_id}
    if route.get("destinationCidrBlock") or route.get("cidrBlock"):
        kwargs["DestinationCidrBlock"] = route.get("destinationCidrBlock") or route.get("cidrBlock")
    if route.get("destinationIpv6CidrBlock"):
        kwargs["DestinationIpv6CidrBlock"] = route["destinationIpv6CidrBlock"]
    targets = {"gatewayId": "GatewayId", "natGatewayId": "NatGatewayId",
               "vpcPeeringConnectionId": "VpcPeeringConnectionId", "networkInterfaceId": "NetworkInterfaceId",
               "transitGatewayId": "TransitGatewayId"}
    given = [k for k in targets if route.get(k)]
    if len(given) != 1:
        raise EngineError(f"Route '{name}': exactly one target is required, got {given or 'none'}")
    kwargs[targets[given[0]]] = route[given[0]]
    if given[0] == "natGatewayId":
        gateways = aws.ec2.describe_nat_gateways(NatGatewayIds=[route["natGatewayId"]])["NatGateways"]
        if not gateways:
            raise EngineError(f"Route '{name}': NAT gateway {route['natGatewayId']} does not exist")
    aws.ec2.create_route(**kwargs)


@handles("aws:ec2/route:Route")
def _route(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    table = need(i, "routeTableId", "Route", name)
    _add_route(aws, name, table, i)
    return f"r-{table}{i.get('destinationCidrBlock', '')}", {"state": "active", "origin": "CreateRoute"}


@handles("aws:ec2/routeTableAssociation:RouteTableAssociation")
def _association(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    kwargs = {"RouteTableId": need(i, "routeTableId", "RouteTableAssociation", name)}
    if i.get("subnetId"):
        kwargs["SubnetId"] = i["subnetId"]
    elif i.get("gatewayId"):
        kwargs["GatewayId"] = i["gatewayId"]
    else:
        raise EngineError(f"RouteTableAssociation '{name}': subnetId or gatewayId is required")
    assoc = aws.ec2.associate_route_table(**kwargs)
    return assoc["AssociationId"], {}


def _rule_permission(rule: dict[str, Any]) -> dict[str, Any]:
    protocol = str(rule.get("ipProtocol") or rule.get("protocol"))
    permission: dict[str, Any] = {"IpProtocol": protocol}
    if protocol not in ("-1", "50", "esp", "all"):
        permission["FromPort"] = as_int(rule["fromPort"])
        permission["ToPort"] = as_int(rule["toPort"])
    for key, target, inner in (("cidrIpv4", "IpRanges", "CidrIp"), ("cidrIpv6", "Ipv6Ranges", "CidrIpv6")):
        if rule.get(key):
            permission[target] = [{inner: rule[key], "Description": rule.get("description", "")}]
    for key in ("cidrBlocks",):
        if rule.get(key):
            permission["IpRanges"] = [{"CidrIp": c} for c in rule[key]]
    if rule.get("ipv6CidrBlocks"):
        permission["Ipv6Ranges"] = [{"CidrIpv6": c} for c in rule["ipv6CidrBlocks"]]
    ref = rule.get("referencedSecurityGroupId") or rule.get("sourceSecurityGroupId")
    groups = list(rule.get("securityGroups") or []) + ([ref] if ref else [])
    if rule.get("self"):
        groups.append(rule["__self"])
    if groups:
        permission["UserIdGroupPairs"] = [{"GroupId": g, "Description": rule.get("description", "")} for g in groups]
    if rule.get("prefixListId"):
        permission["PrefixListIds"] = [{"PrefixListId": rule["prefixListId"]}]
    return permission


def _check_rule_source(type_: str, name: str, rule: dict[str, Any]) -> None:
    sources = [k for k in ("cidrIpv4", "cidrIpv6", "referencedSecurityGroupId", "prefixListId") if rule.get(k)]
    if len(sources) != 1:
        raise EngineError(f"{type_} '{name}': exactly one of cidrIpv4, cidrIpv6, referencedSecurityGroupId "
                          f"or prefixListId is required, got {sources or 'none'}")


@handles("aws:ec2/securityGroup:SecurityGroup")
def _security_group(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    group_name = i.get("name") or f"{i.get('namePrefix', name)}{abs(hash(name)) % 10**8:08d}"
    group = aws.ec2.create_security_group(GroupName=group_name, VpcId=need(i, "vpcId", "SecurityGroup", name),
                                          Description=i.get("description", "Managed by Pulumi"),
                                          TagSpecifications=tag_specs("security-group", i))
    gid = group["GroupId"]
    # As the provider does: drop AWS's default allow-all egress, then apply the inline rules.
    described = aws.ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]
    if described.get("IpPermissionsEgress"):
        aws.ec2.revoke_security_group_egress(GroupId=gid, IpPermissions=described["IpPermissionsEgress"])
    for direction, call in (("ingress", aws.ec2.authorize_security_group_ingress),
                            ("egress", aws.ec2.authorize_security_group_egress)):
        for rule in i.get(direction) or []:
            call(GroupId=gid, IpPermissions=[_rule_permission({**rule, "__self": gid})])
    return gid, {"arn": aws.arn("ec2", f"security-group/{gid}"), "name": group_name,
                 "ownerId": aws.account, "ingress": i.get("ingress") or [], "egress": i.get("egress") or [],
                 **tags_all(i)}


@handles("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
def _default_security_group(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    vpc = need(i, "vpcId", "DefaultSecurityGroup", name)
    found = aws.ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                                      {"Name": "group-name", "Values": ["default"]}])
    group = found["SecurityGroups"][0]
    gid = group["GroupId"]
    # The provider makes the group's rules exactly the inputs: revoke everything, add those.
    if group.get("IpPermissions"):
        aws.ec2.revoke_security_group_ingress(GroupId=gid, IpPermissions=group["IpPermissions"])
    if group.get("IpPermissionsEgress"):
        aws.ec2.revoke_security_group_egress(GroupId=gid, IpPermissions=group["IpPermissionsEgress"])
    for direction, call in (("ingress", aws.ec2.authorize_security_group_ingress),
                            ("egress", aws.ec2.authorize_security_group_egress)):
        for rule in i.get(direction) or []:
            call(GroupId=gid, IpPermissions=[_rule_permission({**rule, "__self": gid})])
    return gid, {"arn": aws.arn("ec2", f"security-group/{gid}"), "name": "default",
                 "ingress": i.get("ingress") or [], "egress": i.get("egress") or [], **tags_all(i)}


def _sg_rule(direction: str) -> Handler:
    type_ = f"aws:vpc/securityGroup{direction.title()}Rule:SecurityGroup{direction.title()}Rule"

    def handler(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
        _check_rule_source(type_, name, i)
        group = need(i, "securityGroupId", type_, name)
        call = aws.ec2.authorize_security_group_ingress if direction == "ingress" \
            else aws.ec2.authorize_security_group_egress
        result = call(GroupId=group, IpPermissions=[_rule_permission(i)])
        rules = result.get("SecurityGroupRules") or [{}]
        rid = rules[0].get("SecurityGroupRuleId") or f"sgr-{abs(hash(name)) % 10**17:017d}"
        return rid, {"securityGroupRuleId": rid,
                     "arn": aws.arn("ec2", f"security-group-rule/{rid}"), **tags_all(i)}

    HANDLERS[type_] = handler
    return handler


_sg_rule("ingress")
_sg_rule("egress")


@handles("aws:ec2/flowLog:FlowLog")
def _flow_log(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    kwargs: dict[str, Any] = {"ResourceIds": [need(i, "vpcId", "FlowLog", name)], "ResourceType": "VPC",
                              "TrafficType": need(i, "trafficType", "FlowLog", name)}
    destination_type = i.get("logDestinationType", "cloud-watch-logs")
    if destination_type == "cloud-watch-logs":
        kwargs["LogDestinationType"] = "cloud-watch-logs"
        kwargs["LogGroupName"] = need(i, "logDestination", "FlowLog", name).split(":log-group:")[-1].rstrip(":*")
        kwargs["DeliverLogsPermissionArn"] = need(i, "iamRoleArn", "FlowLog", name)
    else:
        kwargs["LogDestinationType"] = destination_type
        kwargs["LogDestination"] = need(i, "logDestination", "FlowLog", name)
    result = aws.client("ec2").create_flow_logs(**kwargs)
    if result.get("Unsuccessful"):
        raise EngineError(f"FlowLog '{name}': AWS refuses it: {result['Unsuccessful']}")
    fid = result["FlowLogIds"][0]
    return fid, {"arn": aws.arn("ec2", f"vpc-flow-log/{fid}"), **tags_all(i)}


# ---------------------------------------------------------------- logs

@handles("aws:cloudwatch/logGroup:LogGroup")
def _log_group(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    logs = aws.client("logs")
    group = i.get("name") or f"{i.get('namePrefix', name)}"
    kwargs: dict[str, Any] = {"logGroupName": group}
    if i.get("kmsKeyId"):
        kwargs["kmsKeyId"] = i["kmsKeyId"]
    if i.get("tags"):
        kwargs["tags"] = i["tags"]
    logs.create_log_group(**kwargs)
    if i.get("retentionInDays"):
        logs.put_retention_policy(logGroupName=group, retentionInDays=as_int(i["retentionInDays"]))
    return group, {"name": group, "arn": aws.arn("logs", f"log-group:{group}"), **tags_all(i)}


def policy_document(value: Any) -> dict[str, Any]:
    """An IAM policy input is a JSON string (or already a mapping)."""
    return json.loads(value) if isinstance(value, str) else dict(value)


# ---------------------------------------------------------------- iam

@handles("aws:iam/role:Role")
def _role(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    role_name = i.get("name") or f"{name}-{abs(hash(name)) % 10**7:07d}"
    trust = need(i, "assumeRolePolicy", "Role", name)
    kwargs: dict[str, Any] = {"RoleName": role_name, "AssumeRolePolicyDocument":
                              trust if isinstance(trust, str) else json.dumps(trust),
                              "Path": i.get("path", "/")}
    if i.get("tags"):
        kwargs["Tags"] = [{"Key": k, "Value": v} for k, v in i["tags"].items()]
    role = aws.client("iam").create_role(**kwargs)["Role"]
    for arn in i.get("managedPolicyArns") or []:
        aws.client("iam").attach_role_policy(RoleName=role_name, PolicyArn=arn)
    return role_name, {"name": role_name, "arn": role["Arn"], "uniqueId": role["RoleId"], **tags_all(i)}


@handles("aws:iam/rolePolicy:RolePolicy")
def _role_policy(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    role = need(i, "role", "RolePolicy", name)
    policy_name = i.get("name") or name
    document = need(i, "policy", "RolePolicy", name)
    aws.client("iam").put_role_policy(RoleName=role, PolicyName=policy_name,
                                      PolicyDocument=document if isinstance(document, str) else json.dumps(document))
    return f"{role}:{policy_name}", {"name": policy_name}
