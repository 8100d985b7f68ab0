"""The Docker API's certificates warn before they expire: a one-time EventBridge
Scheduler schedule publishes to the alarm topic 30 days before each certificate's end,
the same 30 days in which `pulumi up` re-issues the leaf certificates. Pure functions
first, then the engine's models, then prod-aws in moto."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from shipped import shipped_graph

from components.common.cert_expiry import RENEW_HOURS, WARN_DAYS, pem_expiry, warning_at
from swarmstack.config.load import read_stack_file
from swarmstack.engine.aws import AwsBackend
from swarmstack.engine.local import TlsBackend
from swarmstack.engine.mocks import EngineError
from swarmstack.engine.run import backends_for, run_stack

ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"


def test_the_warning_is_thirty_days_before_the_end_in_utc() -> None:
    assert WARN_DAYS == 30
    assert warning_at("2027-03-01T12:00:00Z") == "at(2027-01-30T12:00:00)"
    assert warning_at("2027-03-01T14:00:00+02:00") == "at(2027-01-30T12:00:00)"


def test_a_provided_ca_expires_when_its_pem_says() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ops CA")])
    end = datetime.datetime(2031, 5, 6, 7, 8, 9, tzinfo=datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(end - datetime.timedelta(days=900)).not_valid_after(end)
            .sign(key, hashes.SHA256()))
    assert pem_expiry(cert.public_bytes(serialization.Encoding.PEM).decode()) == "2031-05-06T07:08:09Z"


def test_the_tls_model_says_when_a_certificate_ends_as_the_provider_does() -> None:
    tls = TlsBackend()
    _, key = tls.create("tls:index/privateKey:PrivateKey", "k", {"algorithm": "ECDSA", "ecdsaCurve": "P256"})
    _, ca = tls.create("tls:index/selfSignedCert:SelfSignedCert", "ca", {
        "privateKeyPem": key["privateKeyPem"], "isCaCertificate": True, "validityPeriodHours": 48.0,
        "allowedUses": ["cert_signing"], "subject": {"commonName": "ca"}})
    cert = x509.load_pem_x509_certificate(ca["certPem"].encode())
    assert ca["validityEndTime"] == cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ca["validityStartTime"] == cert.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ca["readyForRenewal"] is False
    _, csr = tls.create("tls:index/certRequest:CertRequest", "csr", {
        "privateKeyPem": key["privateKeyPem"], "subject": {"commonName": "leaf"}})
    _, leaf = tls.create("tls:index/locallySignedCert:LocallySignedCert", "leaf", {
        "certRequestPem": csr["certRequestPem"], "caCertPem": ca["certPem"], "caPrivateKeyPem": key["privateKeyPem"],
        "validityPeriodHours": 24.0, "earlyRenewalHours": 48.0, "allowedUses": ["server_auth"]})
    assert leaf["validityEndTime"] == x509.load_pem_x509_certificate(
        leaf["certPem"].encode()).not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert leaf["readyForRenewal"] is True  # its early-renewal window covers its whole life


@pytest.fixture(scope="module")
def aws() -> Iterator[AwsBackend]:
    with AwsBackend(REGION) as backend:
        yield backend


@pytest.fixture(scope="module")
def target(aws: AwsBackend) -> dict[str, str]:
    _, topic = aws.create("aws:sns/topic:Topic", "alarms", {"name": "alarms"})
    _, role = aws.create("aws:iam/role:Role", "scheduler", {"name": "scheduler", "assumeRolePolicy": json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                 "Principal": {"Service": "scheduler.amazonaws.com"}}]})})
    return {"arn": topic["arn"], "roleArn": role["arn"], "input": "the certificate expires"}


def test_a_one_time_schedule_to_the_topic_is_held(aws: AwsBackend, target: dict[str, str]) -> None:
    _, out = aws.create("aws:scheduler/schedule:Schedule", "s", {
        "name": "cert-expiry", "scheduleExpression": "at(2027-01-30T12:00:00)",
        "flexibleTimeWindow": {"mode": "OFF"}, "target": target})
    held = aws.client("scheduler").get_schedule(Name="cert-expiry")
    assert out["arn"] == held["Arn"]
    assert held["ScheduleExpression"] == "at(2027-01-30T12:00:00)"
    assert held["Target"]["Arn"] == target["arn"] and held["Target"]["Input"] == target["input"]


@pytest.mark.parametrize(("change", "message"), [
    ({"scheduleExpression": "at(2027-01-30 12:00)"}, r"ValidationException: .*at\(yyyy-mm-ddThh:mm:ss\)"),
    ({"flexibleTimeWindow": {"mode": "SOMETIMES"}}, r"flexibleTimeWindow.mode must be OFF or FLEXIBLE"),
    ({"target": {"arn": f"arn:aws:sns:{REGION}:123456789012:nope", "roleArn": "r"}}, r"NotFound"),
    ({"name": "x" * 65}, r"name 'x+' is 65 characters; AWS takes at most 64"),
])
def test_schedules_scheduler_refuses(aws: AwsBackend, target: dict[str, str], change: dict[str, Any],
                                     message: str) -> None:
    inputs = {"name": "refused", "scheduleExpression": "at(2027-01-30T12:00:00)",
              "flexibleTimeWindow": {"mode": "OFF"}, "target": target, **change}
    with pytest.raises(EngineError, match=message):
        aws.create("aws:scheduler/schedule:Schedule", "refused", inputs)


def test_a_schedule_whose_role_does_not_exist_is_refused(aws: AwsBackend, target: dict[str, str]) -> None:
    with pytest.raises(EngineError, match=r"NoSuchEntity"):
        aws.create("aws:scheduler/schedule:Schedule", "norole", {
            "name": "norole", "scheduleExpression": "at(2027-01-30T12:00:00)", "flexibleTimeWindow": {"mode": "OFF"},
            "target": {**target, "roleArn": "arn:aws:iam::123456789012:role/nope"}})


@pytest.fixture(scope="module")
def deployed() -> Iterator[AwsBackend]:
    """prod-aws in moto: a generated CA and the TLS Docker API. (moto's state is shared
    with the `aws` fixture's, so the tests pick the stack's own topic and schedules.)"""
    config = read_stack_file("prod-aws", ROOT)[1]
    assert config["swarmstack:cluster"]["dockerApi"]["enabled"] is True
    with ExitStack() as exits:
        backends = backends_for(config, exits)
        backend = backends["aws"]
        assert isinstance(backend, AwsBackend)
        run_stack("prod-aws", config, ROOT, backends=backends)
        yield backend


def _end(pem: str) -> datetime.datetime:
    return x509.load_pem_x509_certificate(pem.encode()).not_valid_after_utc


def test_each_docker_api_certificate_warns_on_the_alarm_topic_thirty_days_before_its_end(
        deployed: AwsBackend) -> None:
    ssm, scheduler, sns = deployed.client("ssm"), deployed.client("scheduler"), deployed.client("sns")
    (topic,) = [t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(":swarmstack-prod-alarms")]
    pems = {leaf: ssm.get_parameter(Name=f"/swarmstack/prod/tls/{leaf}-cert")["Parameter"]["Value"]
            for leaf in ("server", "ca")}
    schedules = {s["Name"]: scheduler.get_schedule(Name=s["Name"]) for s in scheduler.list_schedules()["Schedules"]
                 if s["Name"].startswith("swarmstack-prod-")}
    assert set(schedules) == {"swarmstack-prod-server-cert-expiry", "swarmstack-prod-ca-cert-expiry"}
    for leaf, pem in pems.items():
        held = schedules[f"swarmstack-prod-{leaf}-cert-expiry"]
        warn = _end(pem) - datetime.timedelta(days=30)
        assert held["ScheduleExpression"] == f"at({warn.strftime('%Y-%m-%dT%H:%M:%S')})"
        assert held["ScheduleExpressionTimezone"] == "UTC"
        assert held["Target"]["Arn"] == topic
        assert _end(pem).strftime("%Y-%m-%dT%H:%M:%SZ") in held["Target"]["Input"]
        assert "pulumi up" in held["Target"]["Input"]


def test_the_scheduler_role_may_publish_to_the_encrypted_topic_and_nothing_else(deployed: AwsBackend) -> None:
    iam, scheduler, sns = deployed.client("iam"), deployed.client("scheduler"), deployed.client("sns")
    (topic,) = [t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(":swarmstack-prod-alarms")]
    key = sns.get_topic_attributes(TopicArn=topic)["Attributes"]["KmsMasterKeyId"]
    (name,) = {scheduler.get_schedule(Name=s["Name"])["Target"]["RoleArn"].rsplit("/", 1)[-1]
               for s in scheduler.list_schedules()["Schedules"] if s["Name"].startswith("swarmstack-prod-")}
    trust = iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    (statement,) = trust["Statement"]
    assert statement["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": deployed.account}}
    (policy,) = iam.list_role_policies(RoleName=name)["PolicyNames"]
    document = iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    assert [(s["Action"], s["Resource"]) for s in document["Statement"]] == [
        ("sns:Publish", topic), (["kms:GenerateDataKey", "kms:Decrypt"], key)]
    assert iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"] == []


def test_azure_leaf_certificates_are_re_issued_in_their_last_thirty_days() -> None:
    """The renewal window is the same as on AWS, so the `pulumi up` the near-expiry alert asks
    for renews the leaves (test_azure_stacks.py checks the alert itself)."""
    config = read_stack_file("prod-azure", ROOT)[1]
    assert config["swarmstack:cluster"]["dockerApi"]["enabled"] is True
    graph = shipped_graph("prod-azure")  # built once per test run (shipped.py)
    leaves = graph.of_type("tls:index/locallySignedCert:LocallySignedCert")
    assert {r.name.rsplit("-", 1)[-1] for r in leaves} == {"server", "client"}
    assert all(r.inputs["earlyRenewalHours"] == RENEW_HOURS for r in leaves)
