"""The preset schema: every group (TOML table) and every field a preset may hold.

`GROUPS` is ordered as a preset file is; `FIELDS` maps `"group.key"` to its `Field`,
in group order. The field tables themselves live in `fields_*.py`, one module per
few groups, so this module only defines the types and the look-ups.
"""

from __future__ import annotations

from dataclasses import dataclass, field as _dc_field
from typing import Any

# Field types: how a value is checked and written.
BOOL, INT, FLOAT, STR = "bool", "int", "float", "str"
STR_LIST = "list[str]"  # a list of strings (a lone string is accepted and wrapped)
TABLE = "table"  # a TOML table of free-form keys
INT_OR_STR = "int|str"  # an int, or one of `choices` (e.g. nproc_per_node = "gpu")

TA = "TrainingArguments"
S2S = "Seq2SeqTrainingArguments"


@dataclass(frozen=True)
class Group:
    """One TOML table of a preset."""

    key: str
    title: str
    doc: str


@dataclass(frozen=True)
class Field:
    """One preset key: its type, HF's default, allowed values, help and engine support.

    `hf_name` is the TrainingArguments name (None: ours only); `hf_class` is the HF
    class that still has it in the pinned transformers (None: ours, or removed).
    `honoured` says whether the embedded engine acts on it; `honoured_note` says
    what happens when it does not (or how it is honoured, where that is surprising).
    `unset` explains what a null default means; `example` is a value shown (commented
    out) for a null default in a new preset.
    """

    key: str
    group: str
    type: str
    default: Any
    help: str
    choices: tuple = ()
    minimum: float | None = None
    maximum: float | None = None
    nullable: bool = False
    hf_name: str | None = None
    hf_class: str | None = TA
    honoured: bool = True
    honoured_note: str = ""
    aliases: tuple[str, ...] = ()
    unset: str = ""
    example: Any = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    extra: dict = _dc_field(default_factory=dict, compare=False, hash=False)

    @property
    def name(self) -> str:
        """`group.key`."""
        return f"{self.group}.{self.key}"


def make(group: str, key: str, type_: str, default: Any, help_: str, *, ours: bool = False, **kw: Any) -> Field:
    """A field; its HF name is its key unless `ours` (then no HF name and no HF class).

    Fields that transformers dropped keep their HF name and pass `hf_class=None`.
    """
    kw.setdefault("hf_name", None if ours else key)
    if ours:
        kw.setdefault("hf_class", None)
    if default is None:
        kw.setdefault("nullable", True)
    return Field(key=key, group=group, type=type_, default=default, help=help_, **kw)


GROUPS: tuple[Group, ...] = (
    Group("task", "Task", "What to train: a built-in task or a plug-in entry point, with its options."),
    Group("core", "Core Training Hyperparameters", "Batch sizes, epochs and steps."),
    Group("optimizer", "Optimizer & Scheduler", "The optimizer, its hyperparameters and the LR schedule."),
    Group("dataloader", "DataLoader & Collation", "How batches are loaded and collated."),
    Group("logging", "Logging, Saving, Evaluation", "When to log, save checkpoints and evaluate."),
    Group("evaluation", "Evaluation & Prediction", "What evaluation computes, and text samples."),
    Group("distributed", "Distributed / Parallel", "DDP / FSDP settings and other parallel back-ends."),
    Group("precision", "Mixed Precision & Performance", "fp16/bf16, checkpointing, compile."),
    Group("reproducibility", "Reproducibility & Seeds", "Seeds, determinism, run naming and reporters."),
    Group("launch", "Launch", "How processes are started: locally or under torchrun."),
)
GROUP_KEYS: tuple[str, ...] = tuple(g.key for g in GROUPS)
# The groups whose fields make up `Preset.args` (TrainingArguments' themes).
HF_GROUPS: tuple[str, ...] = GROUP_KEYS[1:-1]

# Names that the reference lists but that are not settable (derived properties).
READ_ONLY: dict[str, str] = {
    "train_batch_size": "is derived (per_device_train_batch_size × world size × "
    "gradient_accumulation_steps); `tuitrain preset show` prints it",
}


def _build() -> dict[str, Field]:
    from tuitrain.config import fields_core, fields_logging, fields_system

    out: dict[str, Field] = {}
    for module in (fields_core, fields_logging, fields_system):
        for f in module.FIELDS:
            out[f.name] = f
    order = {g: i for i, g in enumerate(GROUP_KEYS)}
    return dict(sorted(out.items(), key=lambda kv: order[kv[1].group]))


FIELDS: dict[str, Field] = _build()
_BY_KEY: dict[str, Field] = {f.key: f for f in FIELDS.values()}
ALIASES: dict[str, Field] = {a: f for f in FIELDS.values() for a in f.aliases}


def field(name: str) -> Field:
    """A field by `key` (unique across groups), `group.key`, or an alias; KeyError if none."""
    if name in FIELDS:
        return FIELDS[name]
    if name in _BY_KEY:
        return _BY_KEY[name]
    if name in ALIASES:
        return ALIASES[name]
    raise KeyError(name)


def group_fields(group: str) -> list[Field]:
    """The fields of one group, in order."""
    return [f for f in FIELDS.values() if f.group == group]


def all_keys() -> list[str]:
    """Every field key (for did-you-mean suggestions)."""
    return list(_BY_KEY)
