"""The AWS model refuses what AWS refuses, for the resource types the cluster uses,
and fails loudly on what it does not know. Handlers are called directly, in one moto
account for the module (each test names its own resources): fast."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from swarmstack.engine.aws import AwsBackend
from swarmstack.engine.mocks import EngineError, UnsupportedByEngine

REGION = "eu-west-1"


@pytest.fixture(scope="module")
def aws() -> Iterator[AwsBackend]:
    with AwsBackend(REGION) as backend:
        yield backend


@pytest.fixture(scope="module")
def net(aws: AwsBackend) -> dict[str, Any]:
    """A VPC with an internet gateway, two subnets in two zones, a group, a profile and a template."""
    _, vpc = aws.create("aws:ec2/vpc:Vpc", "vpc", {"cidrBlock": "10.0.0.0/16"})
    aws.create("aws:ec2/internetGateway:InternetGateway", "igw", {"vpcId": vpc["id"]})
    subnets = [aws.create("aws:ec2/subnet:Subnet", f"s{i}", {"vpcId": vpc["id"], "cidrBlock": f"10.0.{i}.0/24",
                                                            "availabilityZone": f"{REGION}{z}"})[0]
               for i, z in enumerate("ab")]
    _, group = aws.create("aws:ec2/securityGroup:SecurityGroup", "sg", {"vpcId": vpc["id"]})
    aws.create("aws:iam/role:Role", "role", {"name": "node", "assumeRolePolicy": json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                 "Principal": {"Service": "ec2.amazonaws.com"}}]})})
    _, profile = aws.create("aws:iam/instanceProfile:InstanceProfile", "profile", {"role": "node"})
    image = aws.invoke("aws:ssm/getParameter:getParameter", {
        "name": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"})["value"]
    template, _ = aws.create("aws:ec2/launchTemplate:LaunchTemplate", "lt", {
        "imageId": image, "instanceType": "t3.small", "iamInstanceProfile": {"arn": profile["arn"]},
        "networkInterfaces": [{"deviceIndex": 0, "securityGroups": [group["id"]]}]})
    return {"vpc": vpc["id"], "subnets": subnets, "group": group["id"], "profile": profile["arn"],
            "template": template, "image": image}


def asg_inputs(net: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    return {"minSize": 1.0, "maxSize": 2.0, "desiredCapacity": 1.0, "vpcZoneIdentifiers": net["subnets"],
            "launchTemplate": {"id": net["template"], "version": "1"}, **overrides}


def test_an_unknown_resource_type_fails_loudly(aws: AwsBackend) -> None:
    with pytest.raises(UnsupportedByEngine, match=r"aws:ec2/instance:Instance 'x': the engine has no model"):
        aws.create("aws:ec2/instance:Instance", "x", {})
    with pytest.raises(UnsupportedByEngine, match=r"aws:rds/getEngineVersion:getEngineVersion"):
        aws.invoke("aws:rds/getEngineVersion:getEngineVersion", {})


def test_a_subnet_outside_its_vpc_is_refused(aws: AwsBackend) -> None:
    _, vpc = aws.create("aws:ec2/vpc:Vpc", "vpc-range", {"cidrBlock": "10.0.0.0/16"})
    with pytest.raises(EngineError, match=r"InvalidSubnet.Range"):
        aws.create("aws:ec2/subnet:Subnet", "outside", {"vpcId": vpc["id"], "cidrBlock": "10.1.0.0/24"})


def test_a_rule_on_a_missing_group_or_from_a_missing_group_is_refused(aws: AwsBackend, net: dict[str, Any]) -> None:
    rule = {"ipProtocol": "tcp", "fromPort": 2377.0, "toPort": 2377.0}
    with pytest.raises(EngineError, match=r"InvalidGroup.NotFound"):
        aws.create("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "orphan",
                   {**rule, "securityGroupId": "sg-0123456789abcdef0", "referencedSecurityGroupId": net["group"]})
    with pytest.raises(EngineError, match=r"InvalidGroup.NotFound"):
        aws.create("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "from-nowhere",
                   {**rule, "securityGroupId": net["group"], "referencedSecurityGroupId": "sg-0123456789abcdef0"})


def test_esp_rules_are_kept_without_ports(aws: AwsBackend, net: dict[str, Any]) -> None:
    _, group = aws.create("aws:ec2/securityGroup:SecurityGroup", "esp-sg", {"vpcId": net["vpc"]})
    aws.create("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "esp",
               {"ipProtocol": "50", "securityGroupId": group["id"], "referencedSecurityGroupId": group["id"]})
    rules = aws.ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group["id"]]}])
    assert [r["IpProtocol"] for r in rules["SecurityGroupRules"] if not r["IsEgress"]] == ["50"]


def test_an_auto_scaling_group_in_an_unknown_subnet_is_refused(aws: AwsBackend, net: dict[str, Any]) -> None:
    with pytest.raises(EngineError, match=r"InvalidSubnetID.NotFound"):
        aws.create("aws:autoscaling/group:Group", "g", asg_inputs(net, vpcZoneIdentifiers=["subnet-0123456789abcdef0"]))


def test_a_group_naming_a_missing_launch_template_is_refused(aws: AwsBackend, net: dict[str, Any]) -> None:
    with pytest.raises(EngineError, match=r"InvalidLaunchTemplateId.NotFound"):
        aws.create("aws:autoscaling/group:Group", "g",
                   asg_inputs(net, launchTemplate={"id": "lt-0123456789abcdef0", "version": "1"}))


def test_a_spot_policy_naming_a_missing_launch_template_is_refused(aws: AwsBackend, net: dict[str, Any]) -> None:
    mixed = {"launchTemplate": {"launchTemplateSpecification": {"launchTemplateId": "lt-0123456789abcdef0"},
                                "overrides": [{"instanceType": "m6i.large"}]},
             "instancesDistribution": {"spotAllocationStrategy": "price-capacity-optimized"}}
    inputs = asg_inputs(net, mixedInstancesPolicy=mixed)
    del inputs["launchTemplate"]
    with pytest.raises(EngineError, match=r"NotFound"):
        aws.create("aws:autoscaling/group:Group", "g", inputs)


def test_a_group_with_an_image_of_the_wrong_architecture_is_refused(aws: AwsBackend, net: dict[str, Any]) -> None:
    template, _ = aws.create("aws:ec2/launchTemplate:LaunchTemplate", "arm", {
        "imageId": net["image"], "instanceType": "m7g.large"})
    with pytest.raises(EngineError, match=r"is x86_64, instance type m7g.large runs arm64"):
        aws.create("aws:autoscaling/group:Group", "g", asg_inputs(net, launchTemplate={"id": template, "version": "1"}))


@pytest.mark.parametrize(("overrides", "message"), [
    ({"desiredCapacity": 3.0}, r"desired capacity 3 is outside min 1 to max 2"),
    ({"initialLifecycleHooks": [{"name": "swarmstack-drain", "heartbeatTimeout": 10.0,
                                 "lifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING"}]},
     r"heartbeatTimeout 10 is outside 30 to 7200"),
    ({"instanceRefresh": {"strategy": "Rolling", "preferences": {"minHealthyPercentage": 50.0,
                                                                 "maxHealthyPercentage": 200.0}}},
     r"may exceed minHealthyPercentage by at most 100"),
])
def test_group_settings_auto_scaling_refuses(aws: AwsBackend, net: dict[str, Any], overrides: dict[str, Any],
                                             message: str) -> None:
    with pytest.raises(EngineError, match=message):
        aws.create("aws:autoscaling/group:Group", "g", asg_inputs(net, **overrides))


def test_an_attachment_to_a_missing_group_is_refused(aws: AwsBackend, net: dict[str, Any]) -> None:
    arn, _ = aws.create("aws:lb/targetGroup:TargetGroup", "tg", {"port": 80.0, "protocol": "TCP", "vpcId": net["vpc"]})
    with pytest.raises(EngineError, match=r"auto scaling group nope does not exist"):
        aws.create("aws:autoscaling/attachment:Attachment", "a", {"autoscalingGroupName": "nope",
                                                                  "lbTargetGroupArn": arn})


def test_moto_s_indexed_lookups_answer_as_its_scans_do(aws: AwsBackend, net: dict[str, Any]) -> None:
    """`_index_moto_lookups` (a 1,000-worker plan spent most of its time in moto's scans):
    for every instance, volume and tagged resource of a group of 12 launched beside others,
    the replacements give what moto's own functions give, errors included."""
    from moto.ec2.exceptions import InvalidInstanceIdError, InvalidVolumeIdError
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.instances import InstanceBackend

    aws.create("aws:autoscaling/group:Group", "indexed-first", asg_inputs(net, minSize=3.0, maxSize=3.0,
                                                                         desiredCapacity=3.0))
    aws.create("aws:autoscaling/group:Group", "indexed", asg_inputs(net, minSize=12.0, maxSize=12.0,
                                                                   desiredCapacity=12.0))
    original = InstanceBackend._swarmstack_originals  # type: ignore[attr-defined]
    ec2 = ec2_backends["123456789012"][REGION]
    instances = [i for r in ec2.reservations.values() for i in r.instances]
    assert len(instances) >= 15 and len(ec2.reservations) >= 2
    for instance in instances:
        assert ec2.get_instance(instance.id) is original["get_instance"](ec2, instance.id)
        assert ec2.get_instance_by_id(instance.id) is original["get_instance_by_id"](ec2, instance.id)
        assert instance.get_tags() == original["get_tags"](instance)
    assert all(i.get_tags() for i in instances)  # moto tags each with its group: the comparison means something
    assert len(ec2.volumes) >= len(instances)  # each instance's root volume, attached at launch
    for volume in ec2.volumes.values():
        assert ec2.describe_volumes([volume.id]) == original["describe_volumes"](ec2, [volume.id])
        assert volume.get_tags() == original["get_tags"](volume)
    assert ec2.get_instance_by_id("i-0123456789abcdef0") is None
    with pytest.raises(InvalidInstanceIdError):
        ec2.get_instance("i-0123456789abcdef0")
    with pytest.raises(InvalidVolumeIdError) as ours:
        ec2.describe_volumes(["vol-0123456789abcdef0"])
    with pytest.raises(InvalidVolumeIdError) as theirs:
        original["describe_volumes"](ec2, ["vol-0123456789abcdef0"])
    assert str(ours.value) == str(theirs.value)


def test_a_group_s_outputs_are_what_aws_describes_and_its_attachment_describes_nothing_again(aws: AwsBackend,
                                                                          net: dict[str, Any]) -> None:
    group, outputs = aws.create("aws:autoscaling/group:Group", "described-once", asg_inputs(net))
    described = aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])
    assert outputs["arn"] == described["AutoScalingGroups"][0]["AutoScalingGroupARN"]  # read from moto's model
    assert outputs["availabilityZones"] == described["AutoScalingGroups"][0]["AvailabilityZones"]
    arn, _ = aws.create("aws:lb/targetGroup:TargetGroup", "tg-once", {"port": 81.0, "protocol": "TCP",
                                                                      "vpcId": net["vpc"]})
    calls: list[str] = []
    client = aws.client("autoscaling")

    def record(model: Any, **_: Any) -> None:
        calls.append(model.name)

    client.meta.events.register("before-call.auto-scaling.*", record)
    try:
        aws.create("aws:autoscaling/attachment:Attachment", "once", {"autoscalingGroupName": group,
                                                                     "lbTargetGroupArn": arn})
        assert calls == ["AttachLoadBalancerTargetGroups"]
        # A group this run did not make is described, as before.
        client.create_auto_scaling_group(AutoScalingGroupName="made-elsewhere", MinSize=0, MaxSize=1,
                                         DesiredCapacity=0, VPCZoneIdentifier=net["subnets"][0],
                                         LaunchTemplate={"LaunchTemplateId": net["template"], "Version": "1"})
        calls.clear()
        aws.create("aws:autoscaling/attachment:Attachment", "elsewhere", {"autoscalingGroupName": "made-elsewhere",
                                                                          "lbTargetGroupArn": arn})
        assert calls == ["DescribeAutoScalingGroups", "AttachLoadBalancerTargetGroups"]
    finally:
        client.meta.events.unregister("before-call.auto-scaling.*", record)
    attached = client.describe_load_balancer_target_groups(AutoScalingGroupName=group)["LoadBalancerTargetGroups"]
    assert [a["LoadBalancerTargetGroupARN"] for a in attached] == [arn]


def test_kms_keys_make_their_key_pair_only_when_signing_needs_it(aws: AwsBackend) -> None:
    """`_lazy_kms_key_pairs`: moto made an RSA pair for every key (a tenth of a run); a
    symmetric key never needs it, an asymmetric one still signs and verifies."""
    from moto.kms.models import kms_backends

    kms = aws.client("kms")
    symmetric = kms.create_key()["KeyMetadata"]["KeyId"]
    model = kms_backends["123456789012"][REGION].keys[symmetric]
    blob = kms.encrypt(KeyId=symmetric, Plaintext=b"x")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
    assert model.private_key._key is None  # never made
    for spec, algorithm in (("RSA_2048", "RSASSA_PSS_SHA_256"), ("ECC_NIST_P256", "ECDSA_SHA_256")):
        signing = kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec=spec)["KeyMetadata"]["KeyId"]
        assert kms_backends["123456789012"][REGION].keys[signing].private_key._key is None
        signature = kms.sign(KeyId=signing, Message=b"m", SigningAlgorithm=algorithm)["Signature"]
        assert kms.verify(KeyId=signing, Message=b"m", Signature=signature,
                          SigningAlgorithm=algorithm)["SignatureValid"], spec
        assert kms.get_public_key(KeyId=signing)["PublicKey"]
    copy.copy(model.private_key)  # a copy of the stand-in is no endless lookup


def test_an_attachment_to_a_missing_target_group_is_refused(aws: AwsBackend, net: dict[str, Any]) -> None:
    group, _ = aws.create("aws:autoscaling/group:Group", "g-attach", asg_inputs(net))
    with pytest.raises(EngineError, match=r"TargetGroupNotFound"):
        aws.create("aws:autoscaling/attachment:Attachment", "a", {
            "autoscalingGroupName": group,
            "lbTargetGroupArn": f"arn:aws:elasticloadbalancing:{REGION}:123456789012:targetgroup/x/0123456789abcdef"})


def test_a_load_balancer_with_two_subnets_in_one_zone_is_refused(aws: AwsBackend, net: dict[str, Any]) -> None:
    extra, _ = aws.create("aws:ec2/subnet:Subnet", "s9", {"vpcId": net["vpc"], "cidrBlock": "10.0.9.0/24",
                                                          "availabilityZone": f"{REGION}a"})
    with pytest.raises(EngineError, match=r"one subnet per availability zone"):
        aws.create("aws:lb/loadBalancer:LoadBalancer", "nlb", {"loadBalancerType": "network",
                                                               "subnets": [net["subnets"][0], extra]})


def test_an_internet_facing_balancer_needs_an_internet_gateway(aws: AwsBackend) -> None:
    _, vpc = aws.create("aws:ec2/vpc:Vpc", "closed", {"cidrBlock": "10.9.0.0/16"})
    subnet, _ = aws.create("aws:ec2/subnet:Subnet", "s", {"vpcId": vpc["id"], "cidrBlock": "10.9.0.0/24"})
    with pytest.raises(EngineError, match=r"has no internet gateway"):
        aws.create("aws:lb/loadBalancer:LoadBalancer", "nlb", {"loadBalancerType": "network", "subnets": [subnet]})
    aws.create("aws:lb/loadBalancer:LoadBalancer", "inner", {"loadBalancerType": "network", "subnets": [subnet],
                                                             "internal": True})


def test_a_listener_cannot_forward_to_a_target_group_of_another_protocol(aws: AwsBackend, net: dict[str, Any]) -> None:
    lb, _ = aws.create("aws:lb/loadBalancer:LoadBalancer", "nlb", {"loadBalancerType": "network",
                                                                   "subnets": net["subnets"]})
    udp, _ = aws.create("aws:lb/targetGroup:TargetGroup", "udp", {"port": 53.0, "protocol": "UDP", "vpcId": net["vpc"]})
    with pytest.raises(EngineError, match=r"a TCP listener cannot forward to a UDP target group"):
        aws.create("aws:lb/listener:Listener", "l", {"loadBalancerArn": lb, "port": 53.0, "protocol": "TCP",
                                                     "defaultActions": [{"type": "forward", "targetGroupArn": udp}]})


def test_launch_templates_refuse_missing_references_and_bad_user_data(aws: AwsBackend, net: dict[str, Any]) -> None:
    with pytest.raises(EngineError, match=r"NoSuchEntity"):
        aws.create("aws:ec2/launchTemplate:LaunchTemplate", "a", {
            "imageId": net["image"], "iamInstanceProfile": {"arn": "arn:aws:iam::123456789012:instance-profile/none"}})
    with pytest.raises(EngineError, match=r"must be base64"):
        aws.create("aws:ec2/launchTemplate:LaunchTemplate", "b", {"imageId": net["image"], "userData": "#!/bin/sh"})
    with pytest.raises(EngineError, match=r"at most 16 KB"):
        aws.create("aws:ec2/launchTemplate:LaunchTemplate", "c", {
            "imageId": net["image"], "userData": base64.b64encode(b"x" * 20000).decode()})
    with pytest.raises(EngineError, match=r"InvalidKeyPair.NotFound"):
        aws.create("aws:ec2/launchTemplate:LaunchTemplate", "d", {"imageId": net["image"], "keyName": "nobody"})
    with pytest.raises(EngineError, match=r"InvalidGroup.NotFound"):
        aws.create("aws:ec2/launchTemplate:LaunchTemplate", "e", {
            "imageId": net["image"],
            "networkInterfaces": [{"deviceIndex": 0, "securityGroups": ["sg-0123456789abcdef0"]}]})
    with pytest.raises(EngineError, match=r"image ami-0123456789abcdef0 does not exist|InvalidAMIID"):
        aws.create("aws:ec2/launchTemplate:LaunchTemplate", "f", {"imageId": "ami-0123456789abcdef0"})


def test_a_secure_parameter_under_a_missing_key_is_refused(aws: AwsBackend) -> None:
    with pytest.raises(EngineError, match=r"NotFoundException"):
        aws.create("aws:ssm/parameter:Parameter", "p", {"name": "/swarmstack/x/tls/server-key", "type": "SecureString",
                                                        "value": "k", "keyId": "alias/nope"})


def test_a_key_policy_that_locks_the_account_out_is_refused(aws: AwsBackend) -> None:
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "logs.amazonaws.com"},
                                                      "Action": "kms:Decrypt", "Resource": "*"}]}
    with pytest.raises(EngineError, match=r"MalformedPolicyDocumentException"):
        aws.create("aws:kms/key:Key", "k", {"policy": json.dumps(policy)})


def test_only_aws_managed_policies_that_exist_attach(aws: AwsBackend, net: dict[str, Any]) -> None:
    aws.create("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "ok", {
        "role": "node", "policyArn": "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"})
    attached = aws.client("iam").list_attached_role_policies(RoleName="node")["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["AmazonSSMManagedInstanceCore"]
    with pytest.raises(EngineError, match=r"does not exist or is not attachable"):
        aws.create("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "bad", {
            "role": "node", "policyArn": "arn:aws:iam::aws:policy/NoSuchPolicy"})


def test_a_metric_filter_on_a_missing_log_group_is_refused(aws: AwsBackend) -> None:
    with pytest.raises(EngineError, match=r"log group /nope does not exist"):
        aws.create("aws:cloudwatch/logMetricFilter:LogMetricFilter", "f", {
            "logGroupName": "/nope", "pattern": "x",
            "metricTransformation": {"name": "m", "namespace": "n", "value": "1"}})


def test_an_alarm_sending_to_a_missing_topic_is_refused(aws: AwsBackend) -> None:
    with pytest.raises(EngineError, match=r"NotFound"):
        aws.create("aws:cloudwatch/metricAlarm:MetricAlarm", "a", {
            "comparisonOperator": "GreaterThanThreshold", "evaluationPeriods": 1.0, "metricName": "m",
            "namespace": "n", "period": 60.0, "statistic": "Sum", "threshold": 0.0,
            "alarmActions": [f"arn:aws:sns:{REGION}:123456789012:nope"]})


def test_what_the_backend_made_is_taken_as_existing_and_anything_else_is_asked_after(aws: AwsBackend) -> None:
    """`confirm` skips the existence call for a topic, bucket or published image this backend
    made (the engine deletes nothing it made), and makes it for anything else: a missing
    one is still refused, as the alarm, subscription and bucket-setting tests show."""
    _, topic = aws.create("aws:sns/topic:Topic", "made-here", {"name": "made-here"})
    bucket, _ = aws.create("aws:s3/bucket:Bucket", "made-here", {"bucket": "made-here-bucket"})
    asked: list[str] = []
    aws.confirm("topic", topic["arn"], lambda: asked.append(topic["arn"]))
    aws.confirm("bucket", bucket, lambda: asked.append(bucket))
    aws.confirm("topic", f"arn:aws:sns:{REGION}:123456789012:users-own", lambda: asked.append("users-own"))
    aws.confirm("bucket", topic["arn"], lambda: asked.append("a topic is no bucket"))
    assert asked == ["users-own", "a topic is no bucket"]
    with pytest.raises(EngineError, match=r"NoSuchBucket|Not Found|404"):
        aws.create("aws:s3/bucketVersioning:BucketVersioning", "v", {
            "bucket": "no-such-bucket-here", "versioningConfiguration": {"status": "Enabled"}})


def test_topic_subscriptions_subscribe_what_sns_takes(aws: AwsBackend) -> None:
    _, topic = aws.create("aws:sns/topic:Topic", "alarms", {"name": "alarms"})
    for protocol, endpoint in (("email", "ops@example.com"), ("https", "https://hooks.example.com/a")):
        _, out = aws.create("aws:sns/topicSubscription:TopicSubscription", f"s-{protocol}", {
            "topic": topic["arn"], "protocol": protocol, "endpoint": endpoint})
        assert out["arn"].startswith(topic["arn"] + ":")
    held = aws.client("sns").list_subscriptions_by_topic(TopicArn=topic["arn"])["Subscriptions"]
    assert sorted((s["Protocol"], s["Endpoint"]) for s in held) == [
        ("email", "ops@example.com"), ("https", "https://hooks.example.com/a")]


@pytest.mark.parametrize(("inputs", "message"), [
    ({"protocol": "email", "endpoint": "ops"}, r"InvalidParameter: Invalid parameter: Email address"),
    ({"protocol": "https", "endpoint": "http://hooks.example.com/a"},
     r"InvalidParameter: Invalid parameter: Endpoint must match the specified protocol"),
    ({"protocol": "carrier-pigeon", "endpoint": "x"}, r"InvalidParameter: Invalid parameter: Protocol"),
    ({"protocol": "email", "endpoint": "ops@example.com",
      "topic": f"arn:aws:sns:{REGION}:123456789012:nope"}, r"NotFound"),
])
def test_topic_subscriptions_sns_refuses(aws: AwsBackend, inputs: dict[str, Any], message: str) -> None:
    _, topic = aws.create("aws:sns/topic:Topic", "refusing", {"name": "refusing"})
    with pytest.raises(EngineError, match=message):
        aws.create("aws:sns/topicSubscription:TopicSubscription", "s", {"topic": topic["arn"], **inputs})


@pytest.mark.parametrize(("inputs", "message"), [
    ({"name": "No-Such-Document", "targets": [{"key": "tag:a", "values": ["b"]}]}, r"InvalidDocument"),
    ({"name": "AWS-RunShellScript", "parameters": {"commands": "true"}, "scheduleExpression": "cron(0 1 * * * *)",
      "targets": [{"key": "tag:a", "values": ["b"]}]}, r"exactly one of day-of-month and day-of-week must be \?"),
    ({"name": "AWS-RunShellScript", "parameters": {"commands": "true"}, "scheduleExpression": "cron(0 1 * * ? *)",
      "targets": [{"key": "swarmstack:cluster", "values": ["b"]}]}, r"target key 'swarmstack:cluster'"),
    ({"name": "AWS-RunShellScript", "parameters": {"command": "true"}, "targets": [{"key": "tag:a", "values": ["b"]}]},
     r"has no parameter\(s\) \['command'\]"),
    ({"name": "AWS-RunShellScript", "parameters": {"commands": "true"}, "targets": [{"key": "tag:a", "values": ["b"]}],
      "outputLocation": {"s3BucketName": "no-such-bucket"}}, r"AWS refuses it|NotFound|404"),
])
def test_associations_ssm_refuses(aws: AwsBackend, inputs: dict[str, Any], message: str) -> None:
    with pytest.raises(EngineError, match=message):
        aws.create("aws:ssm/association:Association", "prune", inputs)


def test_an_association_ssm_accepts_is_kept(aws: AwsBackend) -> None:
    rid, outputs = aws.create("aws:ssm/association:Association", "prune", {
        "name": "AWS-RunShellScript", "parameters": {"commands": "docker system prune -af"},
        "scheduleExpression": "cron(42 1 * * ? *)", "targets": [{"key": "tag:swarmstack:cluster", "values": ["prod"]}]})
    assert outputs["associationId"] == rid
    assert aws.state["associations"][rid]["scheduleExpression"] == "cron(42 1 * * ? *)"


def test_s3_bucket_policies_must_name_their_own_bucket(aws: AwsBackend) -> None:
    bucket, _ = aws.create("aws:s3/bucket:Bucket", "logs", {"bucket": "swarmstack-logs"})
    with pytest.raises(EngineError, match=r"invalid resource arn:aws:s3:::other"):
        aws.create("aws:s3/bucketPolicy:BucketPolicy", "p", {"bucket": bucket, "policy": json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                                    "Resource": "arn:aws:s3:::other/*"}]})})
    with pytest.raises(EngineError, match=r"InvalidBucketName"):
        aws.create("aws:s3/bucket:Bucket", "bad", {"bucket": "Not_A_Bucket"})


def test_s3_versioning_takes_only_the_statuses_s3_knows(aws: AwsBackend) -> None:
    bucket, _ = aws.create("aws:s3/bucket:Bucket", "versioned", {"bucket": "swarmstack-versioned"})
    with pytest.raises(EngineError, match=r"status must be Enabled, Suspended or Disabled, got On"):
        aws.create("aws:s3/bucketVersioning:BucketVersioning", "v", {
            "bucket": bucket, "versioningConfiguration": {"status": "On"}})
    with pytest.raises(EngineError, match=r"mfaDelete Enabled needs mfa"):
        aws.create("aws:s3/bucketVersioning:BucketVersioning", "v", {
            "bucket": bucket, "versioningConfiguration": {"status": "Enabled", "mfaDelete": "Enabled"}})
    with pytest.raises(EngineError, match=r"AWS refuses it"):
        aws.create("aws:s3/bucketVersioning:BucketVersioning", "v", {
            "bucket": "swarmstack-nobody-made-this", "versioningConfiguration": {"status": "Enabled"}})
    aws.create("aws:s3/bucketVersioning:BucketVersioning", "v", {
        "bucket": bucket, "versioningConfiguration": {"status": "Enabled"}})
    assert aws.client("s3").get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"


LIFECYCLE_REFUSED = [
    ({"id": "r", "status": "Enabled", "expiration": {"days": 0}}, "expiration days 0 must be a positive"),
    ({"id": "r", "status": "Enabled", "expiration": {"days": -3}}, "expiration days -3 must be a positive"),
    ({"id": "r", "status": "Enabled", "expiration": {"days": 3, "expiredObjectDeleteMarker": True}},
     "exactly one of days, date or expiredObjectDeleteMarker"),
    ({"id": "r", "status": "Enabled", "noncurrentVersionExpiration": {"noncurrentDays": 0}},
     "noncurrentDays must be a positive"),
    ({"id": "r", "status": "Enabled", "abortIncompleteMultipartUpload": {"daysAfterInitiation": 0}},
     "daysAfterInitiation must be a positive"),
    ({"id": "r", "status": "On", "expiration": {"days": 3}}, "status must be Enabled or Disabled"),
    ({"id": "r", "status": "Enabled", "filter": {"prefix": "x/"}}, "has no action"),
    ({"status": "Enabled", "expiration": {"days": 3}}, "id '' must be 1 to 255 characters"),
]


@pytest.mark.parametrize(("rule", "message"), LIFECYCLE_REFUSED, ids=[m for _, m in LIFECYCLE_REFUSED])
def test_s3_lifecycle_rules_s3_refuses_are_refused(aws: AwsBackend, rule: dict[str, Any], message: str) -> None:
    bucket, _ = aws.create("aws:s3/bucket:Bucket", "expiring", {"bucket": "swarmstack-expiring"}) \
        if not _bucket_exists(aws, "swarmstack-expiring") else ("swarmstack-expiring", {})
    with pytest.raises(EngineError, match=message):
        aws.create("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "lc",
                   {"bucket": bucket, "rules": [rule]})


def _bucket_exists(aws: AwsBackend, bucket: str) -> bool:
    return bucket in [b["Name"] for b in aws.client("s3").list_buckets()["Buckets"]]


def test_s3_lifecycle_keeps_versions_and_delete_markers_rules(aws: AwsBackend) -> None:
    bucket, _ = aws.create("aws:s3/bucket:Bucket", "lc-ok", {"bucket": "swarmstack-lc-ok"})
    rules = [{"id": "a", "status": "Enabled", "filter": {"prefix": "swarm/"}, "expiration": {"days": 14.0},
              "noncurrentVersionExpiration": {"noncurrentDays": 3.0},
              "abortIncompleteMultipartUpload": {"daysAfterInitiation": 1.0}},
             {"id": "b", "status": "Enabled", "filter": {"prefix": "swarm/"},
              "expiration": {"expiredObjectDeleteMarker": True}}]
    with pytest.raises(EngineError, match="rule ids must be unique"):
        aws.create("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "lc",
                   {"bucket": bucket, "rules": [rules[0], {**rules[1], "id": "a"}]})
    with pytest.raises(UnsupportedByEngine, match="transitions"):
        aws.create("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "lc", {
            "bucket": bucket, "rules": [{**rules[0], "transitions": [{"days": 30, "storageClass": "GLACIER"}]}]})
    aws.create("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "lc",
               {"bucket": bucket, "rules": rules})
    stored = aws.client("s3").get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert stored[0]["Expiration"] == {"Days": 14}
    assert stored[0]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 3
    assert stored[0]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert stored[1]["Expiration"] == {"ExpiredObjectDeleteMarker": True}


def test_s3_encryption_needs_a_key_that_exists_and_kms(aws: AwsBackend) -> None:
    bucket, _ = aws.create("aws:s3/bucket:Bucket", "sealed", {"bucket": "swarmstack-sealed"})
    missing = f"arn:aws:kms:{REGION}:{aws.account}:key/00000000-0000-0000-0000-000000000000"
    with pytest.raises(EngineError, match=r"AWS refuses it.*NotFound"):
        aws.create("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "e", {
            "bucket": bucket, "rules": [{"applyServerSideEncryptionByDefault": {
                "sseAlgorithm": "aws:kms", "kmsMasterKeyId": missing}, "bucketKeyEnabled": True}]})
    key = aws.client("kms").create_key()["KeyMetadata"]["Arn"]
    with pytest.raises(EngineError, match="only for aws:kms or aws:kms:dsse, not AES256"):
        aws.create("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "e", {
            "bucket": bucket, "rules": [{"applyServerSideEncryptionByDefault": {
                "sseAlgorithm": "AES256", "kmsMasterKeyId": key}}]})
    aws.create("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "e", {
        "bucket": bucket, "rules": [{"applyServerSideEncryptionByDefault": {
            "sseAlgorithm": "aws:kms", "kmsMasterKeyId": key}, "bucketKeyEnabled": True}]})
    rule = aws.client("s3").get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == key and rule["BucketKeyEnabled"]
