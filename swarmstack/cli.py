"""`swarmstack`: the offline toolkit.

    swarmstack validate STACK        check stacks/Pulumi.STACK.yaml, one line per problem
    swarmstack plan STACK [--json] [--preview] [--policy-config FILE] [--no-policy]
                                     run the real program through the engine and show
                                     what would be created, with policy findings

Exit codes: 0 fine; 1 a mandatory policy is violated; 2 the config is invalid;
3 the engine (the model of the cloud) refused the graph.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT_POLICY, EXIT_CONFIG, EXIT_ENGINE = 1, 2, 3


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


def _plan(args: argparse.Namespace) -> int:
    from pulumi import RunError

    from swarmstack.config.load import load_stack, read_stack_file
    from swarmstack.config.problems import ConfigError
    from swarmstack.engine.mocks import EngineError
    from swarmstack.engine.run import run_stack
    from swarmstack.plan import render_json, render_text

    root = project_root()
    try:
        settings = load_stack(args.stack, root)
        _, config = read_stack_file(args.stack, root)
    except ConfigError as err:
        print(str(err), file=sys.stderr)
        return EXIT_CONFIG
    try:
        graph = run_stack(args.stack, config, root)
    except EngineError as err:
        print(f"engine: {err}", file=sys.stderr)
        return EXIT_ENGINE
    except RunError as err:  # the program's own refusal: already one line per problem
        print(str(err), file=sys.stderr)
        return EXIT_CONFIG
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
        if not args.no_policy:
            print()
            from swarmstack.policy import format_findings

            print(format_findings(findings))
    return EXIT_POLICY if any(f.level == "mandatory" for f in findings) else 0


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
    validate.add_argument("stack", help="stack name: stacks/Pulumi.<stack>.yaml")
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
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
