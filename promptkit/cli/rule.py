"""``promptkit rule PK301``: explain a lint rule (``--all`` lists every rule)."""

from __future__ import annotations

import json
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "rule",
        help="explain a lint rule (code or name), or list all rules",
        description="Explain a prompt-lint rule: what it catches, why, examples and fix safety.",
    )
    p.add_argument("rule", nargs="?", help="rule code (PK301) or name (artist-missing-by)")
    p.add_argument("--all", action="store_true", help="list every rule (* = on by default)")
    p.add_argument("--output-format", choices=("text", "json", "markdown"), default="text")
    p.set_defaults(func=run)


def run(args) -> int:
    from promptkit.lint.docs import rule_text, rules_table_markdown, rules_table_text
    from promptkit.lint.catalog import all_rules, get_rule

    if args.all or not args.rule:
        if args.output_format == "markdown":
            print(rules_table_markdown())
        elif args.output_format == "json":
            print(json.dumps([_as_json(c) for c in all_rules().values()], indent=2))
        else:
            print(rules_table_text())
        return 0
    try:
        cls = get_rule(args.rule)
    except KeyError as exc:
        print(f"promptkit rule: error: {exc.args[0]}", file=sys.stderr)
        return 2
    if args.output_format == "json":
        print(json.dumps(_as_json(cls), indent=2))
    else:
        print(rule_text(cls.code))
    return 0


def _as_json(cls) -> dict:
    return {
        "code": cls.code,
        "name": cls.name,
        "severity": cls.severity,
        "default": cls.default,
        "fix": cls.fix,
        "backends": list(cls.backends) if cls.backends else None,
        "options": [
            {"name": o.name, "type": o.type, "default": list(o.default) if o.type == "strings" else o.default,
             "minimum": o.minimum, "maximum": o.maximum, "help": o.help}
            for o in cls.options
        ],
        "summary": cls.summary(),
        "explanation": cls.explanation(),
        "examples": [
            {k: v for k, v in ex.__dict__.items() if v is not None} for ex in cls.examples
        ],
    }
