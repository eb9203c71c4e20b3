"""`tuitrain schedule PRESET --grid …`: every member's LR curve on one chart, from the schedule
math the engine runs, with one line per member saying which marker is its curve."""

from __future__ import annotations

from tuitrain import cli
from tuitrain.commands.schedule_overlay import PLAIN_MARKERS, member_curves
from tuitrain.config.schedules import lr_curve
from tuitrain.sweeps.expand import expand
from tuitrain.sweeps.spec import parse_cli


def test_each_members_curve_is_the_engines_schedule(tiny):
    spec = parse_cli(grid=["optimizer.lr_scheduler_type=linear,cosine,constant_with_warmup"],
                     zip=["optimizer.warmup_steps=0,20"], sets=["core.max_steps=100"])
    curves = member_curves(tiny, spec, None, 400)
    assert len(curves) == 6
    for curve, member in zip(curves, expand(tiny, spec)):
        assert curve["name"] == member.name
        full = lr_curve(member.preset.args, 100, member.preset.args.warmup_steps)
        assert curve["steps"] == list(range(1, 101)) and curve["lrs"] == full
    assert curves[1]["warmup"] == 20 and curves[1]["lrs"][0] == 0.0 and curves[0]["lrs"][0] == 0.01


def test_the_overlay_draws_every_member_with_its_own_marker(tiny, capsys):
    code = cli.main(["schedule", str(tiny), "--grid", "optimizer.lr_scheduler_type=linear,constant",
                     "--set", "core.max_steps=50", "--width", "60", "--height", "12"])
    out = capsys.readouterr().out
    assert code == 0
    chart, _, legend = out.partition("\n\n")
    assert "tiny: 2 learning-rate schedules" in chart
    assert PLAIN_MARKERS[0] in chart and PLAIN_MARKERS[1] in chart
    lines = legend.splitlines()
    assert lines[0].startswith(f"{PLAIN_MARKERS[0]} lr_scheduler_type=linear ") and "final LR 0.0002" in lines[0]
    assert lines[1].startswith(f"{PLAIN_MARKERS[1]} lr_scheduler_type=constant ") and "final LR 0.01" in lines[1]


def test_a_bad_member_refuses_the_overlay_in_one_line(tiny, capsys):
    code = cli.main(["schedule", str(tiny), "--grid", "optimizer.lr_scheduler_type=linear,reduce_lr_on_plateau"])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("tuitrain: sweep member lr_scheduler_type=reduce_lr_on_plateau: ")
    assert len(err.splitlines()) == 1
