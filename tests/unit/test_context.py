"""`swarmstack context`: the outputs file checked with one-line errors, and the real docker
CLI creating and updating the context in a temporary DOCKER_CONFIG (the engine itself is
reached in tests/integration/test_context.py)."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from swarmstack.cli import EXIT_CONFIG, main
from swarmstack.context import ContextError, read_outputs

CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n"


def real_bundle() -> dict[str, str]:
    """A CA and an admin client pair the docker CLI accepts (it parses them)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("ca")).issuer_name(name("ca")).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True).sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(name("admin")).issuer_name(name("ca")).public_key(key.public_key())
            .serial_number(2).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return {"ca.pem": ca.public_bytes(pem).decode(), "cert.pem": cert.public_bytes(pem).decode(),
            "key.pem": key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()).decode()}


GOOD = {"dockerHost": "tcp://prod-lb-0123.elb.eu-west-1.amazonaws.com:2376",
        "clientTls": {"ca.pem": CERT, "cert.pem": CERT, "key.pem": KEY}, "vpcId": "vpc-1"}
DOCKER = shutil.which("docker")


def outputs(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "outputs.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


def with_(**changes: Any) -> dict[str, Any]:
    document = json.loads(json.dumps(GOOD))
    for key, value in changes.items():
        if key.startswith("tls_"):
            document["clientTls"][key[4:].replace("_", ".")] = value
        elif value is None:
            document.pop(key)
        else:
            document[key] = value
    return document


def test_a_good_outputs_file_gives_host_and_bundle(tmp_path: Path) -> None:
    host, bundle = read_outputs(outputs(tmp_path, GOOD))
    assert host == "tcp://prod-lb-0123.elb.eu-west-1.amazonaws.com:2376"
    assert bundle == {"ca.pem": CERT, "cert.pem": CERT, "key.pem": KEY}


@pytest.mark.parametrize(("document", "message"), [
    ("not json", "not valid JSON (Expecting value at line 1); write it with "
                 "`pulumi stack output --json --show-secrets > FILE`"),
    ([1, 2], "must be a JSON object of stack outputs, not list; write it with "
             "`pulumi stack output --json --show-secrets > FILE`"),
    (with_(dockerHost=None), "dockerHost = (missing): the stack exports no Docker API endpoint; it needs "
                             "dockerApi.enabled: true and a load balancer (loadBalancer.enabled: true)"),
    (with_(dockerHost="https://lb:2376"), "dockerHost = 'https://lb:2376': must be tcp://HOST:PORT, for example "
                                          "tcp://prod-lb-0123.elb.eu-west-1.amazonaws.com:2376"),
    (with_(dockerHost="tcp://lb"), "dockerHost = 'tcp://lb': must be tcp://HOST:PORT, for example "
                                   "tcp://prod-lb-0123.elb.eu-west-1.amazonaws.com:2376"),
    (with_(clientTls=None), "clientTls = (missing): the stack exports no admin TLS bundle; set dockerApi.enabled: "
                            "true, run pulumi up, then write the outputs again"),
    (with_(clientTls="[secret]"), 'clientTls = "[secret]": the bundle is a secret output; write the file with '
                                  "--show-secrets"),
    (with_(clientTls=["ca.pem"]), 'clientTls = ["ca.pem"]: must be an object with ca.pem, cert.pem, key.pem'),
    (with_(tls_key_pem=None), "clientTls.key.pem = (missing): must be a PEM private key"),
    (with_(tls_cert_pem=KEY), "clientTls.cert.pem = '-----BEGIN PRIVATE KEY-----\\nMIGH\\n-…: must be a PEM "
                              "certificate (the admin's)"),
])
def test_a_bad_outputs_file_is_one_line_naming_file_key_and_what_is_valid(tmp_path: Path, document: Any,
                                                                          message: str) -> None:
    path = outputs(tmp_path, document)
    with pytest.raises(ContextError) as err:
        read_outputs(path)
    assert str(err.value) == f"{path}: {message}"


def test_a_missing_outputs_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.json"
    assert main(["context", "prod-aws", "--outputs", str(missing)]) == EXIT_CONFIG
    assert capsys.readouterr().err.strip() == (
        f"{missing}: cannot read the outputs file (No such file or directory); "
        "write it with `pulumi stack output --json --show-secrets > FILE`")


@pytest.mark.skipif(DOCKER is None, reason="the docker CLI is not installed")
def test_the_real_docker_cli_creates_then_updates_the_context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert DOCKER is not None
    config = tmp_path / "docker-config"
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    bundle = real_bundle()
    path = outputs(tmp_path, {**GOOD, "clientTls": bundle})
    assert main(["context", "prod-aws", "--outputs", str(path)]) == 0
    folder = config / "swarmstack" / "prod-aws"
    assert capsys.readouterr().out.splitlines() == [
        f"docker context swarmstack-prod-aws created: tcp://prod-lb-0123.elb.eu-west-1.amazonaws.com:2376, "
        f"TLS bundle in {folder.resolve()} (files 0600)",
        "Use it:  docker --context swarmstack-prod-aws node ls",
        "or make it the default:  docker context use swarmstack-prod-aws",
    ]
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in ("ca.pem", "cert.pem", "key.pem"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    assert (folder / "key.pem").read_text() == bundle["key.pem"]

    def endpoint() -> dict[str, Any]:
        shown = subprocess.run([DOCKER, "context", "inspect", "swarmstack-prod-aws"], capture_output=True, text=True,
                               env={"DOCKER_CONFIG": str(config), "PATH": "/usr/bin:/bin"}, check=True)
        return dict(json.loads(shown.stdout)[0]["Endpoints"]["docker"])

    assert endpoint()["Host"] == "tcp://prod-lb-0123.elb.eu-west-1.amazonaws.com:2376"
    assert endpoint()["SkipTLSVerify"] is False
    # A re-deployed stack has a new endpoint: the same command updates the context in place.
    path.write_text(json.dumps({**GOOD, "clientTls": bundle, "dockerHost": "tcp://other-lb.example:2376"}))
    assert main(["context", "prod-aws", "--outputs", str(path)]) == 0
    assert capsys.readouterr().out.startswith("docker context swarmstack-prod-aws updated: tcp://other-lb.example:2376")
    assert endpoint()["Host"] == "tcp://other-lb.example:2376"
    listed = subprocess.run([DOCKER, "context", "ls", "--format", "{{.Name}}"], capture_output=True, text=True,
                            env={"DOCKER_CONFIG": str(config), "PATH": "/usr/bin:/bin"}, check=True)
    assert "swarmstack-prod-aws" in listed.stdout.split()
