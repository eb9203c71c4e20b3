"""`tuitrain preset …`: write a new preset, validate, show, export to and import from HF."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tuitrain.errors import TuitrainError


def register(subparsers: Any) -> None:
    """Add the `preset` command and its subcommands."""
    p = subparsers.add_parser("preset", help="create, validate, show, export or import presets",
                              description="Work with preset files (TOML, one table per argument group).")
    sub = p.add_subparsers(dest="preset_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: _usage(p))

    new = sub.add_parser("new", help="write a preset with every field at its default, help as comments")
    new.add_argument("path", metavar="PATH")
    new.add_argument("--force", action="store_true", help="overwrite an existing file")
    new.set_defaults(func=cmd_new)

    val = sub.add_parser("validate", help="check presets; print PATH: ok or one line per problem")
    val.add_argument("paths", metavar="PATH", nargs="+")
    val.add_argument("--set", dest="overrides", action="append", default=[], metavar="GROUP.KEY=VALUE",
                     help="override a preset value (repeatable)")
    val.set_defaults(func=cmd_validate)

    show = sub.add_parser("show", help="print resolved values (non-defaults marked) and derived step counts")
    show.add_argument("path", metavar="PRESET", help="preset file or shipped preset name")
    show.add_argument("--set", dest="overrides", action="append", default=[], metavar="GROUP.KEY=VALUE",
                      help="override a preset value (repeatable)")
    show.add_argument("--all", action="store_true", help="list every field, not only the groups' non-defaults")
    show.set_defaults(func=cmd_show)

    exp = sub.add_parser("export", help="export as HF TrainingArguments JSON or a Python snippet")
    exp.add_argument("path", metavar="PRESET")
    exp.add_argument("--format", choices=("hf-json", "python"), default="hf-json")
    exp.add_argument("-o", "--output", metavar="FILE", default=None, help="write here instead of stdout")
    exp.add_argument("--set", dest="overrides", action="append", default=[], metavar="GROUP.KEY=VALUE")
    exp.set_defaults(func=cmd_export)

    imp = sub.add_parser("import", help="turn an HF TrainingArguments JSON into a preset")
    imp.add_argument("path", metavar="FILE.json")
    imp.add_argument("-o", "--output", metavar="PATH", default=None, help="write here instead of stdout")
    imp.add_argument("--force", action="store_true", help="overwrite an existing output file")
    imp.set_defaults(func=cmd_import)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _resolve(name: str) -> Path:
    from tuitrain.paths import resolve_preset_path

    return resolve_preset_path(name)


def _write_new(path: Path, text: str, force: bool) -> None:
    if path.exists() and not force:
        raise TuitrainError(f"{path}: already exists (pass --force to overwrite)")
    if path.exists() and path.is_dir():
        raise TuitrainError(f"{path}: is a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise TuitrainError(f"{path}: cannot write ({exc.strerror or exc})") from None


def cmd_new(args: argparse.Namespace) -> int:
    """`preset new PATH`."""
    from tuitrain.config import new_preset_text

    path = Path(args.path)
    _write_new(path, new_preset_text(), args.force)
    print(f"wrote {path}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """`preset validate PATH…`: 0 when every preset is valid, else 1 (every problem printed)."""
    from tuitrain.config import load_preset
    from tuitrain.errors import TuitrainError

    status = 0
    for name in args.paths:
        try:
            path = _resolve(name)
            preset = load_preset(path, args.overrides)
        except TuitrainError as exc:  # every preset is checked: one that is not found too
            print(exc.one_line(), file=sys.stderr)
            status = 1
            continue
        print(f"{path}: ok")
        for notice in preset.notices:
            print(f"  notice: {notice}")
    return status


def _fmt(value: Any) -> str:
    from tuitrain.config.writer import toml_value

    return "(unset)" if value is None else toml_value(value)


def derived_numbers(preset: Any) -> list[tuple[str, str]]:
    """(label, value) lines: world size, global batch, per-epoch counts, total and warmup steps."""
    from tuitrain.config import steps
    from tuitrain.config.tasks import train_examples

    world = _world_size(preset)
    a = preset.args
    rows = [("world size", str(world) if world else "one per GPU (known at launch)")]
    world = world or 1
    rows.append(("global batch", f"{steps.global_batch_size(a.per_device_train_batch_size, world, a.gradient_accumulation_steps)}"
                 f" = {a.per_device_train_batch_size} per device × {world} × {a.gradient_accumulation_steps} accumulation"))
    n = train_examples(preset.task.name, preset.task.options)
    if n is None:
        rows.append(("train examples", "known when the task is built"))
        if a.max_steps > 0:
            rows.append(("total steps", str(a.max_steps)))
        return rows
    plan = steps.plan_steps(a, n, world_size=world)
    rows += [
        ("train examples", str(n)),
        ("batches per epoch", str(plan.batches_per_epoch)),
        ("updates per epoch", str(plan.updates_per_epoch)),
        ("epochs", str(plan.num_epochs)),
        ("total steps", str(plan.total_steps)),
        ("warmup steps", str(plan.warmup_steps)),
    ]
    for key in ("logging_steps", "eval_steps", "save_steps"):
        value = getattr(a, key)
        if value is not None and 0 < value < 1:
            rows.append((key, f"{steps.resolve_interval(value, plan.total_steps)} (ratio {value})"))
    return rows


def _world_size(preset: Any) -> int:
    """Processes in all; 0 when it depends on the GPUs found at launch."""
    launch = preset.launch
    if launch.launcher != "torchrun":
        return 1
    if not isinstance(launch.nproc_per_node, int):
        return 0
    return launch.nproc_per_node * launch.nnodes


def cmd_show(args: argparse.Namespace) -> int:
    """`preset show PRESET`: resolved values by group (`*` marks non-defaults) and derived numbers."""
    from tuitrain.config import load_preset, schema

    preset = load_preset(_resolve(args.path), args.overrides)
    values = preset.values()
    print(f"# {preset.path}  (* = differs from the default)")
    print(f"[task]\n  {'*' if preset.task.name != 'char_gpt' else ' '} name = {_fmt(preset.task.name)}")
    for key, value in preset.task.options.items():
        print(f"    options.{key} = {_fmt(value)}")
    for group in schema.GROUPS[1:]:
        rows = []
        for f in schema.group_fields(group.key):
            value = values[f.name]
            changed = value != f.default
            if changed or args.all:
                mark = "*" if changed else " "
                note = "" if f.honoured else "  (not honoured)"
                rows.append(f"  {mark} {f.key} = {_fmt(value)}{note}")
        if rows:
            print(f"[{group.key}]")
            print("\n".join(rows))
    print("derived:")
    for label, value in derived_numbers(preset):
        print(f"  {label}: {value}")
    for notice in preset.notices:
        print(f"notice: {notice}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """`preset export PRESET --format hf-json|python`."""
    from tuitrain.config import hf, load_preset

    preset = load_preset(_resolve(args.path), args.overrides)
    if args.format == "hf-json":
        text = json.dumps(hf.export_hf_dict(preset), indent=2) + "\n"
    else:
        text = hf.export_python(preset)
    if args.output:
        _write_new(Path(args.output), text, force=True)
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """`preset import FILE.json [-o PATH]`: the preset text, validated before it is written."""
    from tuitrain.config import hf, load_preset_text

    text = hf.import_hf_json(args.path)
    label = args.output or f"{args.path} (imported)"
    preset = load_preset_text(text, label)
    if args.output:
        _write_new(Path(args.output), text, args.force)
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    for notice in preset.notices:
        print(f"notice: {notice}", file=sys.stderr)
    return 0
