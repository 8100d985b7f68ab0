"""moto's own server, plus the termination lifecycle hooks that moto 5 lacks.

moto records lifecycle hooks but never honours them: a terminated ASG instance is
gone at once and `CompleteLifecycleAction` is not implemented. This module adds
AWS's documented behaviour, and nothing else, before starting `moto.server`:

- `TerminateInstanceInAutoScalingGroup` on a group with an
  `autoscaling:EC2_INSTANCE_TERMINATING` hook puts the instance in
  `Terminating:Wait` instead of terminating it;
- `CompleteLifecycleAction` on an instance in `Terminating:Wait` terminates it
  (either result terminates, as on AWS); on any other instance, or with a hook name
  the group does not have, it fails with a `ValidationError` as AWS does.

Run as `python motoplus.py -H <host> -p <port>` (the arguments of `moto_server`).
"""

from __future__ import annotations

import sys
from typing import Any

from moto import server
from moto.autoscaling import models, responses
from moto.autoscaling.exceptions import ValidationError
from moto.core.responses import EmptyResult

TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
_original_terminate = models.AutoScalingBackend.terminate_instance


def _state_of(backend: models.AutoScalingBackend, instance_id: str) -> Any:
    for group in backend.autoscaling_groups.values():
        for state in group.instance_states:
            if state.instance.id == instance_id:
                return state
    return None


def _terminating_hooks(backend: models.AutoScalingBackend, group_name: str) -> list[Any]:
    return [hook for hook in backend.lifecycle_hooks.values()
            if hook.auto_scaling_group_name == group_name and hook.lifecycle_transition == TERMINATING]


def terminate_instance(self: models.AutoScalingBackend, instance_id: str, should_decrement: bool) -> Any:
    state = _state_of(self, instance_id)
    if state is None or not _terminating_hooks(self, state.auto_scaling_group_name):
        return _original_terminate(self, instance_id, should_decrement)
    state.lifecycle_state = "Terminating:Wait"
    state.swarmstack_should_decrement = should_decrement
    return models.TerminateInstanceActivity(state.instance, state.auto_scaling_group.desired_capacity)


def complete_lifecycle_action(self: models.AutoScalingBackend, group_name: str, hook_name: str,
                              instance_id: str, result: str) -> None:
    if result not in ("CONTINUE", "ABANDON"):
        raise ValidationError(f"LifecycleActionResult must be CONTINUE or ABANDON, not {result}")
    if not any(hook.name == hook_name for hook in _terminating_hooks(self, group_name)):
        raise ValidationError(f"No Lifecycle Hook found with name {hook_name} for group {group_name}")
    state = _state_of(self, instance_id)
    if state is None or state.auto_scaling_group_name != group_name or state.lifecycle_state != "Terminating:Wait":
        raise ValidationError(f"No active Lifecycle Action found with instance ID {instance_id}")
    _original_terminate(self, instance_id, getattr(state, "swarmstack_should_decrement", False))


def complete_lifecycle_action_response(self: responses.AutoScalingResponse) -> Any:
    self.autoscaling_backend.complete_lifecycle_action(  # type: ignore[attr-defined]
        group_name=self._get_param("AutoScalingGroupName"),
        hook_name=self._get_param("LifecycleHookName"),
        instance_id=self._get_param("InstanceId"),
        result=self._get_param("LifecycleActionResult"),
    )
    return EmptyResult()


def install() -> None:
    models.AutoScalingBackend.terminate_instance = terminate_instance  # type: ignore[method-assign]
    models.AutoScalingBackend.complete_lifecycle_action = complete_lifecycle_action  # type: ignore[attr-defined]
    responses.AutoScalingResponse.complete_lifecycle_action = complete_lifecycle_action_response  # type: ignore[attr-defined]


if __name__ == "__main__":
    install()
    server.main(sys.argv[1:])
