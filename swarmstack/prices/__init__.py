"""The bundled price snapshots (`aws.json`, `azure.json`) and negotiated overrides.

A snapshot is a dated, approximate copy of the clouds' public list prices; an override
file (`swarmstack cost --prices FILE`, JSON or YAML) has the same shape, holds only
what differs, and is merged over the snapshot key by key. Numbers are read as
`Decimal`, so the arithmetic in `swarmstack.cost` is exact to the cent.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

# Mappings whose keys are names the user may add to (a region, a type, a disk tier);
# every other mapping takes only the keys the snapshot has.
OPEN = {"regions", "instances", "vmSizes", "Premium_LRS", "StandardSSD_LRS", "logAlertMonth",
        "storageGBMonth", "ebsGBMonth", "managedDiskMonth"}


class PriceError(ValueError):
    """A price file that cannot be used, or a price the estimate needs and lacks; one line."""


def snapshot_path(cloud: str) -> Path:
    return HERE / f"{cloud}.json"


def load_prices(cloud: str, override: Path | None = None) -> dict[str, Any]:
    """The snapshot of `cloud`, with `override` (a --prices FILE) merged over it."""
    base_path = snapshot_path(cloud)
    prices = json.loads(base_path.read_text(), parse_float=Decimal, parse_int=Decimal)
    prices["_file"] = f"swarmstack/prices/{base_path.name}"
    if override is None:
        return prices
    document = _read_override(override)
    merged = _merge(prices, document, override, "")
    source = f"{prices['source']} Overridden by {override}"
    if "source" in document:
        source += f" ({document['source']})"
    merged["source"] = source
    merged["_override"] = str(override)
    return merged


def _read_override(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as err:
        raise PriceError(f"{path}: cannot read the price override file: {err.strerror}") from None
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            document = _decimals(yaml.safe_load(text))
        else:
            document = json.loads(text, parse_float=Decimal, parse_int=Decimal)
    except ValueError as err:  # json.JSONDecodeError and yaml.YAMLError's messages
        raise PriceError(f"{path}: not valid {'YAML' if path.suffix in ('.yaml', '.yml') else 'JSON'}: "
                         f"{str(err).splitlines()[0]}") from None
    except Exception as err:  # yaml.YAMLError is not a ValueError
        raise PriceError(f"{path}: not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(document, dict):
        raise PriceError(f"{path}: must be a mapping shaped like the snapshot "
                         "(source, date, usage, regions.<region>.<price>)")
    return document


def _decimals(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {str(k): _decimals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decimals(v) for v in value]
    return value


def _merge(base: dict[str, Any], extra: dict[str, Any], file: Path, path: str) -> dict[str, Any]:
    merged = dict(base)
    leaf = path.rsplit(".", 1)[-1]
    for key, value in extra.items():
        key = str(key)
        where = f"{path}.{key}" if path else key
        if key in base:
            template = base[key]
        elif leaf in OPEN and base:
            template = next(iter(base.values()))  # a new region / type: shaped like its siblings
        else:
            valid = ", ".join(k for k in base if not k.startswith("_"))
            raise PriceError(f"{file}: {where}: unknown key; valid keys here: {valid}")
        if isinstance(template, dict):
            if not isinstance(value, dict):
                raise PriceError(f"{file}: {where} = {value!r}: must be a mapping like the snapshot's")
            merged[key] = _merge(base[key], value, file, where) if key in base \
                else _merge_new(template, value, file, where)
        elif isinstance(template, Decimal):
            if not isinstance(value, Decimal) or value < 0:
                raise PriceError(f"{file}: {where} = {value!r}: must be a number, 0 or more")
            merged[key] = value
        else:
            if not isinstance(value, str):
                raise PriceError(f"{file}: {where} = {value!r}: must be text")
            merged[key] = value
    return merged


def _merge_new(template: dict[str, Any], value: dict[str, Any], file: Path, where: str) -> dict[str, Any]:
    """A key the snapshot lacks (a new region): checked against a sibling's keys, taken as given."""
    checked = _merge(template, value, file, where)
    return {k: checked[k] for k in value}
