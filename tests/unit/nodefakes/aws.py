"""A stand-in for the AWS CLI, for the node script's unit tests: the few SSM, EC2 and
Auto Scaling calls the script makes, against a JSON state file, with faults on demand.

State: $FAKE_DIR/cloud.json = {"parameters": {name: {"Value", "Type", "KeyId"}},
"instances": {id: state}, "groups": {name: {"desired": n, "instances": [ids]}},
"actions": [...completed lifecycle actions...], "health": {id: status},
"lifecycle": {id: Auto Scaling lifecycle state} (InService when not given),
"machines": [[id, pool, zone, type, "ip,ip"]] (what the cluster-wide listing answers),
"objects": {key: {"bucket", "body" (hex), "sse", "kms"}} (the backup bucket),
"log_streams": {"GROUP STREAM": [message, ...]} (CloudWatch Logs)}.
Faults: $FAKE_DIR/faults.json = {"<service> <operation>": "<error code>"} makes every
matching call fail as the CLI does (exit 254, the error on stderr); {"code": ..., "times": n}
only the next n. Every call is
appended to $FAKE_DIR/calls.log. Answered in the test process (server.py), one call at a time.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

from .call import Call, Exit


class Cli:
    """One command line: its arguments after the global options, and the API's name of the
    call (PutParameter), as the CLI's errors give it."""

    def __init__(self, call: Call) -> None:
        self.call = call
        self.argv = call.args
        args, rest = [], list(call.args)
        while rest:  # the global options, with their values, come before the service
            # (--via api: a call aws_api made over HTTP, nodefakes/api.py)
            if rest[0] in ("--endpoint-url", "--cli-connect-timeout", "--cli-read-timeout", "--via"):
                rest = rest[2:]
                continue
            args.append(rest.pop(0))
        self.service, self.operation = args[0], args[1]
        self.name = "".join(word.capitalize() for word in self.operation.split("-"))

    def fail(self, code: str, message: str = "") -> NoReturn:
        raise Exit(254, f"\nAn error occurred ({code}) when calling the {self.name} operation: {message or code}\n")

    def option(self, name: str, default: str | None = None) -> str | None:
        return self.argv[self.argv.index(name) + 1] if name in self.argv else default

    def options(self, name: str) -> list[str]:
        out: list[str] = []
        if name in self.argv:
            for value in self.argv[self.argv.index(name) + 1:]:
                if value.startswith("--"):
                    break
                out.append(value)
        return out


def main(call: Call) -> None:
    cli = Cli(call)
    service, operation, fake_dir = cli.service, cli.operation, call.dir
    with open(fake_dir / "calls.log", "a") as log:
        log.write(" ".join(call.args) + "\n")
    with open(fake_dir / "aws-env.log", "a") as log:  # the CLI's own retries: AWS_MAX_ATTEMPTS
        log.write(call.max_attempts + "\n")
    faults = json.loads((fake_dir / "faults.json").read_text()) if (fake_dir / "faults.json").exists() else {}
    names = [cli.option("--name") or "", *cli.options("--names")]
    for key in [f"{service} {operation}", *(f"{service} {operation} {n}" for n in names if n)]:
        if isinstance(faults.get(key), dict):  # {"code": ..., "times": n}: the first n calls fail
            if faults[key]["times"] > 0:
                faults[key]["times"] -= 1
                (fake_dir / "faults.json").write_text(json.dumps(faults))
                cli.fail(faults[key]["code"])
        elif key in faults:
            cli.fail(faults[key])
    state = json.loads((fake_dir / "cloud.json").read_text())
    out = handle(cli, state)
    (fake_dir / "cloud.json").write_text(json.dumps(state))
    if out is not None:
        call.print(out)


def handle(cli: Cli, state: dict[str, Any]) -> str | None:
    service, operation, option, options, fail = cli.service, cli.operation, cli.option, cli.options, cli.fail
    params = state.setdefault("parameters", {})
    if (service, operation) == ("ssm", "get-parameter"):
        name = option("--name")
        if name not in params:
            fail("ParameterNotFound")
        return params[name]["Value"]
    if (service, operation) == ("ssm", "get-parameters"):
        names = options("--names")
        found = [{"Name": n, "Value": params[n]["Value"]} for n in names if n in params]
        if option("--query") == "Parameters[].[Name,Value]":  # tokens_read: text, a line a parameter
            return "\n".join(f"{p['Name']}\t{p['Value']}" for p in found)
        return json.dumps({"Parameters": found, "InvalidParameters": [n for n in names if n not in params]})
    if (service, operation) == ("ssm", "put-parameter"):
        name, value = option("--name"), option("--value") or ""
        if value.startswith("file://"):
            value = cli.call.path(value[len("file://"):]).read_text()
        if name in params and "--overwrite" not in cli.argv:
            fail("ParameterAlreadyExists")
        params[name] = {"Value": value, "Type": option("--type"), "KeyId": option("--key-id")}
        return "1"
    if (service, operation) == ("ec2", "describe-instances") and "Name=tag:swarmstack:cluster" in " ".join(cli.argv):
        return "\n".join("\t".join(row) for row in state.get("machines", []))  # the instance_table query
    if (service, operation) == ("ec2", "describe-instances"):
        wanted = (option("--filters") or "").split("Values=", 1)[-1].split(",")
        if "[InstanceId,State.Name]" in (option("--query") or ""):  # gone_instances: id and state a line
            return "\n".join(f"{i}\t{state['instances'][i]}" for i in wanted if i in state.get("instances", {}))
        return "\t".join(state.get("instances", {}).get(i, "") for i in wanted if i in state.get("instances", {}))
    if (service, operation) == ("autoscaling", "describe-auto-scaling-instances"):
        ids = options("--instance-ids")
        if not ids:  # Auto Scaling lists every instance of the region, a page per 50: never asked
            fail("ValidationError", "the fake answers for given instance ids only")
        return next((g for g, v in state.get("groups", {}).items() if ids[0] in v["instances"]), "None")
    if (service, operation) == ("autoscaling", "describe-auto-scaling-groups") and option("--filters"):
        # leaving_instances: the cluster's groups (by tag), their instances Auto Scaling terminates
        if "starts_with(LifecycleState, 'Terminating')" not in (option("--query") or ""):
            fail("ValidationError", "the fake answers leaving_instances' query only")
        leaving = [i for i, lifecycle in state.get("lifecycle", {}).items() if lifecycle.startswith("Terminating")]
        return "\t".join(leaving)
    if (service, operation) == ("autoscaling", "describe-auto-scaling-groups"):
        return str(state["groups"][options("--auto-scaling-group-names")[0]]["desired"])
    if (service, operation) == ("autoscaling", "complete-lifecycle-action"):
        hook, instance = option("--lifecycle-hook-name"), option("--instance-id")
        pending = state.setdefault("pending", [])
        if f"{hook} {instance}" not in pending:
            fail("ValidationError", "No active Lifecycle Action found with instance ID " + str(instance))
        pending.remove(f"{hook} {instance}")
        state.setdefault("actions", []).append(f"{hook} {instance} {option('--lifecycle-action-result')}")
        return None
    if (service, operation) == ("autoscaling", "set-instance-health"):
        state.setdefault("health", {})[option("--instance-id")] = option("--health-status")
        return None
    if (service, operation) == ("s3api", "put-object"):
        key, body = option("--key"), cli.call.path(option("--body") or "").read_bytes()
        state.setdefault("objects", {})[key] = {"bucket": option("--bucket"), "body": body.hex(),
                                                "sse": option("--server-side-encryption"),
                                                "kms": option("--ssekms-key-id")}
        return json.dumps({"ETag": "etag"})
    if (service, operation) == ("s3api", "list-objects-v2"):  # --query 'Contents[].Key': one page, unsorted
        keys = [k for k in state.get("objects", {}) if k.startswith(option("--prefix") or "")]
        return "\t".join(keys) if keys else "None"
    if (service, operation) == ("s3api", "get-object"):
        objects = state.get("objects", {})
        if option("--key") not in objects:
            fail("NoSuchKey")
        cli.call.path(cli.argv[-1]).write_bytes(bytes.fromhex(objects[option("--key")]["body"]))
        return json.dumps({"ContentLength": 1})
    if (service, operation) == ("logs", "create-log-stream"):
        streams = state.setdefault("log_streams", {})
        stream = f"{option('--log-group-name')} {option('--log-stream-name')}"
        if stream in streams:
            fail("ResourceAlreadyExistsException", "The specified log stream already exists")
        streams[stream] = []
        return None
    if (service, operation) == ("logs", "put-log-events"):  # the events from a file (as the CLI takes them)
        stream = f"{option('--log-group-name')} {option('--log-stream-name')}"
        if stream not in state.get("log_streams", {}):
            fail("ResourceNotFoundException", "The specified log stream does not exist.")
        events = json.loads(cli.call.path((option("--log-events") or "")[len("file://"):]).read_text())
        # PutLogEvents' limits (API reference): a batch is at most 10,000 events and 1,048,576
        # bytes, each message's UTF-8 plus 26 an event; an event at most 256 KiB (the older,
        # stricter of the documented limits).
        sizes = [len(event["message"].encode()) + 26 for event in events]
        if len(events) > 10000 or sum(sizes) > 1048576 or max(sizes, default=0) > 262144:
            fail("InvalidParameterException", f"{len(events)} events, {sum(sizes)} bytes, the largest {max(sizes)}")
        state["log_streams"][stream] += [event["message"] for event in events]
        return json.dumps({"nextSequenceToken": "1"})
    fail("UnknownOperation", f"the fake has no {service} {operation}")
