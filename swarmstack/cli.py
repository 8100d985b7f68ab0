"""`swarmstack`: the offline toolkit.

    swarmstack validate STACK        check stacks/Pulumi.STACK.yaml, one line per problem
    swarmstack plan STACK [--json] [--preview] [--policy-config FILE] [--no-policy]
                                     run the real program through the engine and show
                                     what would be created, with policy findings
    swarmstack cost STACK [--json] [--prices FILE]
                                     the monthly estimate, by resource and in total
    swarmstack context STACK --outputs FILE
                                     a docker context for the stack's TLS Docker API

STACK names stacks/Pulumi.STACK.yaml; examples/STACK an example, stacks/examples/Pulumi.STACK.yaml.

Exit codes: 0 fine; 1 a mandatory policy is violated; 2 the config is invalid;
3 the engine (the model of the cloud) refused the graph.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import sys
from pathlib import Path
from typing import NoReturn

EXIT_POLICY, EXIT_CONFIG, EXIT_ENGINE = 1, 2, 3
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a command whose reader went away
GC_THRESHOLDS = (200_000, 30, 30)
"""The cyclic garbage collector's thresholds for a command (CPython's are 700, 10, 10). A
plan allocates hundreds of thousands of container objects that live to the end (the SDK's,
botocore's models, moto's state), and at the default thresholds the collector walked them
again and again: a third of a `plan prod-aws` (about 6.3 s against 4.5 s, the same peak
memory, about 390 MB). mypy runs with the same numbers for the same reason."""


def project_root(start: Path | None = None) -> Path:
    """The folder holding Pulumi.yaml: the current one or a parent, else the package's own."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "Pulumi.yaml").exists() and (folder / "stacks").is_dir():
            return folder
    return Path(__file__).resolve().parents[1]


def _validate(args: argparse.Namespace) -> int:
    from swarmstack.config.load import load_stack
    from swarmstack.config.preconditions import azure_preconditions
    from swarmstack.config.problems import ConfigError

    try:
        settings = load_stack(args.stack, project_root())
    except ConfigError as err:
        print(str(err), file=sys.stderr)
        return EXIT_CONFIG
    cfg = settings.cluster
    workers = sum(p.count for p in cfg.workers)
    print(f"{settings.source}: valid ({cfg.cloud} in {settings.region}: {cfg.managers.count} managers, "
          f"{workers} workers in {len(cfg.workers)} pools)")
    needs = azure_preconditions(cfg, settings.region)
    if needs:
        print("Before `pulumi up`, the subscription needs (validate cannot check these offline):")
        print("\n".join(f"  - {line}" for line in needs))
    return 0


class _Exit(Exception):
    """A command ends with this exit code; what went wrong is already on stderr."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _load(stack: str, root: Path):  # type: ignore[no-untyped-def]
    """The stack's validated settings and its raw config; a config problem ends the command."""
    from swarmstack.config.load import load_stack, read_stack_file
    from swarmstack.config.problems import ConfigError

    try:
        settings = load_stack(stack, root)
        _, config = read_stack_file(stack, root)
    except ConfigError as err:
        print(str(err), file=sys.stderr)
        raise _Exit(EXIT_CONFIG) from None
    return settings, config


def _graph(stack: str, config, root: Path):  # type: ignore[no-untyped-def]
    """The stack's resource graph from the offline engine; an engine or program refusal ends the command."""
    from pulumi import RunError

    from swarmstack.config.load import stack_name
    from swarmstack.engine.mocks import EngineError
    from swarmstack.engine.run import run_stack

    try:
        return run_stack(stack_name(stack), config, root)
    except EngineError as err:
        print(f"engine: {err}", file=sys.stderr)
        raise _Exit(EXIT_ENGINE) from None
    except RunError as err:  # the program's own refusal: already one line per problem
        print(str(err), file=sys.stderr)
        raise _Exit(EXIT_CONFIG) from None


def _plan(args: argparse.Namespace) -> int:
    from swarmstack.plan import render_json, render_text

    root = project_root()
    settings, config = _load(args.stack, root)
    graph = _graph(args.stack, config, root)
    try:
        findings = [] if args.no_policy else _findings(graph, args.policy_config, args.preview)
    except (OSError, ValueError) as err:  # PolicyConfigError is a ValueError
        print(f"{args.policy_config}: {err}", file=sys.stderr)
        return EXIT_CONFIG
    if args.json:
        document = render_json(graph, settings.region)
        document["findings"] = [f.as_dict() for f in findings]
        print(json.dumps(document, indent=2, default=str))
    else:
        print(render_text(graph, settings.region))
        print()
        print(_cost_line(graph, settings.region, args.stack))
        if not args.no_policy:
            print()
            from swarmstack.policy import format_findings

            print(format_findings(findings))
    return EXIT_POLICY if any(f.level == "mandatory" for f in findings) else 0


def _cost_line(graph, region: str, stack: str) -> str:  # type: ignore[no-untyped-def]
    """The plan's one line of cost, or why there is none."""
    from swarmstack.cost import estimate, one_line
    from swarmstack.prices import PriceError, load_prices

    try:
        return one_line(estimate(graph, region, load_prices(graph.cloud)), stack)
    except PriceError as err:
        return f"Estimated cost: unknown ({err})"


def _cost(args: argparse.Namespace) -> int:
    from swarmstack.cost import estimate, render_text
    from swarmstack.prices import PriceError, load_prices

    root = project_root()
    settings, config = _load(args.stack, root)
    try:
        prices = load_prices(settings.cluster.cloud, Path(args.prices) if args.prices else None)
    except PriceError as err:
        print(str(err), file=sys.stderr)
        return EXIT_CONFIG
    graph = _graph(args.stack, config, root)
    try:
        result = estimate(graph, settings.region, prices)
    except PriceError as err:
        print(str(err), file=sys.stderr)
        return EXIT_CONFIG
    print(json.dumps(result.as_json(), indent=2) if args.json else render_text(result))
    return 0


def _context(args: argparse.Namespace) -> int:
    from swarmstack.context import ContextError, create_context

    try:
        for line in create_context(args.stack, Path(args.outputs), docker=args.docker, home=args.dir):
            print(line)
    except ContextError as err:
        print(str(err), file=sys.stderr)
        return EXIT_CONFIG
    return 0


def _findings(graph, config_file: str | None, preview: bool):  # type: ignore[no-untyped-def]
    """The policy pack's findings, with the config a `--policy-pack-config` file would give."""
    from swarmstack.policy import evaluate

    config = json.loads(Path(config_file).read_text()) if config_file else None
    return evaluate(graph, config, preview=preview)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="swarmstack", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser("validate", help="check a stack's config, offline")
    validate.add_argument("stack", help="stack name: stacks/Pulumi.<stack>.yaml, or examples/<name>")
    validate.set_defaults(run=_validate)
    plan = commands.add_parser("plan", help="show what the stack would create, offline")
    plan.add_argument("stack", nargs="?", default="prod-aws", help="stack name (default: prod-aws)")
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    plan.add_argument("--no-policy", action="store_true", help="skip the policy pack")
    plan.add_argument("--policy-config", metavar="FILE",
                      help="policy pack config, as for pulumi preview --policy-pack-config")
    plan.add_argument("--preview", action="store_true",
                      help="judge the graph as `pulumi preview` would: computed values unknown")
    plan.set_defaults(run=_plan)
    cost = commands.add_parser("cost", help="the stack's monthly estimate, offline, from a dated price snapshot")
    cost.add_argument("stack", help="stack name: stacks/Pulumi.<stack>.yaml, or examples/<name>")
    cost.add_argument("--json", action="store_true",
                      help='print {"currency", "total", "items", "prices": {"source", "date"}}')
    cost.add_argument("--prices", metavar="FILE",
                      help="negotiated prices (JSON or YAML, shaped like swarmstack/prices/<cloud>.json), "
                           "merged over the snapshot")
    cost.set_defaults(run=_cost)
    context = commands.add_parser("context", help="create or update the docker context swarmstack-STACK")
    context.add_argument("stack", help="stack name; the context is swarmstack-<stack>")
    context.add_argument("--outputs", metavar="FILE", required=True,
                         help="what `pulumi stack output --json --show-secrets` printed")
    context.add_argument("--docker", metavar="PATH", default=None, help="the docker CLI (default: docker on PATH)")
    context.add_argument("--dir", metavar="DIR", default=None,
                         help="where the TLS files go (default: $DOCKER_CONFIG or ~/.docker, under swarmstack/<stack>)")
    context.set_defaults(run=_context)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except _Exit as done:
        return done.code


def run() -> NoReturn:
    """The `swarmstack` command: `main`, then out without the interpreter's teardown.

    Once a command has printed, nothing is left to do but free what the SDK, moto and
    botocore loaded: millions of objects, 1.5 to 2 s of a `plan` (benchmarks/plan.py).
    Only the output and the logging handlers are flushed; no thread is left working
    after a run, and nothing swarmstack needs is registered with atexit (the callbacks
    there: logging's, flushed here; multiprocessing's, with no child; certifi's, for a
    zipped install). Tests call `main` and keep the normal exit. The collector runs at
    GC_THRESHOLDS."""
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        code = main()
    except BrokenPipeError:  # the reader went away (`| head`): no traceback, the shell's SIGPIPE status
        code = EXIT_BROKEN_PIPE
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # a reader that went away, a closed stream
            code = code or EXIT_BROKEN_PIPE
    os._exit(code)


if __name__ == "__main__":
    run()
