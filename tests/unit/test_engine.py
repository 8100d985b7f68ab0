"""The engine: it refuses what AWS refuses, and fails loudly on what it does not model."""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from swarmstack.engine.mocks import EngineError, UnsupportedByEngine
from swarmstack.engine.run import run_stack

CONFIG = {"aws:region": "eu-west-1"}


def run_program(tmp_path: Path, body: str, config: dict | None = None):  # type: ignore[no-untyped-def]
    (tmp_path / "__main__.py").write_text(textwrap.dedent(body))
    return run_stack("test", config or CONFIG, tmp_path)


def test_a_subnet_outside_its_vpc_is_refused_as_aws_would(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match=r"aws:ec2/subnet:Subnet 'outside': AWS refuses it: .*InvalidSubnet.Range"):
        run_program(tmp_path, """
            import pulumi_aws as aws
            vpc = aws.ec2.Vpc("vpc", cidr_block="10.0.0.0/16")
            aws.ec2.Subnet("outside", vpc_id=vpc.id, cidr_block="10.1.0.0/24")
        """)


def test_a_rule_on_a_missing_group_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match=r"SecurityGroupIngressRule 'orphan': AWS refuses it: .*InvalidGroup.NotFound"):
        run_program(tmp_path, """
            import pulumi_aws as aws
            aws.vpc.SecurityGroupIngressRule("orphan", security_group_id="sg-0123456789abcdef0",
                                             ip_protocol="tcp", from_port=80, to_port=80, cidr_ipv4="10.0.0.0/8")
        """)


def test_a_rule_with_no_source_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match=r"exactly one of cidrIpv4, cidrIpv6, referencedSecurityGroupId or "
                                          r"prefixListId is required, got none"):
        run_program(tmp_path, """
            import pulumi_aws as aws
            vpc = aws.ec2.Vpc("vpc", cidr_block="10.0.0.0/16")
            sg = aws.ec2.SecurityGroup("sg", vpc_id=vpc.id)
            aws.vpc.SecurityGroupIngressRule("nosource", security_group_id=sg.id, ip_protocol="tcp",
                                             from_port=80, to_port=80)
        """)


def test_an_unknown_resource_type_fails_loudly_with_its_name(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedByEngine, match=r"aws:sagemaker/domain:Domain 'd': the engine has no model"):
        run_program(tmp_path, """
            import pulumi_aws as aws
            aws.sagemaker.Domain("d", domain_name="d", auth_mode="IAM", vpc_id="vpc-1", subnet_ids=["subnet-1"],
                                 default_user_settings={"execution_role": "arn:aws:iam::123456789012:role/x"})
        """)


def test_an_unknown_invoke_fails_loudly(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedByEngine, match=r"aws:ec2/getVpcEndpoint:getVpcEndpoint: the engine has no model"):
        run_program(tmp_path, """
            import pulumi_aws as aws
            aws.ec2.get_vpc_endpoint(id="vpce-1")
        """)


def test_an_unknown_provider_package_fails_loudly(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedByEngine, match=r"the engine has no model of the 'gcp' provider"):
        run_program(tmp_path, """
            import pulumi
            class Thing(pulumi.CustomResource):
                def __init__(self, name):
                    super().__init__("gcp:compute/network:Network", name, {"name": name})
            Thing("n")
        """)


def test_explicit_providers_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedByEngine, match=r"components must not create providers"):
        run_program(tmp_path, """
            import pulumi_aws as aws
            aws.Provider("other", region="us-east-1")
        """)


def test_outputs_parents_and_real_ids_are_recorded(tmp_path: Path) -> None:
    graph = run_program(tmp_path, """
        import pulumi, pulumi_aws as aws
        class Box(pulumi.ComponentResource):
            def __init__(self, name):
                super().__init__("swarmstack:test:Box", name, None, None)
                self.vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block="10.0.0.0/16",
                                       opts=pulumi.ResourceOptions(parent=self))
                self.register_outputs({})
        box = Box("b")
        pulumi.export("vpc", box.vpc.id)
        pulumi.export("hidden", pulumi.Output.secret("s3cret"))
    """)
    vpc = graph.one("aws:ec2/vpc:Vpc", "b-vpc")
    box = graph.one("swarmstack:test:Box", "b")
    assert vpc.parent == box.urn and vpc.id.startswith("vpc-")
    assert graph.outputs["vpc"] == vpc.id
    assert graph.secret_outputs == {"hidden"}


def test_tls_certificates_are_really_signed_by_their_ca(tmp_path: Path) -> None:
    graph = run_program(tmp_path, """
        import pulumi, pulumi_tls as tls
        ca_key = tls.PrivateKey("ca", algorithm="ECDSA", ecdsa_curve="P256")
        ca = tls.SelfSignedCert("ca", private_key_pem=ca_key.private_key_pem, is_ca_certificate=True,
                                validity_period_hours=24, allowed_uses=["cert_signing"],
                                subject={"common_name": "ca"})
        key = tls.PrivateKey("server", algorithm="ECDSA", ecdsa_curve="P256")
        csr = tls.CertRequest("server", private_key_pem=key.private_key_pem, subject={"common_name": "server"},
                              dns_names=["localhost"])
        cert = tls.LocallySignedCert("server", cert_request_pem=csr.cert_request_pem,
                                     ca_private_key_pem=ca_key.private_key_pem, ca_cert_pem=ca.cert_pem,
                                     validity_period_hours=24, allowed_uses=["server_auth"])
        pulumi.export("ca", ca.cert_pem)
        pulumi.export("cert", cert.cert_pem)
    """, {})
    ca = x509.load_pem_x509_certificate(graph.outputs["ca"].encode())
    cert = x509.load_pem_x509_certificate(graph.outputs["cert"].encode())
    public = ca.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    cert.verify_directly_issued_by(ca)
    assert cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName) == ["localhost"]


def test_a_config_error_reaches_the_user_as_a_run_error(tmp_path: Path) -> None:
    import pulumi

    root = Path(__file__).resolve().parents[2]
    config = {"aws:region": "eu-west-1", "swarmstack:cluster": {"cloud": "aws", "name": "x",
                                                                 "managers": {"count": 2}}}
    with pytest.raises(pulumi.RunError, match=r"stacks/Pulumi.broken.yaml: swarmstack:cluster.managers.count = 2: "
                                              r"must be 1, 3, 5 or 7"):
        run_stack("broken", config, root)


def test_more_zones_than_the_region_has_is_a_config_line() -> None:
    import pulumi

    root = Path(__file__).resolve().parents[2]
    config = {"aws:region": "eu-west-1", "swarmstack:cluster": {
        "cloud": "aws", "name": "zz", "managers": {"count": 3},
        "network": {"new": {"cidr": "10.0.0.0/16", "zones": 4, "nat": "single"}},
        "loadBalancer": {"ports": [{"port": 80}]}}}
    with pytest.raises(pulumi.RunError) as caught:
        run_stack("zones", config, root)
    assert str(caught.value) == ("stacks/Pulumi.zones.yaml: swarmstack:cluster.network.new.zones = 4: eu-west-1 has 3 "
                                 "zones available (eu-west-1a, eu-west-1b, eu-west-1c); use at most 3")


def test_a_components_registered_outputs_are_its_outputs(tmp_path: Path) -> None:
    graph = run_program(tmp_path, """
        import pulumi
        class Box(pulumi.ComponentResource):
            def __init__(self, name):
                super().__init__("swarmstack:test:Box", name, {"given": 1}, None)
                self.register_outputs({"answer": 42, "hidden": pulumi.Output.secret("s")})
        Box("b")
    """)
    box = graph.one("swarmstack:test:Box", "b")
    assert box.inputs == {"given": 1}
    assert box.outputs == {"answer": 42, "hidden": "s"}


def test_the_dependency_graph_is_recorded_as_the_program_hands_it_to_the_engine(tmp_path: Path) -> None:
    graph = run_program(tmp_path, """
        import pulumi, pulumi_aws as aws
        class Box(pulumi.ComponentResource):
            def __init__(self, name):
                super().__init__("swarmstack:test:Box", name, None, None)
                self.a = aws.ec2.Vpc(f"{name}-a", cidr_block="10.1.0.0/16", opts=pulumi.ResourceOptions(parent=self))
                self.b = aws.ec2.Vpc(f"{name}-b", cidr_block="10.2.0.0/16", opts=pulumi.ResourceOptions(parent=self))
                self.register_outputs({})
        box = Box("box")
        vpc = aws.ec2.Vpc("vpc", cidr_block="10.0.0.0/16")
        aws.ec2.Subnet("subnet", vpc_id=vpc.id, cidr_block="10.0.1.0/24",
                       opts=pulumi.ResourceOptions(depends_on=[box],
                                                   custom_timeouts=pulumi.CustomTimeouts(delete="25m")))
    """)
    subnet = graph.one("aws:ec2/subnet:Subnet", "subnet")
    vpc, a, b = (graph.one("aws:ec2/vpc:Vpc", n) for n in ("vpc", "box-a", "box-b"))
    # a depends_on on a component reaches the engine as its children (the SDK expands it)
    assert set(subnet.dependencies) == {vpc.urn, a.urn, b.urn}
    assert subnet.property_dependencies == {"vpcId": [vpc.urn], "cidrBlock": []}
    assert subnet.custom_timeouts == {"delete": "25m"}
    assert vpc.dependencies == [] and vpc.property_dependencies == {"cidrBlock": []}
    assert graph.dependencies_of(subnet.urn) == {vpc.urn, a.urn, b.urn}
    assert graph.depends_on(subnet.urn, a.urn) and not graph.depends_on(a.urn, subnet.urn)


def test_an_auto_name_past_the_providers_limit_fails_as_the_provider_does(tmp_path: Path) -> None:
    with pytest.raises(EngineError) as caught:
        run_program(tmp_path, """
            import pulumi_aws as aws
            vpc = aws.ec2.Vpc("vpc", cidr_block="10.0.0.0/16")
            aws.lb.TargetGroup("a-cluster-name-of-28-chars-x-lb-tcp-443", port=443, protocol="TCP", vpc_id=vpc.id)
        """)
    assert str(caught.value) == (
        "aws:lb/targetGroup:TargetGroup 'a-cluster-name-of-28-chars-x-lb-tcp-443': name "
        "'a-cluster-name-of-28-chars-x-lb-tcp-443-' plus 7 random chars is longer than maximum length 32 (47): "
        "Pulumi does not shorten auto-names; give it an explicit name")


def test_an_explicit_name_past_the_limit_is_refused_and_one_within_is_kept(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match=r"name 'x{65}' is 65 characters; AWS takes at most 64"):
        run_program(tmp_path, """
            import json, pulumi_aws as aws
            aws.iam.Role("r", name="x" * 65, assume_role_policy=json.dumps({"Version": "2012-10-17", "Statement": []}))
        """)
    graph = run_program(tmp_path, """
        import pulumi_aws as aws
        vpc = aws.ec2.Vpc("vpc", cidr_block="10.0.0.0/16")
        aws.lb.TargetGroup("a-cluster-name-of-28-chars-x-lb-tcp-443", name="short-tg", port=443, protocol="TCP",
                           vpc_id=vpc.id)
    """)
    assert graph.of_type("aws:lb/targetGroup:TargetGroup")[0].outputs["name"] == "short-tg"


def test_a_security_group_named_like_an_id_is_refused_and_a_cluster_named_sg_builds(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match=r"group names may not start with sg- \(sg-managers\)"):
        run_program(tmp_path, """
            import pulumi_aws as aws
            vpc = aws.ec2.Vpc("vpc", cidr_block="10.0.0.0/16")
            aws.ec2.SecurityGroup("g", name="sg-managers", vpc_id=vpc.id)
        """)
    root = Path(__file__).resolve().parents[2]
    config = {"aws:region": "eu-west-1", "swarmstack:cluster": {
        "cloud": "aws", "name": "sg", "managers": {"count": 1},
        "network": {"new": {"cidr": "10.0.0.0/16", "zones": 1, "nat": "none"}},
        "loadBalancer": {"ports": [{"port": 80}]}}}
    graph = run_stack("sg", config, root)
    assert all(not g.inputs["name"].startswith("sg-") for g in graph.of_type("aws:ec2/securityGroup:SecurityGroup"))


@contextmanager
def asyncio_log() -> Iterator[list[logging.LogRecord]]:
    """What asyncio logs while the block runs."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    logging.getLogger("asyncio").addHandler(handler)
    try:
        yield records
    finally:
        logging.getLogger("asyncio").removeHandler(handler)


def test_a_refused_run_leaves_no_unretrieved_error_behind_for_a_later_command(tmp_path: Path) -> None:
    """The SDK's futures that carried the refusal are collected later, maybe while another
    command's output is being read (a unit run saw asyncio's "Future exception was never
    retrieved" inside the `swarmstack cost` text of the next test). The engine already
    reported the error: collecting those futures must log nothing."""
    import asyncio
    import gc

    with pytest.raises(EngineError, match=r"InvalidSubnet\.Range"):
        run_program(tmp_path, """
            import pulumi_aws as aws
            vpc = aws.ec2.Vpc("vpc", cidr_block="10.0.0.0/16")
            aws.ec2.Subnet("outside", vpc_id=vpc.id, cidr_block="10.1.0.0/24")
        """)
    left = [o for o in gc.get_objects() if isinstance(o, asyncio.Future) and getattr(o, "_log_traceback", False)
            and "InvalidSubnet.Range" in str(getattr(o, "_exception", ""))]  # this run's, not another test's
    assert left, "the run left no future carrying its error: this test no longer shows anything"
    with asyncio_log() as records:
        for future in left:
            future.__del__()  # what the collector does with it, whenever that is
    assert [r.getMessage() for r in records] == []


def test_the_programs_own_refusal_leaves_no_unretrieved_error_behind_either(tmp_path: Path) -> None:
    """A config problem the program finds while it runs (a `pulumi.RunError` in an apply: the
    labels past EC2's user data limit) is the run's error, which the command prints; the
    SDK's futures that carried it logged asyncio's "Future exception was never retrieved",
    with its traceback, once collected (a unit run printed it a dozen times)."""
    import asyncio
    import gc

    with pytest.raises(Exception, match=r"stacks/Pulumi.test.yaml: swarmstack:cluster.x = 1: refused"):
        run_program(tmp_path, """
            import pulumi, pulumi_aws as aws
            vpc = aws.ec2.Vpc("vpc", cidr_block="10.0.0.0/16")
            def refuse(_):
                raise pulumi.RunError("stacks/Pulumi.test.yaml: swarmstack:cluster.x = 1: refused")
            aws.ec2.Subnet("subnet", vpc_id=vpc.id, cidr_block=vpc.cidr_block.apply(refuse))
        """)
    left = [o for o in gc.get_objects() if isinstance(o, asyncio.Future) and getattr(o, "_log_traceback", False)
            and "swarmstack:cluster.x = 1: refused" in str(getattr(o, "_exception", ""))]
    assert left, "the run left no future carrying its error: this test no longer shows anything"
    with asyncio_log() as records:
        for future in left:
            future.__del__()  # what the collector does with it, whenever that is
    assert [r.getMessage() for r in records] == []


def test_an_error_that_is_no_refusal_still_reaches_the_log_when_its_future_is_collected() -> None:
    """The handler above drops only the model's refusals the run recorded and the error the
    run raised: a bug beside a refusal (a KeyError in a backend), or a program's refusal the
    run did not raise, keeps asyncio's "never retrieved" log, its last trace."""
    import asyncio

    from pulumi import RunError

    from swarmstack.engine.mocks import EngineMocks, RecordingMonitor
    from swarmstack.engine.run import _unreported_only

    monitor = RecordingMonitor(EngineMocks({}))
    refusal, bug = EngineError("refused"), KeyError("a bug")
    monitor.errors += [refusal, bug]
    monitor.raised = RunError("the program's refusal, which the run raised")
    loop = asyncio.new_event_loop()
    try:
        with asyncio_log() as records:
            for error in (refusal, bug, EngineError("another run's"), monitor.raised, RunError("not raised")):
                _unreported_only(monitor, loop, {"message": "Future exception was never retrieved", "exception": error})
    finally:
        loop.close()
    logged = [r.exc_info[1] if r.exc_info else None for r in records]
    assert len(logged) == 3 and logged[0] is bug, logged
    assert "another run's" in str(logged[1]) and "not raised" in str(logged[2]), logged


def test_secret_inputs_are_recorded_unwrapped_and_named_as_secret(tmp_path: Path) -> None:
    """The monitor records what the SDK's own mock monitor deserialized of each request
    (one deserialization a resource, not two): the values unwrapped, the secret keys named."""
    graph = run_program(tmp_path, """
        import pulumi, pulumi_aws as aws
        aws.ssm.Parameter("p", name="/x/token", type="SecureString", value=pulumi.Output.secret("s3cret"),
                          description="plain")
    """)
    (parameter,) = [r for r in graph.resources if r.name == "p"]
    assert parameter.inputs["value"] == "s3cret" and parameter.inputs["description"] == "plain"
    assert parameter.secret_inputs == {"value"}


def test_the_engine_spares_the_sdk_what_nothing_reads_and_gives_it_back_even_after_a_refusal(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No stack traces, no alias URNs (`Resource._aliases`) while the engine runs a program;
    the alias specs still reach the monitor; the SDK has its own functions back after a
    run and after a refused one; and without the cut the SDK does do that work."""
    import contextlib

    import pulumi.resource as sdk_resources
    import pulumi.runtime.resource as sdk_resource

    from swarmstack.engine import run as engine_run

    seen: list[tuple[int, list[str]]] = []

    class Recording(engine_run.RecordingMonitor):  # type: ignore[misc, name-defined]
        def RegisterResource(self, request):  # type: ignore[no-untyped-def]
            if request.type != "pulumi:pulumi:Stack":
                seen.append((len(request.stackTrace.frames), [a.spec.name for a in request.aliases]))
            return super().RegisterResource(request)

    monkeypatch.setattr(engine_run, "RecordingMonitor", Recording)
    program = """
        import pulumi, pulumi_aws as aws
        vpc = aws.ec2.Vpc("vpc", cidr_block="10.0.0.0/16", opts=pulumi.ResourceOptions(aliases=[pulumi.Alias(name="old")]))
        pulumi.export("collapsed", [type(a).__name__ for a in vpc._aliases])
    """
    originals = sdk_resource._get_stack_trace, sdk_resources.collapse_alias_to_urn
    graph = run_program(tmp_path, program)
    assert seen == [(0, ["old"])]  # no frames; the alias spec as the program gave it
    assert graph.outputs["collapsed"] == ["_Uncollapsed"]
    assert (sdk_resource._get_stack_trace, sdk_resources.collapse_alias_to_urn) == originals
    with pytest.raises(EngineError):
        run_program(tmp_path, """
            import pulumi_aws as aws
            vpc = aws.ec2.Vpc("vpc", cidr_block="10.0.0.0/16")
            aws.ec2.Subnet("outside", vpc_id=vpc.id, cidr_block="10.1.0.0/24")
        """)
    assert (sdk_resource._get_stack_trace, sdk_resources.collapse_alias_to_urn) == originals
    seen.clear()
    monkeypatch.setattr(engine_run, "_without_unread_sdk_work", contextlib.nullcontext)
    graph = run_program(tmp_path, program)
    assert seen[0][0] > 0 and seen[0][1] == ["old"]  # the SDK's own work: what the engine spares
    assert graph.outputs["collapsed"] == ["Output"]


@pytest.mark.parametrize("alias", ["pulumi.Alias(type_=None)", "pulumi.Alias(name=None)"])
def test_an_alias_the_sdk_would_refuse_still_fails_the_run(tmp_path: Path, alias: str) -> None:
    """The engine leaves aliases uncollapsed, but keeps the SDK's checks: an alias that leaves
    no name or type fails the run with the SDK's own message, as `pulumi up` would."""
    with pytest.raises(Exception, match=r"No valid '(name|type_)' passed in for alias"):
        run_program(tmp_path, f"""
            import pulumi, pulumi_random as random
            random.RandomId("t", byte_length=4, opts=pulumi.ResourceOptions(aliases=[{alias}]))
        """)
