"""The configuration reference (docs/config.md), generated from the config model: every
key of `swarmstack:cluster` with its type, default, limits and the field's own docstring
(read from the model's source),
so that the reference cannot drift from what `validate` accepts. Pure.

    .venv/bin/python -m swarmstack.config.reference > docs/config.md

tests/unit/test_config_reference.py fails when docs/config.md is not what this prints.
"""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap
import types
import typing
from typing import Any, Literal, Union

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from swarmstack.config.model import ClusterConfig

HEADER = """# Configuration reference

Generated from the config model (`swarmstack/config/model.py`) by
`python -m swarmstack.config.reference`; do not edit by hand. Keys are camelCase, under
`swarmstack:cluster` in `stacks/Pulumi.<stack>.yaml`. Beyond each key's own limits,
`swarmstack validate STACK` checks what spans keys (CIDRs that overlap, zones the region
has, machine types the cloud offers, cron schedules the cloud can run); every problem is
one line naming the file, the key, the value and what would be valid.
"""


def models(root: type[BaseModel] = ClusterConfig) -> list[tuple[str, type[BaseModel]]]:
    """(key path, model) of every model reachable from `root`, depth first, in field order."""
    found: list[tuple[str, type[BaseModel]]] = []

    def visit(path: str, model: type[BaseModel]) -> None:
        if any(m is model for _, m in found):
            return
        found.append((path, model))
        for name, info in model.model_fields.items():
            key = info.alias or name
            for inner in nested(info.annotation):
                visit(f"{path}.{key}" + ("[]" if is_list(info.annotation) else ""), inner)

    visit("swarmstack:cluster", root)
    return found


def nested(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in nested(arg)]


def is_list(annotation: Any) -> bool:
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return any(is_list(a) for a in typing.get_args(annotation))
    return typing.get_origin(annotation) is list


def type_name(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (Union, types.UnionType):
        kept = [a for a in args if a is not type(None)]
        return " or ".join(type_name(a) for a in kept) + (" (optional)" if len(kept) < len(args) else "")
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin is list:
        return f"list of {type_name(args[0])}"
    if origin is dict:
        return f"map of {type_name(args[0])} to {type_name(args[1])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    names = {str: "string", int: "integer", bool: "boolean"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


@functools.cache
def docstrings(model: type[BaseModel]) -> dict[str, str]:
    """Each field's docstring (the string right after it in the class body), read from the
    source here rather than by pydantic at every import of the model."""
    found: dict[str, str] = {}
    body = ast.parse(textwrap.dedent(inspect.getsource(model))).body[0]
    assert isinstance(body, ast.ClassDef)
    for field, after in zip(body.body, body.body[1:], strict=False):
        if isinstance(field, ast.AnnAssign) and isinstance(field.target, ast.Name) \
                and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant) \
                and isinstance(after.value.value, str):
            found[field.target.id] = inspect.cleandoc(after.value.value)
    return found


def describe(model: type[BaseModel], name: str) -> str:
    return docstrings(model).get(name, "")


def limits(info: FieldInfo) -> str:
    parts = []
    for item in info.metadata:
        for attribute, word in (("ge", "at least"), ("le", "at most"), ("pattern", "matches"),
                                ("min_length", "at least"), ("max_length", "at most")):
            value = getattr(item, attribute, None)
            if value is not None:
                unit = " item(s)" if attribute.endswith("length") else ""
                parts.append(f"{word} `{value}`{unit}")
    return ", ".join(parts)


def default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    value = info.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        dumped = value.model_dump(by_alias=True, exclude_defaults=True)
        return f"`{dumped}`" if dumped else "its defaults"
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    return f"`{value}`" if value not in ([], {}) else "empty"


def cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def reference() -> str:
    out = [HEADER]
    for path, model in models():
        out.append(f"## {model.__name__}\n")
        out.append(f"`{path}`: {cell(model.__doc__ or '')}\n")
        out.append("| key | type | default | limits | what it is |")
        out.append("| --- | --- | --- | --- | --- |")
        for name, info in model.model_fields.items():
            out.append(f"| `{info.alias or name}` | {type_name(info.annotation)} | {default(info)} | "
                       f"{cell(limits(info))} | {cell(describe(model, name))} |")
        out.append("")
    return "\n".join(out)


def undocumented() -> list[str]:
    """Keys without a docstring: the reference would say nothing about them."""
    return [f"{path}.{info.alias or name}" for path, model in models()
            for name, info in model.model_fields.items() if not describe(model, name)]


if __name__ == "__main__":
    print(reference(), end="")
