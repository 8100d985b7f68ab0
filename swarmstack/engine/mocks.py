"""The engine behind the offline plan and the tests: Pulumi mocks that hand every
resource to a model of its cloud, and fail loudly on anything they do not know.

- `aws:*` resources and invokes go to moto (in process) through boto3: `aws.py`.
- `azure-native:*` go to our own semantic model of Azure: `azure.py`.
- `tls:*` and `random:*` are computed for real (keys, certificates, random ids): `local.py`.
- Components (`swarmstack:*`) are recorded, nothing more.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import pulumi
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs

from swarmstack.engine.graph import Invocation, Resource

F = TypeVar("F", bound=Callable[..., Any])


def registrar(table: dict[str, F]) -> Callable[[str], Callable[[F], F]]:
    """A decorator factory that files each function in `table` under a type token:
    how a cloud model says which resource types and invokes it handles."""
    def by_token(token: str) -> Callable[[F], F]:
        def register(fn: F) -> F:
            table[token] = fn
            return fn
        return register
    return by_token


class EngineError(Exception):
    """The cloud model refused a resource or an invoke, as the cloud would."""


class UnsupportedByEngine(EngineError):
    """A resource type or invoke the engine has no model for: never passes silently."""


class Backend(Protocol):
    """A model of one provider package."""

    def create(self, type_: str, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]: ...

    def invoke(self, token: str, args: dict[str, Any]) -> dict[str, Any]: ...


def unwrap_secrets(value: Any) -> tuple[Any, bool]:
    """Strip the engine's secret wrappers; say whether there were any."""
    if rpc.is_rpc_secret(value):
        inner, _ = unwrap_secrets(rpc.unwrap_rpc_secret(value))
        return inner, True
    if isinstance(value, dict):
        found = False
        out = {}
        for key, item in value.items():
            out[key], secret = unwrap_secrets(item)
            found = found or secret
        return out, found
    if isinstance(value, list):
        pairs = [unwrap_secrets(item) for item in value]
        return [p[0] for p in pairs], any(p[1] for p in pairs)
    return value, False


class EngineMocks(pulumi.runtime.Mocks):
    """Dispatches by provider package; `backends` maps a package prefix to its model."""

    def __init__(self, backends: dict[str, Backend]):
        self.backends = backends
        # The SDK registers resources from a thread pool; the models (moto above all)
        # are not thread-safe, so they see one call at a time, as a provider would.
        self._lock = threading.Lock()
        self.received = threading.local()
        """`received.inputs`: the inputs of the resource this thread last registered, as the
        SDK's mock monitor deserialized them (secrets still wrapped), for `RecordingMonitor`."""

    def _backend(self, token: str) -> Backend:
        package = token.split(":", 1)[0]
        backend = self.backends.get(package)
        if backend is None:
            raise UnsupportedByEngine(
                f"{token}: the engine has no model of the '{package}' provider; "
                f"it models {', '.join(sorted(self.backends))}"
            )
        return backend

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        self.received.inputs = args.inputs
        if not args.custom:
            return f"{args.name}-component", {}
        if args.typ.startswith("pulumi:providers:"):
            raise UnsupportedByEngine(
                f"{args.typ} '{args.name}': components must not create providers; "
                "the program's entry point configures the default provider"
            )
        inputs, _ = unwrap_secrets(args.inputs)
        with self._lock:
            return self._backend(args.typ).create(args.typ, args.name, inputs)

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        arguments, _ = unwrap_secrets(args.args)
        with self._lock:
            return self._backend(args.token).invoke(args.token, arguments), []


class RecordingMonitor(MockMonitor):
    """A mock monitor that keeps the parent, inputs, outputs and dependencies of every
    resource, and every error the cloud model raised, for the graph and for the plan.

    The dependencies come from the RegisterResource request itself (the SDK's
    `MockResourceArgs` does not carry them): exactly what the Pulumi engine would be
    handed, so deploy and destroy order can be checked offline."""

    def __init__(self, mocks: EngineMocks):
        super().__init__(mocks)
        self.engine_mocks = mocks
        self.recorded: list[Resource] = []
        self.invoked: list[Invocation] = []
        self.errors: list[BaseException] = []
        self.raised: BaseException | None = None
        """What the run raised to its caller, who reports it (the program's own refusal)."""

    def _guard(self, what: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except BaseException as err:  # recorded, then re-raised to the SDK
            if not any(err is e for e in self.errors):
                self.errors.append(err)
            raise

    def RegisterResource(self, request: Any) -> Any:
        if request.type == "pulumi:pulumi:Stack":
            return super().RegisterResource(request)
        self.engine_mocks.received.inputs = None
        response = self._guard(request.name, lambda: super(RecordingMonitor, self).RegisterResource(request))
        # what the SDK's monitor deserialized of request.object and handed to new_resource,
        # which it calls for every resource but the stack (returned above)
        wrapped = self.engine_mocks.received.inputs
        if wrapped is None:
            raise AssertionError(f"{request.type} '{request.name}': the SDK's mock monitor registered it "
                                 "without calling new_resource; the engine cannot record its inputs")
        inputs: dict[str, Any] = {}
        secret_keys: set[str] = set()
        for key, value in wrapped.items():
            inputs[key], secret = unwrap_secrets(value)
            if secret:
                secret_keys.add(key)
        state = self.resources[response.urn].state
        timeouts = request.customTimeouts
        self.recorded.append(Resource(
            urn=response.urn, type=request.type, name=request.name, parent=request.parent,
            custom=bool(request.custom), inputs=inputs, outputs=dict(state), id=response.id,
            secret_inputs=secret_keys,
            dependencies=list(request.dependencies),
            property_dependencies={key: list(deps.urns) for key, deps in request.propertyDependencies.items()},
            custom_timeouts={kind: getattr(timeouts, kind) for kind in ("create", "update", "delete")
                             if getattr(timeouts, kind)} if request.HasField("customTimeouts") else {},
            protect=bool(request.protect), retain_on_delete=bool(request.retainOnDelete),
        ))
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:
        """A component's `register_outputs`: what the engine keeps as its outputs (and
        what a stack policy sees of it)."""
        wrapped = rpc.deserialize_properties(request.outputs)
        for resource in self.recorded:
            if resource.urn == request.urn:
                resource.outputs = {key: unwrap_secrets(value)[0] for key, value in wrapped.items()}
        return super().RegisterResourceOutputs(request)

    def Invoke(self, request: Any) -> Any:
        response = self._guard(request.tok, lambda: super(RecordingMonitor, self).Invoke(request))
        if request.tok != "pulumi:pulumi:getResource":
            args = unwrap_secrets(rpc.deserialize_properties(request.args))[0]
            result = unwrap_secrets(rpc.deserialize_properties(getattr(response, "return")))[0]
            self.invoked.append(Invocation(request.tok, args, result))
        return response

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        # Components are not registered with the stack root as parent in the base
        # mock; keep the stack out of the type chain so URNs match the engine's.
        if parent.endswith("::" + f"{pulumi.get_project()}-{pulumi.get_stack()}"):
            parent = ""
        return super().make_urn(parent, type_, name)
