"""Checks that span several keys or depend on the cloud. Pure: config in, problems out."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from typing import Any

from swarmstack.config.architecture import architecture
from swarmstack.config.cron import parse_cron, ssm_association_problem
from swarmstack.config.model import MANAGER_POOL, MAX_WORKERS, ClusterConfig
from swarmstack.config.patterns import LABEL_KEY, LABEL_VALUE, RESERVED_LABEL_PREFIX
from swarmstack.config.problems import Problem
from swarmstack.config.tags import RESERVED_TAG_KEYS

# Ports the swarm and the Docker engine own; a published port may not take one.
RESERVED_PORTS = {
    2375: "the plaintext Docker API",
    2376: "the TLS Docker API",
    2377: "swarm cluster management",
    7946: "swarm node gossip",
    4789: "the swarm overlay (VXLAN)",
}

AWS_LOG_RETENTION = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
                     1096, 1827, 2192, 2557, 2922, 3288, 3653)
AZURE_LOG_RETENTION = (30, 730)  # Log Analytics workspace, PerGB2018: 30 to 730 days

AWS_INSTANCE_TYPE = re.compile(
    r"^[a-z][a-z0-9-]*[0-9][a-z0-9-]*\.(nano|micro|small|medium|large|metal|[0-9]*xlarge|metal-[0-9]+xl)$"
)
AZURE_VM_SIZE = re.compile(r"^Standard_[A-Z][A-Za-z0-9_-]*$")
AWS_VPC_ID = re.compile(r"^vpc-[0-9a-f]{8}([0-9a-f]{9})?$")
AWS_SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8}([0-9a-f]{9})?$")
AWS_AMI_ID = re.compile(r"^ami-[0-9a-f]{8}([0-9a-f]{9})?$")
AZURE_VNET_ID = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Network/virtualNetworks/[^/]+$",
    re.IGNORECASE,
)
AZURE_SUBNET_ID = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Network/virtualNetworks/[^/]+/subnets/[^/]+$",
    re.IGNORECASE,
)
REPOSITORY_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")
"""A repository name as ECR takes it (and Docker's reference grammar, which ACR follows):
components of lowercase letters and digits joined by one `.`, `_` or `-`, separated by `/`."""
ECR_NAME_LIMIT = 256
REPOSITORY_LIMIT = 200
SSH_PUBLIC_KEY = re.compile(r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/=]+( .*)?$")

SECRET_PATTERNS = (
    (re.compile(r"SWMTKN-1-"), "a swarm join token"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"), "an AWS access key id"),
)


def check(cfg: ClusterConfig, raw: dict[str, Any]) -> list[Problem]:
    """Every cross-key problem of a parsed config; `raw` is the mapping as written."""
    return [
        *_secrets(raw),
        *_network(cfg),
        *_managers(cfg),
        *_workers(cfg),
        *_instance_types(cfg),
        *_architectures(cfg),
        *_access(cfg),
        *_docker_api(cfg),
        *_load_balancer(cfg),
        *_logging(cfg),
        *_alarms(cfg),
        *_image(cfg),
        *_registry(cfg),
        *_prune(cfg),
        *_metrics(cfg),
        *_tags(cfg),
        *_shared_volumes(cfg),
    ]


def _metrics(cfg: ClusterConfig) -> Iterator[Problem]:
    if cfg.metrics.enabled and cfg.cloud == "azure" and not cfg.logging.enabled:
        yield Problem("metrics.enabled", True, "on Azure the metrics go to the Log Analytics workspace of "
                      "`logging`: set logging.enabled to true, or metrics.enabled to false")


def _shared_volumes(cfg: ClusterConfig) -> Iterator[Problem]:
    """Each cloud's own knob: EFS has no size to provision, an Azure share no throughput mode."""
    shared = cfg.shared_volumes
    if cfg.cloud == "aws" and shared.quota_gib is not None:
        yield Problem("sharedVolumes.quotaGiB", shared.quota_gib,
                      "is for Azure; EFS grows with what is stored: remove it (or set throughputMode)")
    if cfg.cloud == "azure" and shared.throughput_mode is not None:
        yield Problem("sharedVolumes.throughputMode", shared.throughput_mode,
                      "is for AWS; an Azure premium share's throughput follows quotaGiB: remove it (or set quotaGiB)")


def _prune(cfg: ClusterConfig) -> Iterator[Problem]:
    """AWS prunes through a State Manager association, which runs on a few schedules only;
    Azure's systemd timer takes any cron."""
    if cfg.cloud != "aws" or not cfg.prune.enabled:
        return
    problem = ssm_association_problem(parse_cron(cfg.prune.schedule))
    if problem:
        yield Problem("prune.schedule", cfg.prune.schedule, f"on AWS {problem}")


def _secrets(raw: object, path: str = "") -> Iterator[Problem]:
    if isinstance(raw, dict):
        for key, value in raw.items():
            yield from _secrets(value, f"{path}.{key}" if path else str(key))
    elif isinstance(raw, list):
        for index, value in enumerate(raw):
            yield from _secrets(value, f"{path}[{index}]")
    elif isinstance(raw, str):
        for pattern, what in SECRET_PATTERNS:
            if pattern.search(raw):
                shown = raw[:12] + "…" if len(raw) > 12 else raw
                yield Problem(path, shown, f"looks like {what}; plain config is not for secrets: "
                              "use `pulumi config set --secret` or the cloud's secret store")
                break


def _network(cfg: ClusterConfig) -> Iterator[Problem]:
    net = cfg.network
    if (net.new is None) == (net.existing is None):
        yield Problem("network", {"new": net.new is not None, "existing": net.existing is not None},
                      "set exactly one of `new` (a network swarmstack creates) or "
                      "`existing` (network id and subnet ids)")
        return
    if net.new is not None:
        try:
            cidr = ipaddress.IPv4Network(net.new.cidr, strict=False)
        except ValueError:
            yield Problem("network.new.cidr", net.new.cidr,
                          "not an IPv4 CIDR; write it as a.b.c.d/n, for example 10.20.0.0/16")
            return
        if str(cidr) != net.new.cidr.strip():
            yield Problem("network.new.cidr", net.new.cidr,
                          f"host bits are set; the network is {cidr}")
        elif not 16 <= cidr.prefixlen <= 24:
            yield Problem("network.new.cidr", net.new.cidr,
                          "the prefix must be from /16 to /24")
        elif not cidr.is_private:
            yield Problem("network.new.cidr", net.new.cidr,
                          "must be a private range (10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16)")
        if cfg.cloud == "azure" and net.new.zones > 3:
            yield Problem("network.new.zones", net.new.zones, "Azure regions have zones 1, 2 and 3: use 1 to 3")
        if cfg.cloud == "azure" and net.new.nat == "perZone":
            yield Problem("network.new.nat", "perZone", "an Azure subnet takes one NAT gateway, and subnets span "
                          "every zone: use single (or none)")
        return
    existing = net.existing
    assert existing is not None
    if cfg.cloud == "aws":
        if not AWS_VPC_ID.match(existing.network_id):
            yield Problem("network.existing.networkId", existing.network_id,
                          "must be a VPC id such as vpc-0123456789abcdef0")
        subnet_re, example = AWS_SUBNET_ID, "subnet-0123456789abcdef0"
    else:
        if not AZURE_VNET_ID.match(existing.network_id):
            yield Problem("network.existing.networkId", existing.network_id,
                          "must be a VNet resource id /subscriptions/…/resourceGroups/…/providers/"
                          "Microsoft.Network/virtualNetworks/NAME")
        subnet_re, example = AZURE_SUBNET_ID, "/subscriptions/…/virtualNetworks/NAME/subnets/NAME"
    for key in ("private_subnet_ids", "public_subnet_ids"):
        ids = getattr(existing, key)
        alias = "privateSubnetIds" if key.startswith("private") else "publicSubnetIds"
        for index, subnet in enumerate(ids):
            if not subnet_re.match(subnet):
                yield Problem(f"network.existing.{alias}[{index}]", subnet, f"must be a subnet id such as {example}")
        if len(set(ids)) != len(ids):
            yield Problem(f"network.existing.{alias}", ids, "lists a subnet twice")
    if cfg.cloud == "azure" and existing.public_subnet_ids:
        yield Problem("network.existing.publicSubnetIds", existing.public_subnet_ids,
                      "is for AWS; an Azure load balancer needs no subnet of its own: remove it")
    if cfg.cloud == "aws" and existing.zones is not None:
        yield Problem("network.existing.zones", existing.zones,
                      "is for Azure; on AWS the zones are those of privateSubnetIds: remove it")
    lb = cfg.load_balancer
    if cfg.cloud == "aws" and lb.enabled and lb.public and not existing.public_subnet_ids:
        yield Problem("network.existing.publicSubnetIds", [],
                      "a public load balancer needs public subnets; list them or set loadBalancer.public: false")


def _managers(cfg: ClusterConfig) -> Iterator[Problem]:
    count = cfg.managers.count
    if count < 3 or (cfg.network.new is None) == (cfg.network.existing is None):
        return
    if cfg.network.new is not None and cfg.network.new.zones < 3:
        yield Problem("network.new.zones", cfg.network.new.zones,
                      f"{count} managers need at least 3 zones, so that losing one zone keeps a raft "
                      "quorum: set zones to 3 or more (or managers.count to 1)")
    elif cfg.cloud == "azure" and cfg.network.existing is not None and cfg.zone_count < 3:
        yield Problem("network.existing.zones", cfg.zone_count,
                      f"{count} managers need at least 3 zones, so that losing one zone keeps a raft "
                      "quorum: set zones to 3 (or managers.count to 1)")
    elif cfg.cloud == "aws" and cfg.network.existing is not None and len(cfg.network.existing.private_subnet_ids) < 3:
        yield Problem("network.existing.privateSubnetIds", cfg.network.existing.private_subnet_ids,
                      f"{count} managers need subnets in at least 3 zones, so that losing one zone keeps "
                      "a raft quorum: list one subnet per zone, 3 or more")


def _workers(cfg: ClusterConfig) -> Iterator[Problem]:
    total = sum(pool.count for pool in cfg.workers)
    if total > MAX_WORKERS:
        yield Problem("workers", f"{total} workers in all",
                      f"all pools together may have at most {MAX_WORKERS} workers")
    seen: set[str] = set()
    for index, pool in enumerate(cfg.workers):
        if pool.name in seen:
            yield Problem(f"workers[{index}].name", pool.name, "another pool has this name; names must be unique")
        seen.add(pool.name)
        if pool.name == MANAGER_POOL:
            yield Problem(f"workers[{index}].name", pool.name,
                          f"{MANAGER_POOL!r} is the managers' pool; give the workers' pool another name")
        if len(pool.instance_type) > 1 and not pool.spot:
            yield Problem(f"workers[{index}].instanceType", pool.instance_type,
                          "several instance types are only used by spot pools; give one or set spot: true")
        if len(set(pool.instance_type)) != len(pool.instance_type):
            yield Problem(f"workers[{index}].instanceType", pool.instance_type, "lists a type twice")
        for key in pool.labels:
            if not re.fullmatch(LABEL_KEY, key):
                yield Problem(f"workers[{index}].labels.{key}", pool.labels[key],
                              "label names are letters, digits, '.', '_' and '-', at most 63 characters")
            elif key.startswith(RESERVED_LABEL_PREFIX):
                yield Problem(f"workers[{index}].labels.{key}", pool.labels[key],
                              f"labels starting with {RESERVED_LABEL_PREFIX} are swarmstack's own; choose another name")
            if not re.fullmatch(LABEL_VALUE, pool.labels[key]):
                yield Problem(f"workers[{index}].labels.{key}", pool.labels[key],
                              "label values are letters, digits, '.', '_', ':', '/', '@', '+' and '-', "
                              "at most 128 characters")


def _instance_types(cfg: ClusterConfig) -> Iterator[Problem]:
    pattern = AWS_INSTANCE_TYPE if cfg.cloud == "aws" else AZURE_VM_SIZE
    example = "an EC2 instance type such as t3.medium or m6i.large" if cfg.cloud == "aws" \
        else "an Azure VM size such as Standard_D2s_v5"
    if not pattern.match(cfg.managers.instance_type):
        yield Problem("managers.instanceType", cfg.managers.instance_type, f"must be {example}")
    for index, pool in enumerate(cfg.workers):
        for position, value in enumerate(pool.instance_type):
            if not pattern.match(value):
                yield Problem(f"workers[{index}].instanceType[{position}]", value, f"must be {example}")


def _architectures(cfg: ClusterConfig) -> Iterator[Problem]:
    """One image per launch template: a pool's types share one CPU architecture, and a
    pinned AMI (one image for every group) needs one architecture across the cluster."""
    if cfg.cloud != "aws":
        return
    valid = [t for t in [cfg.managers.instance_type, *(t for p in cfg.workers for t in p.instance_type)]
             if AWS_INSTANCE_TYPE.match(t)]
    for index, pool in enumerate(cfg.workers):
        archs = {architecture(t) for t in pool.instance_type if AWS_INSTANCE_TYPE.match(t)}
        if len(archs) > 1:
            yield Problem(f"workers[{index}].instanceType", pool.instance_type,
                          "mixes x86_64 and arm64 (Graviton) types; one image cannot boot both: "
                          "keep one architecture per pool")
    if cfg.image.id is not None and len({architecture(t) for t in valid}) > 1:
        yield Problem("image.id", cfg.image.id, "one pinned AMI serves every group, but the instance types mix "
                      "x86_64 and arm64 (Graviton): use one architecture, or leave image.id unset")


def _access(cfg: ClusterConfig) -> Iterator[Problem]:
    access = cfg.access
    ssh_on = access.ssh_key_name is not None or access.ssh_public_key is not None
    open_to = "the TLS Docker API" if cfg.docker_api.enabled else "SSH"
    for index, text in enumerate(access.admin_cidrs):
        try:
            net = ipaddress.ip_network(text, strict=True)
        except ValueError as err:
            yield Problem(f"access.adminCidrs[{index}]", text,
                          f"not a CIDR with host bits clear ({err}); for example 203.0.113.0/24")
            continue
        if net.prefixlen == 0 and (cfg.docker_api.enabled or ssh_on):
            yield Problem(f"access.adminCidrs[{index}]", text,
                          f"opens {open_to} to the whole internet; list your admins' own ranges")
    if (cfg.docker_api.enabled or ssh_on) and not access.admin_cidrs:
        yield Problem("access.adminCidrs", [], f"{open_to} is on but nobody may reach it; "
                      "list the admins' address ranges")
    if cfg.cloud == "aws" and access.ssh_public_key is not None:
        yield Problem("access.sshPublicKey", access.ssh_public_key[:20] + "…",
                      "is for Azure; on AWS name an EC2 key pair in sshKeyName")
    if cfg.cloud == "azure" and access.ssh_key_name is not None:
        yield Problem("access.sshKeyName", access.ssh_key_name,
                      "is for AWS; on Azure give the public key itself in sshPublicKey")
    if access.ssh_public_key is not None and not SSH_PUBLIC_KEY.match(access.ssh_public_key):
        yield Problem("access.sshPublicKey", access.ssh_public_key[:20] + "…",
                      "must be an OpenSSH public key line (ssh-ed25519 AAAA… or ssh-rsa AAAA…)")


def _docker_api(cfg: ClusterConfig) -> Iterator[Problem]:
    api = cfg.docker_api
    if api.ca == "provided" and not api.ca_cert_pem:
        yield Problem("dockerApi.caCertPem", None, "ca: provided needs the CA certificate here "
                      "(and its key in the secret key swarmstack:dockerApiCaKey)")
    if api.ca_cert_pem and "-----BEGIN CERTIFICATE-----" not in api.ca_cert_pem:
        yield Problem("dockerApi.caCertPem", api.ca_cert_pem[:20] + "…", "must be a PEM certificate")
    if api.ca == "generated" and api.ca_cert_pem:
        yield Problem("dockerApi.caCertPem", api.ca_cert_pem[:20] + "…",
                      "is only read with ca: provided; remove it or set ca: provided")


def _load_balancer(cfg: ClusterConfig) -> Iterator[Problem]:
    lb = cfg.load_balancer
    seen: set[tuple[int, str]] = set()
    for index, item in enumerate(lb.ports):
        if item.port in RESERVED_PORTS:
            yield Problem(f"loadBalancer.ports[{index}].port", item.port,
                          f"is {RESERVED_PORTS[item.port]}; publish services on another port")
        elif item.port == 22:
            yield Problem(f"loadBalancer.ports[{index}].port", item.port,
                          "is SSH on the nodes; publish services on another port")
        if (item.port, item.protocol) in seen:
            yield Problem(f"loadBalancer.ports[{index}]", f"{item.port}/{item.protocol}",
                          "is published twice; list each port and protocol once")
        seen.add((item.port, item.protocol))
    if lb.enabled and not lb.ports and not cfg.docker_api.enabled:
        yield Problem("loadBalancer.ports", [], "the load balancer has nothing to forward: "
                      "list published ports or set loadBalancer.enabled: false")


def _logging(cfg: ClusterConfig) -> Iterator[Problem]:
    days = cfg.logging.retention_days
    if cfg.cloud == "aws" and days not in AWS_LOG_RETENTION:
        yield Problem("logging.retentionDays", days, "CloudWatch Logs keeps logs for one of "
                      + ", ".join(map(str, AWS_LOG_RETENTION)) + " days")
    if cfg.cloud == "azure" and not AZURE_LOG_RETENTION[0] <= days <= AZURE_LOG_RETENTION[1]:
        yield Problem("logging.retentionDays", days, "Log Analytics keeps logs for 30 to 730 days")
    if cfg.cloud == "azure" and cfg.logging.kms:
        yield Problem("logging.kms", True, "is for AWS; Log Analytics encrypts with Microsoft-managed keys")


EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")


def _alarms(cfg: ClusterConfig) -> Iterator[Problem]:
    """Alarm endpoints become SNS subscriptions (AWS) or action group receivers (Azure): an
    address that can be mailed, an https:// URL."""
    from urllib.parse import urlsplit

    for index, address in enumerate(cfg.alarms.email):
        if not EMAIL.fullmatch(address):
            yield Problem(f"alarms.email[{index}]", address, "is not an email address such as ops@example.com")
    for index, url in enumerate(cfg.alarms.https):
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            yield Problem(f"alarms.https[{index}]", url, "must be an https:// URL; alarms are not sent over plain "
                          "HTTP")


def _image(cfg: ClusterConfig) -> Iterator[Problem]:
    image = cfg.image
    if cfg.cloud == "aws":
        if image.id is not None and not AWS_AMI_ID.match(image.id):
            yield Problem("image.id", image.id, "must be an AMI id such as ami-0123456789abcdef0")
        if image.id is not None and image.ssm_parameter is not None:
            yield Problem("image.ssmParameter", image.ssm_parameter, "set image.id or image.ssmParameter, not both")
        if image.ssm_parameter is not None and not image.ssm_parameter.startswith("/"):
            yield Problem("image.ssmParameter", image.ssm_parameter, "must be a parameter path starting with /")
        for key in ("publisher", "offer", "sku"):
            if getattr(image, key) is not None:
                yield Problem(f"image.{key}", getattr(image, key),
                              "is for Azure; on AWS use image.id or image.ssmParameter")
    else:
        if image.ssm_parameter is not None:
            yield Problem("image.ssmParameter", image.ssm_parameter,
                          "is for AWS; on Azure use publisher, offer and sku")
        parts = [image.publisher, image.offer, image.sku]
        if any(parts) and not all(parts):
            yield Problem("image", {"publisher": image.publisher, "offer": image.offer, "sku": image.sku},
                          "give publisher, offer and sku together")
        if image.id is not None and any(parts):
            yield Problem("image.id", image.id, "set image.id or publisher/offer/sku, not both")


def _registry(cfg: ClusterConfig) -> Iterator[Problem]:
    """Repository names ECR accepts as `<cluster>/<name>` (2 to 256 characters) and Docker can
    pull; AWS-only settings refused on Azure, whose Container Registry has no such switch."""
    reg = cfg.registry
    valid = ("lowercase letters and digits, with single '.', '_' or '-' between them and '/' between "
             f"parts, at most {REPOSITORY_LIMIT} characters, such as app or team/api")
    if not reg.enabled:
        if reg.repositories:
            yield Problem("registry.repositories", reg.repositories,
                          "is only read with registry.enabled: true; enable the registry or remove it")
        return
    if cfg.cloud == "aws" and not reg.repositories:
        yield Problem("registry.repositories", [], "an ECR registry is its repositories: list at least one "
                      "(the nodes may pull from exactly these)")
    seen: set[str] = set()
    for index, name in enumerate(reg.repositories):
        if not REPOSITORY_NAME.match(name) or len(name) > REPOSITORY_LIMIT:
            yield Problem(f"registry.repositories[{index}]", name, f"must be a repository name: {valid}")
        elif cfg.cloud == "aws" and len(f"{cfg.name}/{name}") > ECR_NAME_LIMIT:
            yield Problem(f"registry.repositories[{index}]", name,
                          f"ECR names it {cfg.name}/…, longer than {ECR_NAME_LIMIT} characters")
        if name in seen:
            yield Problem(f"registry.repositories[{index}]", name, "is listed twice; list each repository once")
        seen.add(name)
    if cfg.cloud == "azure":
        if reg.immutable_tags:
            yield Problem("registry.immutableTags", True, "is for AWS (ECR); an Azure Container Registry locks "
                          "images one by one (az acr repository update --write-enabled false): remove it")
        if reg.keep_images is not None:
            yield Problem("registry.keepImages", reg.keep_images, "is for AWS (ECR lifecycle policy); an Azure "
                          "Container Registry keeps every tagged image (acr purge removes old ones): remove it")


def _tags(cfg: ClusterConfig) -> Iterator[Problem]:
    for key, value in cfg.tags.items():
        if cfg.cloud == "aws" and (key.lower().startswith("aws:") or len(key) > 128 or len(value) > 256):
            yield Problem(f"tags.{key}", value, "AWS tag keys are at most 128 characters, values 256, "
                          "and keys may not start with aws:")
        if cfg.cloud == "azure" and (re.search(r"[<>%&\\?/]", key) or len(key) > 512 or len(value) > 256):
            yield Problem(f"tags.{key}", value, "Azure tag names may not contain < > % & \\ ? / "
                          "(at most 512 characters, values 256)")
        if key in RESERVED_TAG_KEYS:
            yield Problem(f"tags.{key}", value, "is set by swarmstack itself; choose another tag key")
