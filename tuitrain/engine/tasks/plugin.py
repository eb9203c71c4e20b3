"""Loading a plug-in task: `package.module:function` or `path/file.py:function`."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from tuitrain.errors import TuitrainError

from .bundle import TaskBundle


def is_entry_point(name: str) -> bool:
    """Whether a task name is a plug-in entry point rather than a built-in name."""
    return ":" in name


def _load_module(target: str, base_dir: Path | None) -> ModuleType:
    if target.endswith(".py") or "/" in target or "\\" in target:
        path = Path(target).expanduser()
        if not path.is_absolute() and base_dir is not None and not path.exists():
            path = base_dir / path
        if not path.is_file():
            raise TuitrainError(f"task.name: plug-in file {path} does not exist")
        mod_name = f"tuitrain_plugin_{abs(hash(str(path.resolve())))}"
        spec = importlib.util.spec_from_file_location(mod_name, path)
        if spec is None or spec.loader is None:
            raise TuitrainError(f"task.name: cannot load {path} as a Python file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        # The plug-in's own folder is importable, so it can import its siblings.
        sys.path.insert(0, str(path.resolve().parent))
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(mod_name, None)
            raise TuitrainError(f"task.name: importing {path} failed: {type(exc).__name__}: {exc}") from exc
        finally:
            sys.path.remove(str(path.resolve().parent))
        return module
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        raise TuitrainError(
            f"task.name: module {target!r} not found ({exc}; is it installed or on PYTHONPATH?)"
        ) from exc
    except Exception as exc:
        raise TuitrainError(f"task.name: importing {target!r} failed: {type(exc).__name__}: {exc}") from exc


def load_entry_point(name: str, base_dir: Path | None = None):
    """The callable a `module:function` or `file.py:function` name points at."""
    target, _, func_name = name.rpartition(":")
    if not target or not func_name:
        raise TuitrainError(
            f"task.name: {name!r} is not an entry point (write package.module:function or path/file.py:function)"
        )
    module = _load_module(target, base_dir)
    func = getattr(module, func_name, None)
    if func is None:
        raise TuitrainError(f"task.name: {target} has no function {func_name!r}")
    if not callable(func):
        raise TuitrainError(f"task.name: {target}:{func_name} is not callable")
    return func


def to_bundle(result, name: str) -> TaskBundle:
    """A plug-in's return value as a `TaskBundle`, checked."""
    if isinstance(result, dict):
        unknown = sorted(set(result) - set(TaskBundle.field_names()))
        if unknown:
            raise TuitrainError(
                f"task.name: {name} returned unknown keys {', '.join(unknown)} "
                f"(allowed: {', '.join(TaskBundle.field_names())})"
            )
        missing = [k for k in ("model", "train_dataset") if k not in result]
        if missing:
            raise TuitrainError(f"task.name: {name} returned a dict without {', '.join(missing)}")
        result = TaskBundle(**result)
    if not isinstance(result, TaskBundle):
        raise TuitrainError(
            f"task.name: {name} returned {type(result).__name__}; expected a TaskBundle or a dict "
            "with model, train_dataset, eval_dataset, collate_fn, compute_metrics"
        )
    if not callable(getattr(result.model, "forward", None)) and not callable(result.model):
        raise TuitrainError(f"task.name: {name} returned a model without forward()")
    if not hasattr(result.train_dataset, "__len__") or not hasattr(result.train_dataset, "__getitem__"):
        raise TuitrainError(f"task.name: {name} returned a train_dataset that is not map-style (needs __len__ and __getitem__)")
    return result


def build_plugin(name: str, options: dict, args, base_dir: Path | None = None) -> TaskBundle:
    """Load and call a plug-in as `function(options, args)`."""
    func = load_entry_point(name, base_dir)
    try:
        result = func(dict(options or {}), args)
    except TuitrainError:
        raise
    except Exception as exc:
        raise TuitrainError(f"task.name: {name} raised {type(exc).__name__}: {exc}") from exc
    return to_bundle(result, name)
