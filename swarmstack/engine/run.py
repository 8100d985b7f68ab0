"""Run the real Pulumi program of a stack under the engine and return its graph.

The program is `__main__.py` at the project root, executed as the Pulumi CLI would
execute it, with the stack's config set as the CLI would set it. Only the resource
monitor differs: it is the engine's, backed by moto (AWS) or our Azure model.
"""

from __future__ import annotations

import asyncio
import json
import runpy
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.stack import Stack, wait_for_rpcs

from swarmstack.engine.graph import Graph
from swarmstack.engine.mocks import Backend, EngineError, EngineMocks, RecordingMonitor

PROJECT = "swarmstack"
ROOT = Path(__file__).resolve().parents[2]


class Deferred:
    """A provider's model made at its first resource or invoke: a stack of one cloud does
    not pay for importing (for AWS, also starting) the other cloud's model, yet a resource
    of that cloud still meets its model, not an error. The engine's lock serialises calls."""

    def __init__(self, make: Callable[[], Backend]):
        self._make = make
        self._backend: Backend | None = None

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = self._make()
        return self._backend

    def create(self, type_: str, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return self.backend.create(type_, name, inputs)

    def invoke(self, token: str, args: dict[str, Any]) -> dict[str, Any]:
        return self.backend.invoke(token, args)


def backends_for(config: dict[str, Any], exits: ExitStack, stand_ins: bool = False) -> dict[str, Backend]:
    """A fresh model of each provider the stack may use; the stack's own cloud's is made
    now (tests reach into it), the other's only if the program ever calls on it.

    `stand_ins`: the network the config names as existing (`network.existing`) is put in
    the model first, with the config's own ids (`AwsBackend.seed_existing_network`,
    `AzureBackend.with_existing_network`), as `swarmstack plan` runs a brownfield stack.
    Without it, the caller makes that world itself (or a missing network is the error)."""
    from swarmstack.engine.local import RandomBackend, TlsBackend

    region = str(config.get("aws:region") or "us-east-1")
    location = str(config.get("azure-native:location") or "westeurope")
    cluster = config.get("swarmstack:cluster")
    cloud = str(cluster.get("cloud", "")) if isinstance(cluster, dict) else ""
    network = cluster.get("network") if isinstance(cluster, dict) else None
    existing = network.get("existing") if stand_ins and isinstance(network, dict) else None
    existing = existing if isinstance(existing, dict) and existing.get("networkId") else None

    def aws() -> Backend:
        from swarmstack.engine.aws import AwsBackend

        backend = exits.enter_context(AwsBackend(region))
        if existing is not None and cloud == "aws":
            backend.seed_existing_network(str(existing["networkId"]), list(existing.get("privateSubnetIds") or []),
                                          list(existing.get("publicSubnetIds") or []))
        return backend

    def azure() -> Backend:
        from swarmstack.engine.azure import AzureBackend

        if existing is None or cloud != "azure":
            return AzureBackend(location)
        return AzureBackend.with_existing_network(location, str(existing["networkId"]),
                                                  list(existing.get("privateSubnetIds") or []))

    return {
        "aws": Deferred(aws) if cloud == "azure" else aws(),
        "azure-native": azure() if cloud == "azure" else Deferred(azure),
        "tls": TlsBackend(),
        "random": RandomBackend(),
    }


def run_stack(stack: str, config: dict[str, Any], root: Path = ROOT,
              backends: dict[str, Backend] | None = None) -> Graph:
    """Run `root/__main__.py` as stack `stack` with `config` (the stack file's `config:`);
    without `backends`, fresh ones with the stand-ins of an existing network (`backends_for`)."""
    with ExitStack() as exits:
        exits.enter_context(_without_unread_sdk_work())
        mocks = EngineMocks(backends if backends is not None else backends_for(config, exits, stand_ins=True))
        monitor = RecordingMonitor(mocks)
        loop = asyncio.new_event_loop()
        loop.set_exception_handler(partial(_unreported_only, monitor))
        asyncio.set_event_loop(loop)
        try:
            return _run(stack, config, root, mocks, monitor, loop)
        finally:
            _cancel_pending(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            asyncio.set_event_loop(None)


@contextmanager
def _without_unread_sdk_work() -> Iterator[None]:
    """Two things the SDK computes for every resource that nothing in an engine run reads;
    while the engine runs the program, the SDK skips them:

    - a stack trace (`traceback.extract_stack`, each frame's source line read, for the
      Pulumi service to show where a resource was declared): about 3 % of an AWS run. The
      engine keeps no source positions; the SDK gets an empty trace, as it makes itself
      when it finds no user frame.
    - each alias collapsed to a URN (`Resource._aliases`, an Output chain per alias): with
      azure-native's version aliases, dozens a resource, over a quarter of an Azure run. The
      SDK reads `_aliases` only to compute a child's alias URNs for a monitor without alias
      specs (`all_aliases`); the engine's monitor, as the SDK's mock monitor and today's
      Pulumi engine, takes alias specs, which the SDK sends as before
      (`prepare_aliases`)."""
    import pulumi.resource as sdk_resources
    from pulumi.runtime import resource as sdk_resource
    from pulumi.runtime.proto import source_pb2

    stack_trace, collapse = sdk_resource._get_stack_trace, sdk_resources.collapse_alias_to_urn
    sdk_resource._get_stack_trace = source_pb2.StackTrace
    sdk_resources.collapse_alias_to_urn = _uncollapsed  # type: ignore[assignment]
    try:
        yield
    finally:
        sdk_resource._get_stack_trace, sdk_resources.collapse_alias_to_urn = stack_trace, collapse


class _Uncollapsed:
    """What `Resource._aliases` holds in an engine run: an alias the engine never reads as a URN."""

    def __init__(self, alias: Any) -> None:
        self.alias = alias

    def __repr__(self) -> str:
        return f"<alias {self.alias!r}, not collapsed to a URN in an engine run>"


def _uncollapsed(alias: Any, name: str, type_: str, parent: Any) -> Any:
    """`collapse_alias_to_urn` without the URN: the alias kept as given, after the checks
    the SDK's own makes (an alias that leaves no name or type fails the run with the SDK's
    message, here when the resource is made, there when the run ends). An alias the program
    hands as an Output goes to the SDK's own (none does: it costs only where it is used)."""
    from pulumi.runtime.resource import collapse_alias_to_urn

    if isinstance(alias, str):
        return _Uncollapsed(alias)
    if not isinstance(alias, pulumi.Alias):
        return collapse_alias_to_urn(alias, name, type_, parent)
    if (alias.name if alias.name is not ... else name) is None:
        raise Exception("No valid 'name' passed in for alias.")
    if (alias.type_ if alias.type_ is not ... else type_) is None:
        raise Exception("No valid 'type_' passed in for alias.")
    return _Uncollapsed(alias)


def _run(stack: str, config: dict[str, Any], root: Path, mocks: EngineMocks,
         monitor: RecordingMonitor, loop: asyncio.AbstractEventLoop) -> Graph:
    pulumi_settings.ROOT.set(None)
    pulumi_settings.SETTINGS.outputs.clear()  # tasks a failed earlier run left on its closed loop
    set_all_config({k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}, [])
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    if not pulumi_settings.monitor_supports_feature(resource_pb2.RESOURCE_MONITOR_FEATURE_ALIAS_SPECS):
        raise AssertionError("the engine's monitor must take alias specs: the SDK reads Resource._aliases "
                             "without them, and the engine leaves those uncollapsed (_without_unread_sdk_work)")
    stack_resource = pulumi_settings.get_root_resource()
    assert isinstance(stack_resource, Stack)
    try:
        runpy.run_path(str(root / "__main__.py"), run_name="__main__")
        loop.run_until_complete(wait_for_rpcs())
    except Exception as err:
        engine_errors = [e for e in monitor.errors if isinstance(e, EngineError)]
        if engine_errors:
            raise engine_errors[0] from None
        monitor.raised = err
        raise err
    if monitor.errors:
        raise monitor.errors[0]
    outputs, secrets = loop.run_until_complete(_resolve(stack_resource.outputs))
    cloud = str((config.get("swarmstack:cluster") or {}).get("cloud", ""))
    return Graph(stack=stack, cloud=cloud, resources=list(monitor.recorded),
                 outputs=outputs, secret_outputs=secrets, invokes=list(monitor.invoked))


def _unreported_only(monitor: RecordingMonitor, loop: asyncio.AbstractEventLoop,
                     context: dict[str, Any]) -> None:
    """The loop's exception handler: a future that carried the cloud model's refusal of a
    resource (the SDK sets it on every output of a refused resource, and nothing awaits most
    of them; the run raises the first refusal), or the error the run raised (the program's
    own refusal, a `RunError` in an apply), logs nothing when it is collected, which may be
    long after, during another command: the caller reports it. Anything else, a bug beside
    a refusal too, goes to asyncio's default handler."""
    error = context.get("exception")
    if isinstance(error, EngineError) and any(error is err for err in monitor.errors):
        return
    if error is not None and error is monitor.raised:
        return
    loop.default_exception_handler(context)


def _cancel_pending(loop: asyncio.AbstractEventLoop) -> None:
    """After a failed run, end the SDK's outstanding tasks quietly instead of leaving
    them to be destroyed while pending."""
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    pulumi_settings.SETTINGS.outputs.clear()


async def _resolve(outputs: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    values: dict[str, Any] = {}
    secrets: set[str] = set()
    for name, value in outputs.items():
        output = pulumi.Output.from_input(value)
        values[name] = await output.future()
        if await output.is_secret():
            secrets.add(name)
    return values, secrets
