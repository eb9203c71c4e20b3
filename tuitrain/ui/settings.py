"""The user's settings, kept between sessions: `$XDG_CONFIG_HOME/tuitrain/settings.toml`
(`~/.config/tuitrain/settings.toml` without it). Today: the theme chosen with ctrl+t."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path


def settings_path() -> Path:
    """Where the settings live."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "tuitrain" / "settings.toml"


def load_settings() -> tuple[dict, str | None]:
    """The settings (empty when there are none) and a one-line problem when they are unreadable."""
    path = settings_path()
    try:
        return tomllib.loads(path.read_text(encoding="utf-8")), None
    except FileNotFoundError:
        return {}, None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return {}, f"{path}: ignored, cannot read it ({exc})"


def save_setting(key: str, value: str) -> str | None:
    """Store `key = value` (other settings kept); a one-line problem when it cannot be written."""
    from tuitrain.config.writer import toml_string

    path = settings_path()
    settings, _ = load_settings()
    settings[key] = value
    text = "".join(f"{k} = {toml_string(str(v))}\n" for k, v in settings.items() if isinstance(v, str))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        return f"{path}: cannot save the {key} ({exc.strerror or exc})"
    return None
