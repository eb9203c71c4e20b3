"""`push_to_hub`: upload the model and checkpoints to the Hugging Face Hub in the background.

Mirrors transformers' `Trainer._push_from_checkpoint` / `push_to_hub`: the repository
(`hub_model_id`, default the run's name) is created on the first push; at each save the
model (the checkpoint's model files: `model.safetensors`, and for a transformers model its
`config.json`, `generation_config.json` and tokenizer, so the repository loads with
`from_pretrained`; and the run's preset) is pushed unless `hub_strategy` is "end", with the
checkpoint folder as `last-checkpoint/` ("checkpoint") or under its own name
("all_checkpoints"); a save while a push is still uploading is skipped unless
`hub_always_push`; at the end of a finished run the final model (`RUN_DIR/final/`, with its
model card `README.md`) is pushed and the trainer waits for every push. Uploads run on one worker thread from a snapshot of hard links under
`RUN_DIR/.hub-push/`, so a checkpoint rotated away mid-upload is still uploaded whole.
A failed push becomes a message for a `warning` event, never an exception in training.
"""

from __future__ import annotations

import importlib
import os
import shutil
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tuitrain.config.integrations import HUB_PACKAGE
from tuitrain.errors import TuitrainError

from .checkpoint import TRAINING_STATE_FILES

STAGE_DIR = ".hub-push"


def require_hub() -> Any:
    """The `huggingface_hub` module, or one line saying how to install it."""
    try:
        return importlib.import_module(HUB_PACKAGE)
    except ImportError:
        raise TuitrainError(f"push_to_hub: needs the package {HUB_PACKAGE}, which is not installed "
                            f"(pip install {HUB_PACKAGE})") from None


def _masked_preset(path: Path) -> str | None:
    """The run's preset as uploaded: rewritten from its values with every secret masked (the
    Hub token, [launch.env] values, any key naming a secret); None when it cannot be read."""
    from tuitrain.config import load_preset
    from tuitrain.config.integrations import masked_preset_toml

    if not path.is_file():
        return None
    try:
        preset = load_preset(path)
    except TuitrainError:
        return None
    return masked_preset_toml(preset, f"# The preset of run {path.parent.name}, secrets masked, by tuitrain.\n")


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


class HubPusher:
    """Pushes of one run (rank 0). `on_save`, `finish`, `messages`; `close` waits for uploads."""

    def __init__(self, args: Any, run_dir: Path, run_name: str) -> None:
        hub = require_hub()
        self.api = hub.HfApi()
        self.run_dir = Path(run_dir)
        self.repo_id = args.hub_model_id or run_name
        self.strategy = args.hub_strategy or "every_save"
        self.always_push = bool(args.hub_always_push)
        self.token = args.hub_token or None
        self.private = args.hub_private_repo
        self.by_epoch = (args.save_strategy or "steps") == "epoch"
        self._pool: ThreadPoolExecutor | None = None
        self._jobs: list[tuple[str, Future]] = []
        self._lock = threading.Lock()
        self._repo_ready = False
        self._seq = 0
        self.pushed: list[str] = []  # commit messages of finished pushes, for the run's log
        shutil.rmtree(self.run_dir / STAGE_DIR, ignore_errors=True)  # leftovers of a killed trainer

    # -- the trainer's calls ------------------------------------------------------------------

    def on_save(self, checkpoint: Path, step: int, epoch: float) -> None:
        """Queue the push of a saved checkpoint, as `hub_strategy` and `hub_always_push` say."""
        if self.strategy == "end" or (self.busy() and not self.always_push):
            return
        message = f"Training in progress, epoch {int(epoch)}" if self.by_epoch else f"Training in progress, step {step}"
        stage = self._new_stage(step)
        self._stage_model(stage / "model", [p for p in checkpoint.iterdir()
                                            if p.is_file() and p.name not in TRAINING_STATE_FILES])
        folder = None
        if self.strategy in ("checkpoint", "all_checkpoints"):
            shutil.copytree(checkpoint, stage / "checkpoint", copy_function=_link_or_copy)
            folder = "last-checkpoint" if self.strategy == "checkpoint" else checkpoint.name
        self._submit(message, stage, folder)

    def finish(self, state: str, final: Path | None) -> None:
        """At the end: push the final model folder when the run finished, then wait for every push."""
        if state == "finished" and final is not None:
            stage = self._new_stage("final")
            self._stage_model(stage / "model", [p for p in Path(final).iterdir() if p.is_file()])
            self._submit("End of training", stage, None)
        self.wait()

    def busy(self) -> bool:
        """Whether a push is queued or uploading."""
        with self._lock:
            return any(not job.done() for _, job in self._jobs)

    def wait(self) -> None:
        """Block until every queued push has finished (or failed)."""
        for _, job in list(self._jobs):
            try:
                job.result()
            except Exception:  # noqa: BLE001 - reported by messages()
                pass

    def messages(self) -> list[str]:
        """One line per finished push that failed since the last call; finished ones are forgotten."""
        out = []
        with self._lock:
            done = [(what, job) for what, job in self._jobs if job.done()]
            self._jobs = [(what, job) for what, job in self._jobs if not job.done()]
        for what, job in done:
            exc = job.exception()
            if exc is None:
                self.pushed.append(what)
            else:
                reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                out.append(f"push to the Hub ({what}) failed: {type(exc).__name__}: {reason}")
        return out

    def close(self) -> None:
        """Wait for the uploads and stop the worker thread; safe to call twice."""
        self.wait()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        shutil.rmtree(self.run_dir / STAGE_DIR, ignore_errors=True)

    # -- staging and uploading ------------------------------------------------------------------

    def _new_stage(self, label: Any) -> Path:
        self._seq += 1
        stage = self.run_dir / STAGE_DIR / f"{self._seq}-{label}"
        shutil.rmtree(stage, ignore_errors=True)
        stage.mkdir(parents=True)
        return stage

    def _stage_model(self, folder: Path, files: list[Path]) -> None:
        """The repository's root files: the model's and the run's preset, its secrets masked."""
        folder.mkdir(exist_ok=True)
        for file in files:
            _link_or_copy(str(file), str(folder / file.name))
        text = _masked_preset(self.run_dir / "preset.toml")
        if text is not None:
            (folder / "preset.toml").write_text(text, encoding="utf-8")

    def _submit(self, message: str, stage: Path, checkpoint_folder: str | None) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tuitrain-hub")
        job = self._pool.submit(self._push, message, stage, checkpoint_folder)
        with self._lock:
            self._jobs.append((message, job))

    def _ensure_repo(self) -> None:
        if self._repo_ready:
            return
        url = self.api.create_repo(self.repo_id, private=self.private, exist_ok=True, token=self.token)
        self.repo_id = getattr(url, "repo_id", None) or self.repo_id  # a bare name gains the namespace
        self._repo_ready = True

    def _push(self, message: str, stage: Path, checkpoint_folder: str | None) -> None:
        """Runs on the worker thread: create the repository once, upload, drop the snapshot."""
        try:
            self._ensure_repo()
            self.api.upload_folder(repo_id=self.repo_id, folder_path=str(stage / "model"),
                                   commit_message=message, token=self.token)
            if checkpoint_folder is not None:
                self.api.upload_folder(repo_id=self.repo_id, folder_path=str(stage / "checkpoint"),
                                       path_in_repo=checkpoint_folder, commit_message=message + ", checkpoint",
                                       token=self.token)
        finally:
            shutil.rmtree(stage, ignore_errors=True)

