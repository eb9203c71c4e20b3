"""PresetDocument: byte-identical round trips, edits that keep comments, tables in group order."""

from __future__ import annotations

from pathlib import Path

from tuitrain.config import PresetDocument, load_preset_text, new_preset_text

HAND_WRITTEN = """# my preset\r
[core]  # the core\r
max_steps = 100   # short\r
\r
# optimizer stuff\r
[optimizer]\r
learning_rate = 3e-4\r
"""


def test_round_trip_without_edits_is_byte_identical(tmp_path: Path) -> None:
    for i, text in enumerate([new_preset_text(), HAND_WRITTEN, "", "[core]\nmax_steps=1"]):
        path = tmp_path / f"p{i}.toml"
        path.write_bytes(text.encode())
        doc = PresetDocument.load(path)
        doc.save(tmp_path / f"q{i}.toml")
        assert (tmp_path / f"q{i}.toml").read_bytes() == path.read_bytes()
        doc.get("core", "max_steps")  # parsing alone changes nothing either
        assert doc.text() == text


def _comments(text: str) -> list[str]:
    return [line[line.index("#"):].strip() for line in text.splitlines() if "#" in line]


def test_edit_keeps_every_comment(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(new_preset_text())
    doc = PresetDocument.load(path)
    doc.set("optimizer", "learning_rate", 0.001)
    doc.set("core", "max_steps", 50)
    doc.set("task.options", "block_size", 32)
    doc.save()
    text = path.read_text()
    before = [c for c in _comments(new_preset_text()) if not c.startswith(("# learning_rate", "# max_steps"))]
    after = _comments(text)
    assert all(c in after for c in before)
    p = load_preset_text(text, "p")
    assert (p.args.learning_rate, p.args.max_steps, p.task.options["block_size"]) == (0.001, 50, 32)
    assert PresetDocument.load(path).get("core", "max_steps") == 50


def test_set_in_a_missing_table_creates_it_in_group_order() -> None:
    doc = PresetDocument("# top\n[task]\nname = \"modular\"\n\n# about logging\n[logging]\nlogging_steps = 5\n")
    doc.set("optimizer", "learning_rate", 0.01)
    doc.set("launch", "launcher", "torchrun")
    doc.set("task.options", "modulus", 13)
    text = doc.text()
    assert text.index("[task]") < text.index("[task.options]") < text.index("[optimizer]")
    assert text.index("[optimizer]") < text.index("# about logging") < text.index("[logging]")
    assert text.index("[logging]") < text.index("[launch]")
    p = load_preset_text(text, "p")
    assert p.args.learning_rate == 0.01 and p.launch.launcher == "torchrun" and p.task.options["modulus"] == 13
    assert p.args.logging_steps == 5


def test_remove_restores_default() -> None:
    doc = PresetDocument("[core]\nmax_steps = 9 # nine\n")
    doc.remove("core", "max_steps")
    assert load_preset_text(doc.text(), "p").args.max_steps == -1
