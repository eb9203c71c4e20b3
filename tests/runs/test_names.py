"""Run names: valid, unique (a taken one refused with a free one), found by a unique prefix,
"did you mean" for an unknown run and for an unknown shipped preset."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from .conftest import make_run
from tuitrain.config import load_preset_data
from tuitrain.errors import TuitrainError
from tuitrain.paths import resolve_preset_path
from tuitrain.runs.names import BadNameError, NameTakenError, check_name, free_name, resolve_run
from tuitrain.runs.registry import find_run
from tuitrain.runs.rundir import create_run_dir, read_run_json


def _preset():
    return load_preset_data({"task": {"name": "regression"}, "core": {"max_steps": 2}}, "/x/cosine.toml")


@pytest.mark.parametrize("name", ["cosine", "lr3e-4", "run_2", "a.b+c@d=e,f", "ünïcode"])
def test_good_names(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "a b", "a/b", "../x", ".hidden", "-rf", "x\x1b[31m", "a" * 101])
def test_bad_names_are_refused_saying_what_a_name_may_hold(name):
    with pytest.raises(BadNameError, match="run name"):
        check_name(name)


def test_free_name_counts_on():
    assert free_name("cosine", []) == "cosine"
    assert free_name("cosine", ["cosine"]) == "cosine-2"
    assert free_name("cosine", ["cosine", "cosine-2"]) == "cosine-3"
    assert free_name("cosine-2", ["cosine", "cosine-2"]) == "cosine-3"  # a series goes on
    assert free_name("a-from-30", ["a-from-30"]) == "a-from-30-2"  # a number that is part of the name


def test_a_named_run_lives_under_its_name_and_a_taken_name_is_refused_with_a_suggestion(isolated):
    root = isolated / "runs"
    first = create_run_dir(_preset(), runs_root=root, name="cosine")
    assert first == (root / "cosine").resolve() and read_run_json(first)["name"] == "cosine"
    assert read_run_json(first)["preset_name"] == "cosine"
    with pytest.raises(NameTakenError, match="run name 'cosine' is taken.*try 'cosine-2'") as err:
        create_run_dir(_preset(), runs_root=root, name="cosine")
    assert err.value.suggestion == "cosine-2"
    # the name of a run elsewhere (an --output-dir) is taken too
    create_run_dir(_preset(), output_dir=isolated / "elsewhere" / "x", name="remote")
    from tuitrain.runs.registry import record_launched

    record_launched(isolated / "elsewhere" / "x")
    with pytest.raises(NameTakenError, match="'remote' is taken"):
        create_run_dir(_preset(), runs_root=root, name="remote")
    assert sorted(p.name for p in root.iterdir()) == ["cosine"]


def test_default_names_stay_preset_timestamp_and_never_collide(isolated):
    root = isolated / "runs"
    dirs = [create_run_dir(_preset(), runs_root=root) for _ in range(3)]
    names = [read_run_json(d)["name"] for d in dirs]
    assert len(set(names)) == 3 and all(n.startswith("cosine-20") for n in names)


def test_two_launchers_racing_for_one_name_claim_it_once(isolated):
    root = isolated / "runs"
    results: list = []

    def claim():
        try:
            results.append(create_run_dir(_preset(), runs_root=root, name="race"))
        except NameTakenError as exc:
            results.append(exc)

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(1 for r in results if not isinstance(r, Exception)) == 1
    assert sum(1 for r in results if isinstance(r, NameTakenError)) == 3


def test_a_unique_prefix_finds_a_run_and_an_ambiguous_one_lists_them(isolated):
    for name in ("cosine-a", "cosine-b", "linear"):
        make_run(isolated, name)
    assert find_run("lin").name == "linear"
    assert find_run("cosine-b").name == "cosine-b"
    with pytest.raises(TuitrainError, match=r"'cos' is ambiguous: it starts 2 runs' names \(cosine-a, cosine-b\)"):
        find_run("cos")
    with pytest.raises(TuitrainError, match="unknown run 'lienar' \\(did you mean 'linear'\\?"):
        find_run("lienar")
    with pytest.raises(TuitrainError, match="unknown run 'zzz' \\(see `tuitrain ls`"):
        find_run("zzz")
    # a directory still works, and a name that is also a prefix of another is exact
    make_run(isolated, "cosine")
    assert find_run("cosine").name == "cosine"
    assert resolve_run(isolated / "runs" / "linear") == isolated / "runs" / "linear"


def test_a_name_recorded_in_run_json_is_found_whatever_the_folder(isolated):
    from tuitrain.runs.registry import record_launched

    where = create_run_dir(_preset(), output_dir=isolated / "out" / "folder", name="my-named-run")
    record_launched(where)
    assert find_run("my-named").run_dir == where


def test_cli_prefix_and_did_you_mean(isolated):
    make_run(isolated, "cosine-long-name")
    env_run = [sys.executable, "-m", "tuitrain.cli"]
    out = subprocess.run(env_run + ["tail", "cosine-l"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    out = subprocess.run(env_run + ["stop", "cosin-long-name"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "did you mean 'cosine-long-name'?" in out.stderr and "Traceback" not in out.stderr


def test_an_unknown_shipped_preset_gets_did_you_mean(isolated):
    with pytest.raises(TuitrainError, match="unknown preset 'quickstrat'.*did you mean 'quickstart'"):
        resolve_preset_path("quickstrat")
    with pytest.raises(TuitrainError, match="shipped presets: .*quickstart"):
        resolve_preset_path("nothinglikeit")
    assert resolve_preset_path("quickstart").name == "quickstart.toml"
    out = subprocess.run([sys.executable, "-m", "tuitrain.cli", "schedule", "quickstrat"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 1
    assert out.stderr.strip() == ("tuitrain: unknown preset 'quickstrat': no such file and no shipped preset of "
                                  "that name (did you mean 'quickstart'?)")
