"""Text for terminals: durations, and strings with their control characters made visible.

Stdlib only, so the engine's progress line, the CLI and the app share one form.
"""

from __future__ import annotations

import difflib
import re


def format_duration(seconds: float | None, unknown: str = "-", with_seconds: bool = False) -> str:
    """`1h02m` (`1h02m05s` with `with_seconds`), `3m07s`, `12s`; `unknown` when not known."""
    if seconds is None or seconds != seconds or seconds < 0:
        return unknown
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s" if with_seconds else f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


SUMMARY_FIELDS = ("train_loss", "train_runtime", "train_samples_per_second", "train_steps_per_second", "total_flos")


def format_summary(summary: dict) -> str:
    """The end-of-training summary (a `summary` event, HF's names) as one line:
    `train_loss 1.234 · 1m02s · 456.7 samples/s · 12.3 steps/s · 1.2e+12 flos`."""
    def num(key: str) -> float | None:
        value = summary.get(key)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    parts = []
    if num("train_loss") is not None:
        parts.append(f"train_loss {num('train_loss'):.4g}")
    if num("train_runtime") is not None:
        parts.append(format_duration(num("train_runtime"), with_seconds=True))
    for key, unit in (("train_samples_per_second", "samples/s"), ("train_steps_per_second", "steps/s")):
        if num(key) is not None:
            parts.append(f"{num(key):.4g} {unit}")
    if num("total_flos"):
        parts.append(f"{num('total_flos'):.3g} flos")
    return " · ".join(parts)


def escape_controls(text: str, tab: str = "\t") -> str:
    """`text` with every control character (C0, DEL, C1; ANSI escapes included) written as a
    visible `\\xNN`, so nothing in it can act on a terminal; a tab becomes `tab`."""
    out = []
    for ch in str(text):
        code = ord(ch)
        if ch == "\t":
            out.append(tab)
        elif code < 0x20 or code == 0x7F or 0x80 <= code < 0xA0:
            out.append(f"\\x{code:02x}")
        else:
            out.append(ch)
    return "".join(out)


def unescape_controls(text: str) -> str:
    """The inverse of `escape_controls` for text a person edited: each `\\xNN` that names a
    control character becomes that character again; any other backslash is left as typed."""
    if "\\x" not in text:
        return text

    def back(match: re.Match) -> str:
        code = int(match.group(1), 16)
        return chr(code) if code < 0x20 or code == 0x7F or 0x80 <= code < 0xA0 else match.group(0)

    return re.sub(r"\\x([0-9a-fA-F]{2})", back, text)


def closest(word: str, options: list[str] | tuple[str, ...]) -> str | None:
    """The closest of `options` to `word` (for "did you mean …?"), or None."""
    found = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return found[0] if found else None
