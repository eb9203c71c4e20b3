"""The optional packages behind `report_to` and `push_to_hub`, and the preset rules for them.

Stdlib only: the validator checks with `importlib.util.find_spec`, so checking a preset
never imports a tracker. The engine imports the same tables to name the package in its
own one-line error.
"""

from __future__ import annotations

import importlib.util
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


def redacted(values: dict[str, Any]) -> dict[str, Any]:
    """A copy of `values` (keyed `key` or `group.key`) with every set secret replaced by its placeholder."""
    out = dict(values)
    for name, value in values.items():
        placeholder = SECRETS.get(name.rsplit(".", 1)[-1])
        if placeholder and value:
            out[name] = placeholder
    return out


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
