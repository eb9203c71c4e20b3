"""Any TOML text or override gives a Preset or PresetErrors, never another exception."""

from __future__ import annotations

import math
import re

from hypothesis import HealthCheck, assume, given, settings, strategies as st

from tuitrain.config import PresetErrors, load_preset_text, schema
from tuitrain.config.writer import toml_key, toml_value

KEYS = list(schema.all_keys()) + list(schema.ALIASES) + ["bogus", "train_batch_size", "name", "options"]
TABLES = list(schema.GROUP_KEYS) + ["task.options", "launch.env", "nope"]
scalars = st.one_of(
    st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["steps", "epoch", "no", "best", "cosine", "polynomial", "gpu", "torchrun",
                     "galore_adamw_layerwise", "cosine_with_min_lr", "reduce_lr_on_plateau", "modular",
                     "x.y:f", "none"]),
)
values = st.one_of(scalars, st.lists(scalars, max_size=3),
                   st.dictionaries(st.sampled_from(["min_lr", "lr_end", "a b", "num_cycles"]), scalars, max_size=2))


def _render(tables: dict) -> str:
    out = []
    for table, items in tables.items():
        out.append(f"[{table}]")
        out += [f"{toml_key(k)} = {toml_value(v)}" for k, v in items.items()]
    return "\n".join(out) + "\n"


def _check(text: str, overrides=()) -> None:
    try:
        p = load_preset_text(text, "f.toml", overrides)
    except PresetErrors as exc:
        assert exc.one_line()
        for problem in exc.problems:
            assert str(problem).startswith(("f.toml", "--set "))
        return
    for v in p.args.as_dict().values():
        assert not (isinstance(v, float) and not math.isfinite(v))
    load_preset_text(p.to_toml(), "again.toml")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(TABLES), st.dictionaries(st.sampled_from(KEYS), values, max_size=4), max_size=4))
def test_random_presets_never_crash(tables: dict) -> None:
    _check(_render(tables))


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=80))
def test_random_text_never_crashes(text: str) -> None:
    _check(text)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(KEYS + ["core.max_steps", "task.options.block_size", "x.y.z"]),
                          st.text(max_size=10)), max_size=3))
def test_random_overrides_never_crash(pairs) -> None:
    _check("", [f"{k}={v}" for k, v in pairs])


# Preset files that are not UTF-8 text, through the CLI: every command that reads a preset
# answers one line naming the file (and the line where there is one), never a traceback,
# and `run` starts nothing.
PRESET_COMMANDS = (["preset", "validate"], ["preset", "show"], ["preset", "export"], ["schedule"], ["run"])
BAD_BYTES = [b"\xff", b"\xfe", b"\xe9", b"\xc3", b"\x80", b"\xbf", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\xc0\xaf"]
text_with_bad_bytes = st.builds(
    lambda text, bad, cut: text[:cut].encode() + bad + text[cut:].encode(),
    st.text(max_size=60), st.sampled_from(BAD_BYTES), st.integers(0, 60))
binary = st.builds(lambda head, tail: head + b"\0" + tail, st.binary(max_size=80), st.binary(max_size=80))
other_encodings = st.builds(lambda text, codec: text.encode(codec), st.text(max_size=40),
                            st.sampled_from(["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-8-sig"]))


def _cli(argv: list[str]) -> tuple[int, str]:
    """`tuitrain ARGV` in this process: its exit status and everything it printed."""
    import contextlib
    import io

    from tuitrain.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        status = main(argv)
    return status, out.getvalue()


def _refused_in_one_line(path, status: int, output: str) -> None:
    lines = output.splitlines()
    assert status != 0 and len(lines) == 1, output
    assert re.match(rf"{re.escape(str(path))}(:\d+)?: ", lines[0]), output
    assert re.search(r"UTF-8|UTF-16|NUL byte|byte-order mark", lines[0]), output


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.one_of(text_with_bad_bytes, binary, other_encodings), command=st.sampled_from(PRESET_COMMANDS))
def test_preset_files_that_are_not_utf8_text_get_one_line_through_the_cli(tmp_path, raw: bytes, command) -> None:
    # Only bytes that are not plain UTF-8 text: a BOM, a NUL, or an invalid sequence.
    assume(raw.startswith(b"\xef\xbb\xbf") or b"\0" in raw or not _is_utf8(raw))
    path = tmp_path / "bad.toml"
    path.write_bytes(raw)
    _refused_in_one_line(path, *_cli([*command, str(path), "--set", "core.max_steps=1"] if command == ["run"]
                                     else [*command, str(path)]))
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_non_utf8_binary_and_special_files_in_a_real_cli_process(tmp_path) -> None:
    """The same in a `tuitrain` process, and for what is not a file at all: a FIFO (whose
    open would block for a writer) and a character device (`/dev/zero` never ends)."""
    import os
    import subprocess
    import sys

    files = {"latin1.toml": "[core]\nmax_steps = 3  # café\n".encode("latin-1"),
             "utf16.toml": "[core]\nmax_steps = 3\n".encode("utf-16"),
             "binary.toml": bytes(range(256)) * 4}
    paths = []
    for name, raw in files.items():
        (tmp_path / name).write_bytes(raw)
        paths.append(tmp_path / name)
    os.mkfifo(tmp_path / "fifo.toml")
    paths += [tmp_path / "fifo.toml", "/dev/zero"]
    expected = {"latin1.toml": ":2: not UTF-8 text (byte 0xe9 at column 21)", "utf16.toml": ":1: is UTF-16 text",
                "binary.toml": ":1: a NUL byte at column 1", "fifo.toml": ": is a FIFO", "/dev/zero": ": is a character device"}
    env = dict(os.environ, TUITRAIN_RUNS=str(tmp_path / "runs"))
    for command in (["preset", "validate"], ["run"]):
        for path in paths:
            proc = subprocess.run([sys.executable, "-m", "tuitrain", *command, str(path)], capture_output=True,
                                  text=True, env=env, timeout=60)
            want = next(v for k, v in expected.items() if str(path).endswith(k))
            assert proc.returncode != 0 and proc.stdout == "", proc
            assert proc.stderr.splitlines() == [proc.stderr.strip()] and proc.stderr.startswith(f"{path}{want}"), proc
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
