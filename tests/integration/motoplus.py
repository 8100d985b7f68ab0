"""moto's own server, plus the lifecycle hooks that moto 5 lacks.

moto records lifecycle hooks but never honours them: a terminated ASG instance is
gone at once, a launched one is `InService` at once, and `CompleteLifecycleAction`
is not implemented. This module adds AWS's documented behaviour, and nothing else,
before starting `moto.server`:

- termination: `TerminateInstanceInAutoScalingGroup`, and a scale-in (a lower desired
  capacity), on a group with an `autoscaling:EC2_INSTANCE_TERMINATING` hook put the
  instance in `Terminating:Wait` instead of terminating it;
- launch: on a group with an `autoscaling:EC2_INSTANCE_LAUNCHING` hook a new instance
  starts in `Pending:Wait` (counted in the group's capacity, so no second instance
  is launched for it);
- `CompleteLifecycleAction`: on `Terminating:Wait` either result terminates (as on
  AWS); on `Pending:Wait` `CONTINUE` puts the instance `InService` and `ABANDON`
  terminates it (the group launches a replacement). On any other instance, or with
  a hook name the group does not have for that transition, it fails with a
  `ValidationError` as AWS does;
- `RecordLifecycleActionHeartbeat` restarts the wait; a wait that outlives the hook's
  `HeartbeatTimeout` ends with the hook's `DefaultResult`, as on AWS.

IAM is judged on resources: moto evaluates identity policies (when started with
`INITIAL_NO_AUTH_ACTION_COUNT`, as the harness does: `node_iam.py`) but judges every call of
SSM, Logs and Auto Scaling against "*", so a statement scoped to a parameter, a log group or
a group never applied. `tests/unit/moto_iam.py`'s `node_resources` gives the nodes' calls
their resources (parameter, log group or stream, auto scaling group ARNs), as AWS does.

One moto bug is worked around: `CreateLaunchTemplateVersion` keeps `UserData` as a
plain string where the rest of moto expects its `Base64EncodedString`, so a group
launching from such a version failed with a 500.

Every wait and how it ended (`complete` or `timeout`, with the result) is appended as
a JSON line to `$SWARMSTACK_LIFECYCLE_LOG` when that is set, for tests to check.

Run as `python motoplus.py -H <host> -p <port>` (the arguments of `moto_server`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from moto import server
from moto.autoscaling import models, responses
from moto.autoscaling.exceptions import ValidationError
from moto.core.responses import EmptyResult
from moto.core.types import Base64EncodedString
from moto.ec2.models import launch_templates

TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
PENDING = ("Pending", "Pending:Wait", "Pending:Proceed")
_original_terminate = models.AutoScalingBackend.terminate_instance
_original_set_desired = models.FakeAutoScalingGroup.set_desired_capacity
_original_replace = models.FakeAutoScalingGroup.replace_autoscaling_group_instances
LOCK = threading.RLock()
WAITS: dict[str, dict[str, Any]] = {}
"""Instance id -> the wait it is in: backend, state, hook, deadline."""


def _log(event: str, state: Any, hook: Any, **extra: Any) -> None:
    path = os.environ.get("SWARMSTACK_LIFECYCLE_LOG")
    if not path:
        return
    line = {"time": time.time(), "event": event, "instance": state.instance.id,
            "group": state.auto_scaling_group_name, "hook": hook.name, "transition": hook.lifecycle_transition,
            **extra}
    with open(path, "a") as out:
        out.write(json.dumps(line) + "\n")


def _state_of(backend: models.AutoScalingBackend, instance_id: str) -> Any:
    for group in backend.autoscaling_groups.values():
        for state in group.instance_states:
            if state.instance.id == instance_id:
                return state
    return None


def _hooks(backend: models.AutoScalingBackend, group_name: str, transition: str) -> list[Any]:
    return [hook for hook in backend.lifecycle_hooks.values()
            if hook.auto_scaling_group_name == group_name and hook.lifecycle_transition == transition]


def _terminating_hooks(backend: models.AutoScalingBackend, group_name: str) -> list[Any]:
    return _hooks(backend, group_name, TERMINATING)


def _wait(backend: models.AutoScalingBackend, state: Any, hook: Any, lifecycle_state: str) -> None:
    state.lifecycle_state = lifecycle_state
    timeout = int(hook.heartbeat_timeout or 3600)
    WAITS[state.instance.id] = {"backend": backend, "state": state, "hook": hook, "timeout": timeout,
                                "deadline": time.monotonic() + timeout}
    _log("wait", state, hook, lifecycle_state=lifecycle_state, heartbeat_timeout=timeout)


def _begin_terminate(backend: models.AutoScalingBackend, state: Any, should_decrement: bool) -> bool:
    """Put `state` in Terminating:Wait when its group has a termination hook; False when it has none."""
    hooks = _terminating_hooks(backend, state.auto_scaling_group_name)
    if not hooks:
        return False
    state.swarmstack_should_decrement = should_decrement
    _wait(backend, state, hooks[0], "Terminating:Wait")
    return True


def terminate_instance(self: models.AutoScalingBackend, instance_id: str, should_decrement: bool) -> Any:
    with LOCK:
        state = _state_of(self, instance_id)
        if state is None or state.lifecycle_state.startswith("Terminating"):
            if state is not None:
                return models.TerminateInstanceActivity(state.instance, state.auto_scaling_group.desired_capacity)
            return _original_terminate(self, instance_id, should_decrement)
        original = state.auto_scaling_group.desired_capacity
        if not _terminating_hooks(self, state.auto_scaling_group_name):
            WAITS.pop(instance_id, None)
            return _original_terminate(self, instance_id, should_decrement)
        if should_decrement:
            state.auto_scaling_group.desired_capacity = original - 1
        _begin_terminate(self, state, False)
        return models.TerminateInstanceActivity(state.instance, original)


def _finish_terminate(backend: models.AutoScalingBackend, state: Any) -> None:
    WAITS.pop(state.instance.id, None)
    _original_terminate(backend, state.instance.id, getattr(state, "swarmstack_should_decrement", False))


def active_instances(self: models.FakeAutoScalingGroup) -> list[Any]:
    """What counts towards the desired capacity: in service or still launching."""
    return [x for x in self.instance_states if x.lifecycle_state in ("InService", *PENDING)]


def set_desired_capacity(self: models.FakeAutoScalingGroup, new_capacity: int | None) -> None:
    """A scale-in on a group with a termination hook sends the removed instances to Terminating:Wait."""
    with LOCK:
        backend = self.autoscaling_backend
        desired = self.min_size if new_capacity is None else new_capacity
        active = self.active_instances()
        excess = len(active) - (desired or 0)
        if excess <= 0 or not _terminating_hooks(backend, self.name):
            _original_set_desired(self, new_capacity)
            return
        self.desired_capacity = desired
        # Pending instances first, then the oldest, as AWS's default termination policy roughly does.
        candidates = [s for s in active if not s.protected_from_scale_in]
        candidates.sort(key=lambda s: (s.lifecycle_state == "InService",))
        for state in candidates[:excess]:
            _begin_terminate(backend, state, False)


def replace_autoscaling_group_instances(self: models.FakeAutoScalingGroup, count_needed: int,
                                        propagated_tags: dict[str, str]) -> None:
    with LOCK:
        before = {id(state) for state in self.instance_states}
        _original_replace(self, count_needed, propagated_tags)
        hooks = _hooks(self.autoscaling_backend, self.name, LAUNCHING)
        if not hooks:
            return
        for state in self.instance_states:
            if id(state) not in before:
                _wait(self.autoscaling_backend, state, hooks[0], "Pending:Wait")


def _end_wait(backend: models.AutoScalingBackend, state: Any, result: str) -> None:
    if state.lifecycle_state == "Pending:Wait":
        if result == "CONTINUE":
            WAITS.pop(state.instance.id, None)
            state.lifecycle_state = "InService"
        else:
            WAITS.pop(state.instance.id, None)
            if not _begin_terminate(backend, state, False):
                _original_terminate(backend, state.instance.id, False)
    else:
        _finish_terminate(backend, state)


def complete_lifecycle_action(self: models.AutoScalingBackend, group_name: str, hook_name: str,
                              instance_id: str, result: str) -> None:
    if result not in ("CONTINUE", "ABANDON"):
        raise ValidationError(f"LifecycleActionResult must be CONTINUE or ABANDON, not {result}")
    with LOCK:
        state = _state_of(self, instance_id)
        waiting = state is not None and state.lifecycle_state in ("Pending:Wait", "Terminating:Wait")
        transition = LAUNCHING if waiting and state.lifecycle_state == "Pending:Wait" else TERMINATING
        if not any(hook.name == hook_name for hook in _hooks(self, group_name, transition)):
            raise ValidationError(f"No Lifecycle Hook found with name {hook_name} for group {group_name}")
        if not waiting or state.auto_scaling_group_name != group_name:
            raise ValidationError(f"No active Lifecycle Action found with instance ID {instance_id}")
        hook = next(h for h in _hooks(self, group_name, transition) if h.name == hook_name)
        _log("complete", state, hook, result=result)
        _end_wait(self, state, result)


def record_lifecycle_action_heartbeat(self: models.AutoScalingBackend, group_name: str, hook_name: str,
                                      instance_id: str) -> None:
    with LOCK:
        wait = WAITS.get(instance_id)
        if wait is None or wait["hook"].name != hook_name or wait["state"].auto_scaling_group_name != group_name:
            raise ValidationError(f"No active Lifecycle Action found with instance ID {instance_id}")
        wait["deadline"] = time.monotonic() + wait["timeout"]
        _log("heartbeat", wait["state"], wait["hook"])


def _expire_forever() -> None:
    """A wait past its heartbeat timeout ends with the hook's default result."""
    while True:
        time.sleep(1)
        with LOCK:
            now = time.monotonic()
            for wait in [w for w in WAITS.values() if w["deadline"] <= now]:
                state, hook = wait["state"], wait["hook"]
                result = hook.default_result or "ABANDON"
                _log("timeout", state, hook, result=result)
                try:
                    _end_wait(wait["backend"], state, result)
                except Exception as err:  # the instance may be gone already
                    WAITS.pop(state.instance.id, None)
                    print(f"motoplus: ending the wait of {state.instance.id}: {err}", file=sys.stderr)


def complete_lifecycle_action_response(self: responses.AutoScalingResponse) -> Any:
    self.autoscaling_backend.complete_lifecycle_action(  # type: ignore[attr-defined]
        group_name=self._get_param("AutoScalingGroupName"),
        hook_name=self._get_param("LifecycleHookName"),
        instance_id=self._get_param("InstanceId"),
        result=self._get_param("LifecycleActionResult"),
    )
    return EmptyResult()


def record_lifecycle_action_heartbeat_response(self: responses.AutoScalingResponse) -> Any:
    self.autoscaling_backend.record_lifecycle_action_heartbeat(  # type: ignore[attr-defined]
        group_name=self._get_param("AutoScalingGroupName"),
        hook_name=self._get_param("LifecycleHookName"),
        instance_id=self._get_param("InstanceId"),
    )
    return EmptyResult()


def _version_user_data(self: Any) -> Base64EncodedString | None:
    value = self.data.get("UserData")
    if isinstance(value, str):
        value = self.data["UserData"] = Base64EncodedString(value)
    return value  # type: ignore[no-any-return]


def install() -> None:
    launch_templates.LaunchTemplateVersion.user_data = property(_version_user_data)  # type: ignore[method-assign,assignment]
    models.AutoScalingBackend.terminate_instance = terminate_instance  # type: ignore[method-assign]
    models.AutoScalingBackend.complete_lifecycle_action = complete_lifecycle_action  # type: ignore[attr-defined]
    models.AutoScalingBackend.record_lifecycle_action_heartbeat = (  # type: ignore[attr-defined]
        record_lifecycle_action_heartbeat)
    models.FakeAutoScalingGroup.active_instances = active_instances  # type: ignore[method-assign]
    models.FakeAutoScalingGroup.set_desired_capacity = set_desired_capacity  # type: ignore[method-assign]
    models.FakeAutoScalingGroup.replace_autoscaling_group_instances = (  # type: ignore[method-assign]
        replace_autoscaling_group_instances)
    responses.AutoScalingResponse.complete_lifecycle_action = complete_lifecycle_action_response  # type: ignore[attr-defined]
    responses.AutoScalingResponse.record_lifecycle_action_heartbeat = (  # type: ignore[attr-defined]
        record_lifecycle_action_heartbeat_response)
    threading.Thread(target=_expire_forever, name="lifecycle-heartbeats", daemon=True).start()


JUDGED = contextlib.ExitStack()
"""Holds `node_resources` open for the life of the server (a collected generator would undo it)."""


def judge_on_resources() -> None:
    """Judge the nodes' calls on their resources, and log every refusal to stderr (the
    harness's moto.log): the action, the resource it was judged on and moto's message."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto_iam import node_resources

    original = ActionAuthenticatorMixin._authenticate_and_authorize_action

    def authorize(self: Any, iam_request_cls: type, resource: str = "*") -> None:
        try:
            original(self, iam_request_cls, resource)
        except Exception as err:
            print(f"motoplus: refused {self._get_action()} on {resource}: {getattr(err, 'message', None) or err!r}",
                  file=sys.stderr, flush=True)
            raise

    ActionAuthenticatorMixin._authenticate_and_authorize_action = authorize  # type: ignore[method-assign]
    JUDGED.enter_context(node_resources())


if __name__ == "__main__":
    install()
    judge_on_resources()
    server.main(sys.argv[1:])
