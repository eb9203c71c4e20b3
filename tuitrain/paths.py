"""Where the shipped presets and themes live, from a checkout or an installed wheel."""

from __future__ import annotations

from pathlib import Path

from tuitrain.errors import TuitrainError
from tuitrain.textfmt import closest

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


def shipped_sweeps() -> dict[str, Path]:
    """Shipped sweeps (presets with a `[sweep]` table, in `presets/sweeps/`) by name, sorted."""
    return {p.stem: p for p in sorted((presets_dir() / "sweeps").glob("*.toml"))}


def resolve_preset_path(name_or_path: str) -> Path:
    """A preset given as a path, or as the name of a shipped preset (`quickstart`) or of a
    shipped sweep (`scheduler-shootout`).

    A bare word that is neither a file nor a shipped preset is refused with the shipped
    preset it is closest to (`TuitrainError`: "unknown preset 'quickstrat' (did you mean
    'quickstart'?)"); anything that looks like a path is returned as it is.
    """
    path = Path(name_or_path).expanduser()
    if path.exists() or path.suffix == ".toml" or "/" in name_or_path:
        return path
    shipped = {**shipped_sweeps(), **shipped_presets()}
    if name_or_path in shipped:
        return shipped[name_or_path]
    near = closest(name_or_path, list(shipped))
    hint = f"did you mean {near!r}?" if near else "shipped presets: " + ", ".join(shipped)
    raise TuitrainError(f"unknown preset {name_or_path!r}: no such file and no shipped preset of that name "
                        f"({hint})")
