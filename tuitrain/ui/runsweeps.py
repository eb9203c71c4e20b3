"""The Runs screen's sweeps: each sweep one row (its progress: `3/6 done, 2 running,
1 queued`) with its members folded beneath it, and what the screen's keys do on that row.

A sweep's row leads its members, placed in the list by its newest member (or its creation,
before any started). `f` (or → / ←) unfolds and folds it; a filter shows the members that
match, unfolded. `enter` opens the Sweep screen; `s` / `r` stop and resume the sweep (its
queue and its running members, `tuitrain.sweeps.queue`); `space` marks every member for
compare; `e` opens the preset the sweep was made from. Kill and delete act on one member.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import work

from tuitrain.errors import TuitrainError
from tuitrain.ui.navigation import EditPreset, OpenSweep
from tuitrain.ui.widgets.states import state_style

SWEEP_KEY = "sweep:"  # the table's row key of a sweep: this, then its directory


@dataclass
class SweepRow:
    """A sweep as the Runs screen lists it (read off the UI thread)."""

    info: object  # tuitrain.sweeps.store.SweepInfo
    progress: str
    counts: dict

    @property
    def key(self) -> str:
        return SWEEP_KEY + str(self.info.dir)

    @property
    def active(self) -> bool:
        return self.info.queue_state == "running" or bool(self.counts.get("running"))


def read_sweeps(root: Path | None, runs: list) -> list[SweepRow]:
    """The sweeps under `root` and those of the listed members elsewhere, each with its
    progress counted from the listed members' states (read again where one is missing)."""
    from tuitrain.sweeps import store

    infos = {str(s.dir): s for s in store.list_sweeps(root)}
    for run in runs:
        parent = Path(run.run_dir).parent
        if getattr(run, "sweep", None) and str(parent) not in infos and store.is_sweep_dir(parent):
            try:
                infos[str(parent)] = store.read_sweep(parent)
            except TuitrainError:
                continue
    states = {str(Path(r.run_dir)): r.state for r in runs}
    found = []
    for info in infos.values():
        member_states = {m.name: states.get(str(Path(m.dir))) for m in info.members}
        counts = store.progress(info, None if None in member_states.values() else member_states)
        found.append(SweepRow(info, store.progress_text(info, counts), counts))
    return found


def sweep_of(run, sweeps: dict[str, SweepRow]) -> SweepRow | None:
    """The sweep a run is a member of, by its directory."""
    return sweeps.get(str(Path(run.run_dir).parent))


class SweepRowsMixin:
    """Sweep rows for `RunsScreen`: grouping, their cells and their actions."""

    sweeps: list[SweepRow]
    unfolded: set[str]

    def group(self, runs: list, visible: list) -> list[tuple[object, int]]:
        """(entry, depth) in table order: a run (0), a sweep's row (0) and its members (1)
        where unfolded. `runs` are every run listed, `visible` those that pass the filter."""
        by_dir = {str(s.info.dir): s for s in self.sweeps}
        shown = {str(Path(r.run_dir)) for r in visible}
        items: list[tuple[float, object]] = []
        members: dict[str, list] = {}
        for run in runs:
            sweep = sweep_of(run, by_dir)
            if sweep is None:
                if str(Path(run.run_dir)) in shown:
                    items.append((run.started or 0.0, run))
            else:
                members.setdefault(str(sweep.info.dir), []).append(run)
        for key, sweep in by_dir.items():
            listed = members.get(key, [])
            if not listed:
                continue  # none of its members in this list (a sweep outside the runs root shown)
            matching = [r for r in listed if str(Path(r.run_dir)) in shown]
            if self.terms and not matching and not all(t in sweep.info.name.lower() for t in self.terms):
                continue
            when = max([r.started or 0.0 for r in listed] + [getattr(sweep.info, "created", None) or 0.0])
            items.append((when, (sweep, matching if self.terms and matching else listed)))
        items.sort(key=lambda item: item[0], reverse=True)
        out: list[tuple[object, int]] = []
        for _, item in items:
            if not isinstance(item, tuple):
                out.append((item, 0))
                continue
            sweep, listed = item
            out.append((sweep, 0))
            if sweep.key in self.unfolded or (self.terms and listed):
                order = {str(Path(m.dir)): i for i, m in enumerate(sweep.info.members)}
                for run in sorted(listed, key=lambda r: order.get(str(Path(r.run_dir)), len(order))):
                    out.append((run, 1))
        return out

    def sweep_cells(self, sweep: SweepRow, members: list, columns: tuple[str, ...], bar_width: int,
                    ascii_only: bool, progress_bar, format_duration) -> tuple:
        """The cells of a sweep's row (less the mark): its name and member count, its progress
        as text and as a bar of every member's steps, the best of its members' metrics."""
        theme = self.app.current_theme
        steps = sum(r.step or 0 for r in members)
        # a member that has not started does not know its steps yet: count it as long as the longest known
        known = [r.max_steps for r in members if r.max_steps]
        total = 0
        if known:
            unlisted = max(0, len(sweep.info.members) - len(members))
            total = sum(r.max_steps or max(known) for r in members) + unlisted * max(known)
        best = [r.best_metric for r in members if r.best_metric is not None]
        elapsed = [r.elapsed_s for r in members if getattr(r, "elapsed_s", None) is not None]
        state = "running" if sweep.active else ("stopped" if sweep.info.queue_state == "stopped" else "finished")
        count = len(sweep.info.members)
        cells = {
            "run": Text(f"{sweep.info.name} ({count} member{'' if count == 1 else 's'})", style="bold"),
            "state": Text(sweep.progress, style=state_style(state, theme)),
            "preset": Text(Path(str(sweep.info.preset)).stem if sweep.info.preset else "-"),
            "progress": progress_bar(steps, total, width=bar_width, ascii_only=ascii_only),
            "step": Text(f"{steps}/{total or '?'}"),
            "loss": Text("-"),
            "best": Text(f"{min(best):.4g}" if best else "-"),
            "elapsed": Text(format_duration(sum(elapsed)) if elapsed else "-"),
            "ETA": Text("-"),
            "launcher": Text(f"sweep ×{sweep.info.parallel}" if not ascii_only else f"sweep x{sweep.info.parallel}"),
            "GPU": Text("-"),
        }
        return tuple(cells[c] for c in columns if c)

    def announce_sweeps(self, sweeps: list[SweepRow]) -> None:
        """A notice and the bell when a sweep that was running has no member left to run; a
        notice when it was stopped (by `s` here, or `tuitrain stop` elsewhere)."""
        seen = getattr(self, "_sweeps_active", {})
        now = {s.key: s.active for s in sweeps}
        for sweep in sweeps:
            if not seen.get(sweep.key) or sweep.active:
                continue
            if sweep.info.queue_state == "stopped":
                self.app.notify(f"Sweep {sweep.info.name} stopped: {sweep.progress}", markup=False)
                continue
            bad = sweep.counts.get("failed", 0) + sweep.counts.get("diverged", 0)
            self.app.notify(f"Sweep {sweep.info.name} ended: {sweep.progress}",
                            severity="warning" if bad else "information", markup=False)
            self.app.bell()
        self._sweeps_active = now

    def fold_mark(self, sweep: SweepRow) -> Text:
        """▾ for an unfolded sweep, ▸ for a folded one."""
        open_ = sweep.key in self.unfolded
        ascii_only = getattr(self.app, "ascii_only", False)
        return Text(("v" if open_ else ">") if ascii_only else ("▾" if open_ else "▸"), style="bold")

    def highlighted_sweep(self) -> SweepRow | None:
        """The sweep whose row is under the cursor, or None."""
        key = self._highlighted_key()
        return next((s for s in self.sweeps if s.key == key), None)

    def sweep_members(self, sweep: SweepRow) -> list:
        """The listed runs of a sweep."""
        return [r for r in self.found if str(Path(r.run_dir).parent) == str(sweep.info.dir)]

    # Actions on a sweep's row --------------------------------------------

    def action_fold(self) -> None:
        """Fold or unfold the highlighted sweep (on a member: fold its sweep)."""
        sweep = self.highlighted_sweep()
        if sweep is None:
            run = self.highlighted_run()
            sweep = sweep_of(run, {str(s.info.dir): s for s in self.sweeps}) if run is not None else None
            if sweep is None:
                self.notify("Fold works on a sweep's row.", severity="warning")
                return
            self._focus_run = sweep.key
        self.unfolded.symmetric_difference_update({sweep.key})
        self._fill_table()

    def sweep_action(self, action: str) -> bool:
        """Do `action` on the highlighted sweep's row; False when the cursor is not on one."""
        sweep = self.highlighted_sweep()
        if sweep is None:
            return False
        name = sweep.info.name
        if action == "open_dashboard":
            self.app.post_message(OpenSweep(sweep.info.dir))
        elif action == "stop":
            if sweep.info.queue_state != "running" and not sweep.counts.get("running"):
                self.notify(f"The sweep {name} is not running; nothing to stop.", severity="warning", markup=False)
            else:
                self._confirm(f"Stop the sweep {name}?", "No more members start; running ones save a checkpoint "
                              "and exit. r resumes the sweep.", "Stop", lambda: self._sweep_control("stop", sweep))
        elif action == "resume":
            self._sweep_control("resume", sweep)
        elif action == "mark":
            keys = {str(r.run_dir) for r in self.sweep_members(sweep)}
            if keys <= self.marked:
                self.marked -= keys
            else:
                self.marked |= keys
            self._fill_table()
        elif action == "edit_preset":
            if sweep.info.preset and Path(str(sweep.info.preset)).is_file():
                self.app.post_message(EditPreset(sweep.info.preset))
            else:
                self.notify(f"The sweep's preset {sweep.info.preset} is gone.", severity="warning", markup=False)
        else:  # kill, delete: one run at a time
            self.notify(f"{action.capitalize()} acts on one run: unfold the sweep (f) and choose a member.",
                        severity="warning")
        return True

    @work(thread=True, group="runs-control")
    def _sweep_control(self, verb: str, sweep: SweepRow) -> None:
        """stop_sweep / resume_sweep, off the UI thread."""
        try:
            from tuitrain.sweeps import queue

            getattr(queue, f"{verb}_sweep")(sweep.info.dir)
            text = {"stop": "Stopping", "resume": "Resumed"}[verb] + f" the sweep {sweep.info.name}"
            self.post_message(self.ActionDone(text))
        except TuitrainError as exc:
            self.post_message(self.ActionDone(str(exc), "error"))
        self.app.call_from_thread(self.refresh_runs)


def sweeps_active(sweeps: list[SweepRow]) -> bool:
    """Whether any sweep's queue or member runs (the list is read often then)."""
    return any(s.active for s in sweeps)

