"""Where the shipped presets and themes live, from a checkout or an installed wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _data_dir(name: str) -> Path:
    # An installed wheel carries the folder inside the package (see pyproject's
    # package-dir mapping); a checkout or editable install has it beside the package.
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"tuitrain's {name}/ folder is missing from {_PACKAGE}")


def presets_dir() -> Path:
    """The folder of shipped presets (`quickstart.toml`, …)."""
    return _data_dir("presets")


def themes_dir() -> Path:
    """The folder of shipped themes (`dark.toml`, …)."""
    return _data_dir("themes")


def shipped_presets() -> dict[str, Path]:
    """Shipped presets by name (file stem), sorted."""
    return {p.stem: p for p in sorted(presets_dir().glob("*.toml"))}


def resolve_preset_path(name_or_path: str) -> Path:
    """A preset given as a path, or as the name of a shipped preset (`quickstart`)."""
    path = Path(name_or_path).expanduser()
    if path.exists() or path.suffix == ".toml" or "/" in name_or_path:
        return path
    shipped = shipped_presets()
    return shipped.get(name_or_path, path)
