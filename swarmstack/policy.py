"""Run the policy pack offline, on a `Graph` from the engine, the way the Pulumi engine
runs it on a real preview or update.

The engine calls a pack twice: `Analyze` once per resource with the resource's *inputs*
(`ResourceValidationArgs`), and `AnalyzeStack` once with every resource's *outputs*
(`StackValidationArgs`; for a component, what it passed to `register_outputs`). Property
names are camelCase, numbers arrive as floats, and in a preview a value that depends on
something not yet created is an "unknown": reading it through `args.props` raises
`UnknownValueError`, and the engine turns that into an advisory "can't run policy ... during
preview" instead of a verdict. `evaluate(..., preview=True)` recreates those unknowns.

    findings = evaluate(graph)                       # like `pulumi up` (values known)
    findings = evaluate(graph, preview=True)         # like `pulumi preview` of a new stack
    findings = evaluate(graph, {"imdsv2-required": {"maxHopLimit": 1}})
    print(format_findings(findings))
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from inspect import isawaitable
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.policy import _NotApplicableError
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from policies._userdata import decode_user_data
from swarmstack.engine.graph import Graph, Resource

MANDATORY, ADVISORY, DISABLED = "mandatory", "advisory", "disabled"
STACK_TYPE = "pulumi:pulumi:Stack"
_LEVELS = {level.value: level for level in EnforcementLevel}
_ORDER = {MANDATORY: 0, ADVISORY: 1}


@dataclass(frozen=True)
class Finding:
    """One policy violation, or one policy that could not run (an advisory, as the engine reports it)."""

    rule: str
    level: str
    """`mandatory` (blocks the update) or `advisory`."""
    message: str
    urn: str
    """The resource's URN; the stack's when a stack rule names no resource."""
    name: str
    type: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


class PolicyConfigError(ValueError):
    """The policy config names an unknown rule or breaks a rule's config schema."""


# --- config, as the CLI reads `--policy-pack-config` ---------------------------------------------


def schema_document(schema: PolicyConfigSchema) -> dict[str, Any]:
    """The JSON schema a rule's settings (its defaults filled in) must meet."""
    document: dict[str, Any] = {"type": "object", "properties": schema.properties, "additionalProperties": False}
    if schema.required:
        document["required"] = schema.required
    return document


def _normalise(config: Mapping[str, Any] | None, policies: Sequence[Policy]) -> dict[str, tuple[str | None, dict]]:
    """{rule: (enforcement level or None, properties with schema defaults)}, validated: the
    settings a config gives, and the defaults of any rule that is not the pack's own (the
    pack's defaults are held valid by its tests, tests/unit/test_policy_pack.py, so a plan
    with no config neither validates them again nor loads jsonschema, a tenth of a second)."""
    from policies.pack import POLICIES

    own = {id(p) for p in POLICIES}
    names = {p.name for p in policies}
    config = dict(config or {})
    problems = [f"{key}: no such rule in the pack (rules: {', '.join(sorted(names))})"
                for key in config if key != "all" and key not in names]
    out: dict[str, tuple[str | None, dict]] = {}
    default_level, _ = _split(config.get("all"), "all", problems)
    for policy in policies:
        level, properties = _split(config.get(policy.name), policy.name, problems)
        schema = policy.config_schema
        if schema is not None:
            check = bool(properties) or id(policy) not in own
            for key, spec in schema.properties.items():
                if key not in properties and "default" in spec:
                    properties[key] = copy.deepcopy(spec["default"])
            for error in _schema_errors(schema_document(schema), properties) if check else ():
                where = ".".join(str(p) for p in error.path)
                problems.append(f"{policy.name}{'.' + where if where else ''}: {error.message}")
        elif properties:
            problems.append(f"{policy.name}: takes no settings, got {', '.join(sorted(properties))}")
        out[policy.name] = (level or default_level, properties)
    if problems:
        raise PolicyConfigError("policy config: " + "; ".join(problems))
    return out


def _schema_errors(document: dict[str, Any], properties: dict[str, Any]) -> Iterable[Any]:
    import jsonschema

    return list(jsonschema.Draft7Validator(document).iter_errors(properties))


def _split(value: Any, key: str, problems: list[str]) -> tuple[str | None, dict]:
    if value is None:
        return None, {}
    if isinstance(value, str):
        if value not in _LEVELS:
            problems.append(f"{key}: '{value}' is not one of {', '.join(_LEVELS)}")
            return None, {}
        return value, {}
    if isinstance(value, dict):
        properties = {k: v for k, v in value.items() if k != "enforcementLevel"}
        level = value.get("enforcementLevel")
        if level is not None and level not in _LEVELS:
            problems.append(f"{key}.enforcementLevel: '{level}' is not one of {', '.join(_LEVELS)}")
            level = None
        return level, properties
    problems.append(f"{key}: must be an enforcement level or an object")
    return None, {}


def _level(policy: Policy, configured: str | None) -> str:
    level = configured or (policy.enforcement_level.value if policy.enforcement_level else ADVISORY)
    return MANDATORY if level == EnforcementLevel.REMEDIATE.value else level


# --- preview: which values would be unknown -----------------------------------------------------


def _computed_values(resources: Iterable[Resource]) -> set[str]:
    """String values that exist only once a resource is created: ids, ARNs, addresses."""
    values: set[str] = set()
    for resource in resources:
        if not resource.custom:
            continue
        own = set(_strings(resource.inputs))
        if resource.id and resource.id not in own:  # an id that is an input (a log group's name) is known
            values.add(resource.id)
        for key, value in resource.outputs.items():
            if key not in resource.inputs and isinstance(value, str) and len(value) >= 8 and value not in own:
                values.add(value)
    return values


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _unknowns(value: Any, computed: set[str]) -> Any:
    """`value` with every string that is, or is built from, a computed value made unknown
    (an Output applied over an unknown is unknown as a whole)."""
    if isinstance(value, str):
        if value in computed or any(c in value for c in computed if len(c) >= 12):
            return UNKNOWN_STRING_VALUE
        decoded = decode_user_data(value) if len(value) >= 64 else None
        if decoded is not None and decoded != value and any(c in decoded for c in computed if len(c) >= 12):
            return UNKNOWN_STRING_VALUE  # base64 (user data) rendered from a computed value
        return value
    if isinstance(value, dict):
        return {k: _unknowns(v, computed) for k, v in value.items()}
    if isinstance(value, list):
        return [_unknowns(v, computed) for v in value]
    return value


def _inputs(resource: Resource, computed: set[str] | None) -> dict[str, Any]:
    inputs = copy.deepcopy(resource.inputs)
    return inputs if computed is None else _unknowns(inputs, computed)


def _outputs(resource: Resource, computed: set[str] | None) -> dict[str, Any]:
    """What AnalyzeStack sees of a resource: its outputs. For a component, the engine keeps
    what it passed to `register_outputs`, and the offline engine records just that."""
    if not resource.custom:
        return copy.deepcopy(resource.outputs)
    outputs = copy.deepcopy(resource.outputs)
    if computed is None:
        return outputs
    known = _inputs(resource, computed)
    return {key: known.get(key, UNKNOWN_STRING_VALUE) for key in outputs} | {
        key: value for key, value in known.items() if key not in outputs}


class _View:
    """The properties the engine would hand over, worked out once per resource and given
    to each rule as a fresh `unknown_checking_proxy` (a rule may not change what the next
    one sees): the proxy rebuilds every dict and list, and the leaves (str, float, bool,
    None) cannot change, so no rule reaches the shared values."""

    def __init__(self, graph: Graph, preview: bool):
        self.computed = _computed_values(graph.resources) if preview else None
        self._inputs: dict[str, dict[str, Any]] = {}
        self._outputs: dict[str, dict[str, Any]] = {}

    def inputs(self, resource: Resource) -> Any:
        if resource.urn not in self._inputs:
            self._inputs[resource.urn] = _inputs(resource, self.computed)
        return unknown_checking_proxy(self._inputs[resource.urn])

    def outputs(self, resource: Resource) -> Any:
        if resource.urn not in self._outputs:
            self._outputs[resource.urn] = _outputs(resource, self.computed)
        return unknown_checking_proxy(self._outputs[resource.urn])


# --- running the rules ---------------------------------------------------------------------------------


def _options(resource: Resource) -> PolicyResourceOptions:
    return PolicyResourceOptions(protect=False, ignore_changes=[], delete_before_replace=None, aliases=[],
                                 custom_timeouts=PolicyCustomTimeouts(0, 0, 0), additional_secret_outputs=[],
                                 parent=resource.parent or None)


def _run(validate: Any) -> None:
    result = validate()
    if isawaitable(result):
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(result)
        finally:
            loop.close()


def _cannot_run(policy: Policy, err: UnknownValueError) -> str:
    from policies.pack import PACK_NAME, PACK_VERSION

    return (f"can't run policy '{policy.name}' from policy pack '{PACK_NAME}@v{PACK_VERSION}' "
            f"during preview: {err.message}")


def evaluate(graph: Graph, config: Mapping[str, Any] | None = None, *, preview: bool = False,
             policies: Sequence[Policy] | None = None) -> list[Finding]:
    """Run every rule of the pack on `graph` and return the findings, mandatory first.

    `config` takes the shape of a `--policy-pack-config` file: `{"rule": "disabled"}`,
    `{"rule": {"enforcementLevel": "advisory", "setting": value}}`, `{"all": "mandatory"}`.
    `preview=True` makes values computed at creation (ids, ARNs, addresses, and strings
    built from them) unknown, as in `pulumi preview` of a stack not yet deployed.
    """
    if policies is None:
        from policies.pack import POLICIES

        policies = POLICIES
    settings = _normalise(config, policies)
    view = _View(graph, preview)
    findings: list[Finding] = []
    for policy in policies:
        configured, properties = settings[policy.name]
        level = _level(policy, configured)
        if level == DISABLED:
            continue
        if isinstance(policy, ResourceValidationPolicy):
            # A rule of the pack names the types it judges (policies/_rules.py: its validate
            # returns at once on any other): the others need no arguments built for it.
            types = getattr(policy, "resource_types", None)
            for resource in graph.resources:
                if types is None or resource.type in types:
                    findings += _analyze(policy, level, properties, resource, view)
        elif isinstance(policy, StackValidationPolicy):
            findings += _analyze_stack(policy, level, properties, graph, view)
    return sorted(findings, key=lambda f: _ORDER.get(f.level, 2))


def _analyze(policy: ResourceValidationPolicy, level: str, properties: dict[str, Any], resource: Resource,
             view: _View) -> list[Finding]:
    """What the engine's `Analyze` call reports for one resource, as findings."""
    found: list[Finding] = []
    args = ResourceValidationArgs(resource.type, view.inputs(resource),
                                  resource.urn, resource.name, _options(resource), None,
                                  copy.deepcopy(properties), {})

    def report(message: str, urn: str | None = None) -> None:
        found.append(Finding(policy.name, level, message, resource.urn, resource.name, resource.type))

    try:
        _run(lambda: policy.validate(args, report))
    except UnknownValueError as err:
        found.append(Finding(policy.name, ADVISORY, _cannot_run(policy, err), resource.urn, resource.name,
                             resource.type))
    except _NotApplicableError:
        pass  # the engine keeps what was reported before
    return found


def _analyze_stack(policy: StackValidationPolicy, level: str, properties: dict[str, Any], graph: Graph,
                   view: _View) -> list[Finding]:
    """What the engine's `AnalyzeStack` call reports, as findings (on the stack when no URN is named)."""
    found: list[Finding] = []
    by_urn = {r.urn: r for r in graph.resources}
    stack_urn = _stack_urn(graph)
    args = StackValidationArgs(_stack_resources(graph, view), copy.deepcopy(properties), {})

    def report(message: str, urn: str | None = None) -> None:
        target = by_urn.get(urn or "")
        found.append(Finding(policy.name, level, message, target.urn if target else stack_urn,
                             target.name if target else graph.stack, target.type if target else STACK_TYPE))

    try:
        _run(lambda: policy.validate(args, report))
    except UnknownValueError as err:
        found.append(Finding(policy.name, ADVISORY, _cannot_run(policy, err), stack_urn, graph.stack, STACK_TYPE))
    except _NotApplicableError:
        pass  # the engine keeps what was reported before
    return found


def _stack_urn(graph: Graph) -> str:
    project = "swarmstack"
    if graph.resources:
        parts = graph.resources[0].urn.split("::")
        if len(parts) > 1:
            project = parts[1]
    return f"urn:pulumi:{graph.stack}::{project}::pulumi:pulumi:Stack::{project}-{graph.stack}"


def _stack_resources(graph: Graph, view: _View) -> list[PolicyResource]:
    built: dict[str, PolicyResource] = {}
    for resource in graph.resources:
        built[resource.urn] = PolicyResource(resource.type, view.outputs(resource),
                                             resource.urn, resource.name, _options(resource), None, None, [], {})
    for resource in graph.resources:
        if resource.parent in built:
            built[resource.urn].parent = built[resource.parent]
    return list(built.values())


# --- the table -------------------------------------------------------------------------------------------


def format_findings(findings: Sequence[Finding], width: int = 120) -> str:
    """A table of findings (rule, resource, message, level) with a one-line summary under it."""
    if not findings:
        return "Policies: no findings."
    rows = [(f.rule, f"{_short(f.type)} {f.name}", f.message, f.level) for f in findings]
    head = ("RULE", "RESOURCE", "MESSAGE", "LEVEL")
    rule_w = max(len(head[0]), *(len(r[0]) for r in rows))
    res_w = min(40, max(len(head[1]), *(len(r[1]) for r in rows)))
    level_w = max(len(head[3]), *(len(r[3]) for r in rows))
    msg_w = max(30, width - rule_w - res_w - level_w - 6)
    lines = [f"{head[0]:<{rule_w}}  {head[1]:<{res_w}}  {head[2]:<{msg_w}}  {head[3]}",
             f"{'-' * rule_w}  {'-' * res_w}  {'-' * msg_w}  {'-' * level_w}"]
    import textwrap

    for rule, resource, message, level in rows:
        wrapped = textwrap.wrap(message, msg_w) or [""]
        resource_text = resource if len(resource) <= res_w else resource[:res_w - 1] + "…"
        lines.append(f"{rule:<{rule_w}}  {resource_text:<{res_w}}  {wrapped[0]:<{msg_w}}  {level}")
        lines.extend(f"{'':<{rule_w}}  {'':<{res_w}}  {more}" for more in wrapped[1:])
    mandatory = sum(1 for f in findings if f.level == MANDATORY)
    lines.append("")
    lines.append(f"Policies: {mandatory} mandatory, {len(findings) - mandatory} advisory"
                 + (" — the update would be blocked." if mandatory else "."))
    return "\n".join(lines)


def _short(type_: str) -> str:
    package, _, rest = type_.partition(":")
    module, _, kind = rest.partition(":")
    module = module.split("/")[0]
    return kind if package == "pulumi" else f"{module}.{kind}"
