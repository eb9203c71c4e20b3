"""The optional packages behind `report_to` and `push_to_hub`, and the preset rules for them.

Stdlib only: the validator checks with `importlib.util.find_spec`, so checking a preset
never imports a tracker. The engine imports the same tables to name the package in its
own one-line error.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from typing import Any, Callable

from tuitrain.config.problems import NOTICE

# tracker → (import names, any one of which is enough; the pip package to install)
TRACKERS: dict[str, tuple[tuple[str, ...], str]] = {
    "tensorboard": (("tensorboard", "tensorboardX"), "tensorboard"),
    "wandb": (("wandb",), "wandb"),
    "mlflow": (("mlflow",), "mlflow"),
}
REPORT_TO_CHOICES = ("none", "all", *TRACKERS)
HUB_PACKAGE = "huggingface_hub"
HUB_FIELDS = ("hub_model_id", "hub_strategy", "hub_token", "hub_private_repo", "hub_always_push")
# Secret fields and the placeholder HF writes in their place when it serialises arguments.
SECRETS = {"hub_token": "<HUB_TOKEN>"}
# What any other secret is written as (a [launch.env] value, an option named like a secret).
MASK = "<MASKED>"
# A name holds a secret when one of its words (split at `_`, `.`, `-` and camelCase) is one of these.
SECRET_WORDS = frozenset({"token", "key", "apikey", "secret", "password", "passwd", "credential",
                          "credentials", "auth"})
# The preset fields whose every value is a secret: environment variables for the trainer
# (WANDB_API_KEY, HF_TOKEN, …) are passed through the preset and never written elsewhere.
SECRET_TABLES = frozenset({"launch.env", "env"})


def is_secret_name(name: str) -> bool:
    """Whether a key (`group.key`, an option or an environment variable name) names a secret."""
    last = str(name).rsplit(".", 1)[-1]
    words = re.split(r"[^a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", last).lower())
    return any(word in SECRET_WORDS for word in words)


def _mask(name: str, value: Any) -> Any:
    short = str(name).rsplit(".", 1)[-1]
    if value is None or value == "" or value is False:
        return value
    if short in SECRETS:
        return SECRETS[short]
    if name in SECRET_TABLES and isinstance(value, dict):
        return {k: MASK if v not in (None, "") else v for k, v in value.items()}
    if isinstance(value, dict):
        return {k: _mask(str(k), v) for k, v in value.items()}
    if is_secret_name(name) and not isinstance(value, (bool, int, float)):
        return MASK
    return value


def redacted(values: dict[str, Any]) -> dict[str, Any]:
    """A copy of `values` (keyed `key` or `group.key`) with every secret replaced by a placeholder:
    `hub_token` as HF writes it, every `[launch.env]` value, and any value whose key (at any
    depth of a table) names a secret (TOKEN, KEY, SECRET, PASSWORD …)."""
    return {name: _mask(name, value) for name, value in values.items()}


def holds_secret(values: dict[str, Any]) -> bool:
    """Whether any value of `values` is a secret (a file holding them is written 0600)."""
    return redacted(values) != values


def masked_preset_toml(preset: Any, header: str = "") -> str:
    """The preset as TOML with every secret masked (what is uploaded or shown beside a run)."""
    from tuitrain.config.writer import preset_toml

    options = _mask("task.options", dict(preset.task.options))
    return preset_toml(redacted(preset.values()), options, header)


def installed(name: str) -> bool:
    """Whether module `name` can be imported (a `None` entry in sys.modules means it cannot)."""
    if name in sys.modules:
        return sys.modules[name] is not None
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def tracker_installed(tracker: str) -> bool:
    """Whether one of the packages `tracker` can use is installed."""
    return any(installed(name) for name in TRACKERS[tracker][0])


def requested_trackers(report_to: Any) -> list[str]:
    """The trackers `report_to` asks for: "none"/[] → none, "all" → every installed one."""
    values = [report_to] if isinstance(report_to, str) else list(report_to or [])
    if "all" in values:
        return [t for t in TRACKERS if tracker_installed(t)]
    return [t for t in dict.fromkeys(values) if t in TRACKERS]


def check_integrations(v: dict, given: set, err: Callable[..., None]) -> None:
    """Validator rules: a missing package is an error (as for an optimizer family's package)."""
    from tuitrain.config import schema  # not at import time: the field tables import this module

    values = v["report_to"] or []
    if len(values) > 1 and ({"none", "all"} & set(values)):
        word = "none" if "none" in values else "all"
        err("report_to", f"\"{word}\" cannot be combined with other trackers", f"write report_to = [\"{word}\"]")
    for tracker in requested_trackers(values):
        if not tracker_installed(tracker):
            pip = TRACKERS[tracker][1]
            err("report_to", f"\"{tracker}\" needs the package {pip}, which is not installed", f"pip install {pip}")
    if "logging_dir" in given and v["logging_dir"] and "tensorboard" not in requested_trackers(values):
        err("logging_dir", "only the TensorBoard tracker writes there", "add \"tensorboard\" to report_to", NOTICE)
    if v["push_to_hub"]:
        if not installed(HUB_PACKAGE):
            err("push_to_hub", f"needs the package {HUB_PACKAGE}, which is not installed",
                f"pip install {HUB_PACKAGE}")
        return
    for key in HUB_FIELDS:
        if key in given and v[key] != schema.field(key).default:
            err(key, "ignored while push_to_hub = false", "set push_to_hub = true to push", NOTICE)
