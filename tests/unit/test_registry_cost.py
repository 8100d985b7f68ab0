"""The registry in the monthly estimate: ECR storage at the assumed size, an Azure Container
Registry by its SKU's daily price; both from the dated snapshot."""

from __future__ import annotations

from decimal import Decimal

from policy_testing import resource

from swarmstack.cost import estimate
from swarmstack.engine.graph import Graph
from swarmstack.prices import load_prices


def test_ecr_storage_is_priced_once_for_all_repositories() -> None:
    prices = load_prices("aws")
    repos = [resource("aws:ecr/repository:Repository", f"prod-registry-{n}", {"name": f"prod/{n}"},
                      parent="urn:pulumi:test::swarmstack::swarmstack:aws:Registry::prod-registry")
             for n in ("app", "api")]
    result = estimate(Graph(stack="t", cloud="aws", resources=repos), "eu-west-1", prices)
    (item,) = [i for i in result.items if i.kind == "registry"]
    assert item.resource == "prod-registry"
    assert item.quantity == Decimal("10") and item.unit_price == Decimal("0.1")
    assert item.monthly == Decimal("1.00")
    assert "2 repositories" in item.description and "assumed" in item.description


def test_an_azure_registry_costs_its_skus_daily_price_for_a_month() -> None:
    prices = load_prices("azure")
    acr = resource("azure-native:containerregistry:Registry", "prod-registry",
                   {"registryName": "prodrega1b2c3", "sku": {"name": "Standard"}})
    result = estimate(Graph(stack="t", cloud="azure", resources=[acr]), "westeurope", prices)
    (item,) = [i for i in result.items if i.kind == "registry"]
    assert item.quantity == Decimal("30.42") and item.unit_price == Decimal("0.667")
    assert item.monthly == Decimal("20.29")
