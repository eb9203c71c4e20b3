"""What an epoch boundary costs: one train loader for the whole run, persistent workers that
start once, and resume still exact with them."""

from __future__ import annotations

import textwrap

from trainer_fixtures import FakePreset, REGRESSION, regression_preset, run

# The regression task, whose datasets note in PIDS_DIR the pid of every process that loads an item.
PLUGIN = textwrap.dedent(
    """
    import os
    from pathlib import Path
    from tuitrain.engine.tasks import regression

    class Noting:
        def __init__(self, dataset, where):
            self.dataset, self.where = dataset, Path(where)
        def __len__(self):
            return len(self.dataset)
        def __getitem__(self, i):
            (self.where / str(os.getpid())).touch()
            return self.dataset[i]

    def build(options, args):
        opts = dict(options)
        where = opts.pop("pids_dir")
        bundle = regression.build(opts, args)
        bundle.train_dataset = Noting(bundle.train_dataset, where)
        return bundle
    """
)


def test_one_train_loader_for_the_run_and_persistent_workers_start_once(tmp_path, monkeypatch):
    # 38 training examples in batches of 8: 5 steps an epoch, 3 epochs.
    from tuitrain.engine import data

    (tmp_path / "noting.py").write_text(PLUGIN)
    pids = tmp_path / "pids"
    pids.mkdir()
    built = []
    init = data.ResumableLoader.__init__

    def counted(self, *args, **kwargs):
        built.append(1)
        init(self, *args, **kwargs)

    monkeypatch.setattr(data.ResumableLoader, "__init__", counted)
    preset = FakePreset(f"{tmp_path / 'noting.py'}:build", {**REGRESSION, "pids_dir": str(pids)},
                        {"per_device_train_batch_size": 8, "max_steps": 15, "logging_steps": 5, "save_strategy": "no",
                         "dataloader_num_workers": 2, "dataloader_persistent_workers": True, "seed": 3})
    assert run(preset, tmp_path / "run") == 0
    assert len(built) == 1
    assert len(list(pids.iterdir())) == 2  # two workers, started once for three epochs


def test_resume_with_persistent_workers_across_epochs_is_exact(tmp_path):
    from test_resume import _resume_matches

    _resume_matches(tmp_path, regression_preset, dataloader_num_workers=2, dataloader_persistent_workers=True,
                    max_steps=12)
