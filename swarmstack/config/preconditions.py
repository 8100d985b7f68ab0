"""What a cloud account must have before `pulumi up` works, as far as the config shows it.

Azure refuses a deployment late, and for reasons no config check can see: a feature not
registered, a role the deployer lacks, a provider never used in the subscription, a vCPU
quota. `swarmstack validate` prints these so they are said before they bite; the
subscription itself is not asked (validation runs offline). Pure.
"""

from __future__ import annotations

import re
from collections import Counter

from swarmstack.config.model import ClusterConfig

AZURE_PROVIDERS = ("Microsoft.Authorization", "Microsoft.Compute", "Microsoft.EventGrid",
                   "Microsoft.Insights", "Microsoft.KeyVault", "Microsoft.ManagedIdentity", "Microsoft.Network",
                   "Microsoft.OperationalInsights", "Microsoft.Storage")
"""Resource providers of the resources the Azure stack creates (`components/azure/`)."""
_SIZE = re.compile(r"^Standard_(?P<family>[A-Z]+)(?P<cpus>\d+)(?:-(?P<constrained>\d+))?(?P<features>[a-z]*)"
                   r"(?:_v(?P<version>\d+))?$")


def vcpus(size: str) -> int | None:
    """vCPUs of an Azure size, read from its name (`Standard_D4s_v5` → 4); None when the
    name does not follow the pattern. Constrained sizes (`E4-2s_v3`) count the full number,
    as the quota does."""
    match = _SIZE.match(size)
    return int(match["cpus"]) if match else None


def quota_family(size: str) -> str:
    """The size's family as Azure's quota list names it (`Standard_D4as_v5` → `DASv5`)."""
    match = _SIZE.match(size)
    if not match:
        return size
    features = "".join(c for c in match["features"] if c in "as").upper()
    return f"{match['family']}{features}" + (f"v{match['version']}" if match["version"] else "")


def _pools(cfg: ClusterConfig) -> list[tuple[str, int, list[str], bool]]:
    """(name, count, sizes, spot) of every group of machines."""
    found: list[tuple[str, int, list[str], bool]] = [
        ("managers", cfg.managers.count, [cfg.managers.instance_type], False)]
    for pool in cfg.workers:
        sizes = pool.instance_type if isinstance(pool.instance_type, list) else [pool.instance_type]
        found.append((pool.name, pool.count, list(sizes), pool.spot))
    return found


def azure_preconditions(cfg: ClusterConfig, location: str) -> list[str]:
    """One line per thing the subscription needs for this stack; empty for AWS."""
    if cfg.cloud != "azure":
        return []
    regular: Counter[str] = Counter()
    spot = 0
    unknown: list[str] = []
    for _, count, sizes, is_spot in _pools(cfg):
        cpus = [vcpus(s) for s in sizes]
        if None in cpus:
            unknown += [s for s, c in zip(sizes, cpus, strict=True) if c is None]
            continue
        if is_spot:
            spot += count * max(c for c in cpus if c is not None)
        else:
            regular[quota_family(sizes[0])] += count * (cpus[0] or 0)
    total = sum(regular.values())
    families = ", ".join(f"{family} {n}" for family, n in sorted(regular.items()))
    lines = [
        "the feature Microsoft.Compute/EncryptionAtHost registered: every scale set encrypts at host "
        "(az feature register --namespace Microsoft.Compute --name EncryptionAtHost; then "
        "az provider register --namespace Microsoft.Compute)",
        "the deployer holding Owner or User Access Administrator (Microsoft.Authorization/roleAssignments/write) "
        "on the subscription: the stack assigns roles to the nodes' identities; Contributor cannot",
        "these resource providers registered: " + ", ".join(AZURE_PROVIDERS)
        + " (az provider register --namespace <name>)",
        f"vCPU quota in {location}: {total} regular vCPUs in all ({families})"
        + (f", and {spot} Spot vCPUs (Total Regional Spot vCPUs)" if spot else "")
        + f"; compare with az vm list-usage --location {location} --output table",
        "to destroy: delete rights on the vault's secrets in its data plane (Key Vault Secrets Officer, or "
        "Microsoft.KeyVault/vaults/secrets/delete) besides the management-plane rights"
        + ("; the production vault has purge protection, so it stays soft-deleted for its retention period"
           if cfg.production else ""),
    ]
    if unknown:
        lines.append(f"quota for {', '.join(sorted(set(unknown)))}: the size name does not say its vCPUs; look it up "
                     "with az vm list-sizes")
    return lines
