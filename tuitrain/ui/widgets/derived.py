"""The values a preset implies (global batch, steps per epoch, total and warmup steps), as text.

Pure arithmetic on a validated `Preset` through `config.steps`; the editor shows it as a box
beside the LR chart, or as one line when the terminal is narrow or short.
"""

from __future__ import annotations

from typing import Any


def derived_values(preset) -> dict[str, Any]:
    """Global batch, steps per epoch, total and warmup steps of a valid preset.

    Values that need the data set's size read "unknown" when the task cannot tell it
    without loading the data.
    """
    from tuitrain.config.steps import plan_steps
    from tuitrain.config.tasks import train_examples

    launch = preset.launch
    world = 1
    if getattr(launch, "launcher", "local") == "torchrun":
        nproc = getattr(launch, "nproc_per_node", 1)
        world = (nproc if isinstance(nproc, int) else 1) * int(getattr(launch, "nnodes", 1) or 1)
    examples = train_examples(preset.task.name, dict(preset.task.options))
    known = examples is not None
    args = preset.args
    if not known and (getattr(args, "max_steps", -1) or -1) <= 0:
        return {"world size": world, "train examples": "unknown (set max_steps to fix the total)"}
    plan = plan_steps(args, examples if known else 0, world_size=world)
    out: dict[str, Any] = {
        "world size": world,
        "train examples": examples if known else "unknown",
        "global batch": plan.global_batch,
        "steps per epoch": plan.updates_per_epoch if known else "unknown",
        "epochs": plan.num_epochs if known else "-",
        "total steps": plan.total_steps,
        "warmup steps": plan.warmup_steps,
        "_plan": plan,
    }
    return out


def derived_line(derived: dict[str, Any]) -> str:
    """The derived values in one line, for a narrow or short editor."""
    if "global batch" not in derived:
        return "steps unknown: the task cannot count its examples; set max_steps"
    parts = [f"global batch {derived['global batch']}"]
    if derived.get("steps per epoch") != "unknown":
        parts.append(f"{derived['steps per epoch']} steps/epoch")
    parts += [f"total {derived['total steps']}", f"warmup {derived['warmup steps']}"]
    if derived.get("world size", 1) != 1:
        parts.append(f"world {derived['world size']}")
    return " · ".join(parts)


def derived_box(derived: dict[str, Any], args) -> str:
    """The derived values one per line, with the schedule and peak learning rate."""
    lines = [f"{k:>15}: {v}" for k, v in derived.items() if not k.startswith("_")]
    lines.append(f"{'schedule':>15}: {args.lr_scheduler_type}")
    lines.append(f"{'peak lr':>15}: {args.learning_rate:g}")
    return "\n".join(lines)
