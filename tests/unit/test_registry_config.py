"""`registry`: opt-in, and every mistake gets its exact line (file, key, value, what is valid)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from swarmstack.config.load import read_stack_file, validate
from swarmstack.config.model import KEEP_IMAGES
from swarmstack.config.problems import ConfigError

ROOT = Path(__file__).resolve().parents[2]
AWS = "stacks/Pulumi.prod-aws.yaml: swarmstack:cluster."
AZURE = "stacks/Pulumi.prod-azure.yaml: swarmstack:cluster."
VALID = ("must be a repository name: lowercase letters and digits, with single '.', '_' or '-' between them "
         "and '/' between parts, at most 200 characters, such as app or team/api")


def with_registry(stack: str, registry: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    source, config = read_stack_file(stack, ROOT)
    config = copy.deepcopy(config)
    config["swarmstack:cluster"]["registry"] = registry
    return source, config


def lines(stack: str, registry: dict[str, Any]) -> list[str]:
    source, config = with_registry(stack, registry)
    with pytest.raises(ConfigError) as caught:
        validate(stack, source, config)
    return caught.value.lines


def test_the_registry_is_off_unless_enabled() -> None:
    source, config = read_stack_file("prod-aws", ROOT)
    cfg = validate("prod-aws", source, config).cluster
    assert not cfg.registry.enabled and cfg.registry.repositories == []


def test_an_aws_registry_takes_names_tags_and_a_count() -> None:
    source, config = with_registry("prod-aws", {"enabled": True, "repositories": ["app", "team/api.v2", "a_b-c"],
                                                "immutableTags": True, "keepImages": 10})
    cfg = validate("prod-aws", source, config).cluster
    assert cfg.registry.repositories == ["app", "team/api.v2", "a_b-c"]
    assert cfg.registry.immutable_tags and cfg.keep_images == 10
    source, config = with_registry("prod-aws", {"enabled": True, "repositories": ["app"]})
    assert validate("prod-aws", source, config).cluster.keep_images == KEEP_IMAGES == 30


@pytest.mark.parametrize("name", ["App", "-app", "app-", "a..b", "a//b", "/app", "app/", "a b", "a" * 201, "a__b"])
def test_a_bad_repository_name_is_refused_with_what_is_valid(name: str) -> None:
    assert lines("prod-aws", {"enabled": True, "repositories": ["app", name]}) == [
        AWS + f"registry.repositories[1] = {name}: {VALID}"]


def test_registry_mistakes_each_get_their_line() -> None:
    assert lines("prod-aws", {"enabled": True}) == [
        AWS + "registry.repositories = []: an ECR registry is its repositories: list at least one "
              "(the nodes may pull from exactly these)"]
    assert lines("prod-aws", {"enabled": True, "repositories": ["app", "app"]}) == [
        AWS + "registry.repositories[1] = app: is listed twice; list each repository once"]
    assert lines("prod-aws", {"enabled": True, "repositories": ["app"], "keepImages": 0}) == [
        AWS + "registry.keepImages = 0: must be a whole number of images from 1 to 1000"]
    assert lines("prod-aws", {"repositories": ["app"]}) == [
        AWS + 'registry.repositories = ["app"]: is only read with registry.enabled: true; '
              "enable the registry or remove it"]
    assert lines("prod-aws", {"enabled": True, "repositories": ["app"], "scan": True}) == [
        AWS + "registry.scan = true: unknown key; valid keys here: enabled, repositories, immutableTags, keepImages"]


def test_the_ecr_name_with_the_cluster_prefix_must_fit() -> None:
    source, config = with_registry("prod-aws", {"enabled": True, "repositories": ["a" * 200]})
    config["swarmstack:cluster"]["name"] = "p" * 28
    cfg = validate("prod-aws", source, config).cluster  # 28 + 1 + 200 = 229: fits ECR's 256
    assert len(f"{cfg.name}/{cfg.registry.repositories[0]}") == 229


def test_azure_takes_a_registry_without_repositories_and_refuses_aws_switches() -> None:
    source, config = with_registry("prod-azure", {"enabled": True})
    assert validate("prod-azure", source, config).cluster.registry.enabled
    assert lines("prod-azure", {"enabled": True, "immutableTags": True, "keepImages": 5}) == [
        AZURE + "registry.immutableTags = true: is for AWS (ECR); an Azure Container Registry locks images one "
                "by one (az acr repository update --write-enabled false): remove it",
        AZURE + "registry.keepImages = 5: is for AWS (ECR lifecycle policy); an Azure Container Registry keeps "
                "every tagged image (acr purge removes old ones): remove it"]
