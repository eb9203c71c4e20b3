"""One NVML session per process: initialised lazily, once, under a lock; shut down at exit.

`nvmlInit` loads the driver library and can take a noticeable time (seconds on a box with
many GPUs), so nothing here runs at import or construction: the first `SESSION.begin()`
(from a sampling thread, never the UI thread) initialises NVML, and every later caller
reuses it. Every NVML call goes through `SESSION.lock`, so `shutdown()` (registered with
`atexit`) never frees NVML while another thread is inside a query.

`field(fn, *args)` is the one place that decides what an NVML error means for a reading:
a capability the device lacks (NotSupported, NoPermission, FunctionNotFound, …) is `None`
— shown as `N/A` — and `GpuIsLost` raises `GpuLost` so the caller can mark that one GPU
lost and go on with the others.
"""

from __future__ import annotations

import atexit
import threading
from typing import Any, Callable

NO_GPU = "no NVIDIA GPU"
INSTALL = "pip install nvidia-ml-py"


class GpuLost(Exception):
    """A GPU fell off the bus or stopped answering (NVML's GpuIsLost, ResetRequired)."""


def describe(exc: BaseException) -> str:
    """An NVML error as a short phrase ("Not Supported", "GPU is lost", …)."""
    text = str(exc).strip()
    return text or type(exc).__name__


class NvmlSession:
    """NVML for this process; `begin()` returns the pynvml module, or None with `reason` set."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.state = "new"  # new | ready | failed | closed
        self.reason = ""
        self.module: Any = None
        self.inits = 0  # how many times nvmlInit ran (tests check "once")
        self._atexit = False

    def begin(self) -> Any:
        """Initialise NVML on first use; the pynvml module when it answers, else None."""
        with self.lock:
            if self.state == "new":
                self._init()
            return self.module if self.state == "ready" else None

    def _init(self) -> None:
        try:
            import pynvml  # nvidia-ml-py
        except ImportError:
            self.state, self.reason = "failed", f"{NO_GPU} (pynvml missing: {INSTALL})"
            return
        try:
            self.inits += 1
            pynvml.nvmlInit()
        except Exception as exc:  # NVMLError (LibraryNotFound, DriverNotLoaded, …) or a broken install
            self.state, self.reason = "failed", f"{NO_GPU} (NVML: {describe(exc)})"
            return
        self.module, self.state, self.reason = pynvml, "ready", ""
        if not self._atexit:
            self._atexit = True
            atexit.register(self.shutdown)

    def shutdown(self) -> None:
        """nvmlShutdown, once, after any query in flight (it holds the lock) returns."""
        with self.lock:
            if self.state == "ready":
                try:
                    self.module.nvmlShutdown()
                except Exception:  # noqa: BLE001 - at exit NVML may already be gone
                    pass
            if self.state in ("ready", "failed"):
                self.state = "closed"
            self.module = None

    def reset(self) -> None:
        """Forget everything (tests swap in a fake pynvml between cases)."""
        self.shutdown()
        with self.lock:
            self.state, self.reason, self.inits = "new", "", 0


SESSION = NvmlSession()

# Codes that say "this device cannot tell you that": the field is N/A, the GPU stays listed.
_LOST = ("NVMLError_GpuIsLost", "NVMLError_ResetRequired")


def _is_nvml_error(exc: BaseException, nvml: Any) -> bool:
    error = getattr(nvml, "NVMLError", None)
    return isinstance(error, type) and isinstance(exc, error)


# Returned by `field(..., tell_missing=True)` when the driver lacks the function itself.
MISSING = object()


def field(nvml: Any, fn: Callable[..., Any], *args: Any, tell_missing: bool = False, **kwargs: Any) -> Any:
    """`fn(*args, **kwargs)` under the session lock; None when NVML cannot answer it for this
    device (`MISSING` instead, with `tell_missing`, when the driver has no such function).

    Raises `GpuLost` when the device is gone; any non-NVML exception propagates (a bug).
    """
    with SESSION.lock:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if not _is_nvml_error(exc, nvml):
                raise
            if any(isinstance(exc, getattr(nvml, name, ())) for name in _LOST):
                raise GpuLost(describe(exc)) from None
            if tell_missing and isinstance(exc, getattr(nvml, "NVMLError_FunctionNotFound", ())):
                return MISSING
            return None


def text(value: Any) -> str:
    """NVML strings come back as bytes from some versions of the bindings."""
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
