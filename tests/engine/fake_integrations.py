"""Recording stand-ins for the optional packages behind report_to and push_to_hub.

Each `install_*` puts a fake module in `sys.modules` (through pytest's monkeypatch) and
returns the object whose `calls` list records what the engine asked of it.
"""

from __future__ import annotations

import threading
import types
from pathlib import Path


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def named(self, name: str) -> list[tuple]:
        return [c[1:] for c in self.calls if c[0] == name]


def install_tensorboard(monkeypatch) -> Recorder:
    rec = Recorder()

    class SummaryWriter:
        def __init__(self, log_dir=None, **kwargs):
            rec.calls.append(("init", log_dir))
            if "purge_step" in kwargs:
                rec.calls.append(("purge_step", log_dir, kwargs["purge_step"]))

        def add_scalar(self, tag, value, global_step=None):
            rec.calls.append(("add_scalar", tag, value, global_step))

        def add_text(self, tag, text, global_step=None):
            rec.calls.append(("add_text", tag, text, global_step))

        def flush(self):
            rec.calls.append(("flush",))

        def close(self):
            rec.calls.append(("close",))

    module = types.ModuleType("torch.utils.tensorboard")
    module.SummaryWriter = SummaryWriter
    monkeypatch.setitem(__import__("sys").modules, "torch.utils.tensorboard", module)
    # what the preset validator looks for before it lets report_to = ["tensorboard"] through
    monkeypatch.setitem(__import__("sys").modules, "tensorboard", types.ModuleType("tensorboard"))
    return rec


def install_wandb(monkeypatch, fail_log: bool = False) -> Recorder:
    rec = Recorder()
    module = types.ModuleType("wandb")

    def log(data, **kwargs):
        if fail_log:
            raise ConnectionError("wandb.ai unreachable")
        rec.calls.append(("log", dict(data), kwargs))

    module.init = lambda **kwargs: rec.calls.append(("init", kwargs))
    module.define_metric = lambda *a, **kw: rec.calls.append(("define_metric", a, kw))
    module.log = log
    module.finish = lambda **kwargs: rec.calls.append(("finish", kwargs))
    monkeypatch.setitem(__import__("sys").modules, "wandb", module)
    return rec


def install_mlflow(monkeypatch) -> Recorder:
    rec = Recorder()
    module = types.ModuleType("mlflow")
    active = []

    def start_run(run_name=None, **kwargs):
        rec.calls.append(("start_run", run_name))
        active.append(run_name)

    def end_run(status="FINISHED"):
        rec.calls.append(("end_run", status))
        active.clear()

    def log_metrics(metrics, step=None, synchronous=None):
        rec.calls.append(("log_metrics", dict(metrics), step))

    module.active_run = lambda: active[-1] if active else None
    module.start_run = start_run
    module.end_run = end_run
    module.log_params = lambda params: rec.calls.append(("log_params", dict(params)))
    module.log_metrics = log_metrics
    monkeypatch.setitem(__import__("sys").modules, "mlflow", module)
    return rec


class FakeHub(Recorder):
    """`huggingface_hub` whose `HfApi` records repos and uploads (with the files uploaded).

    `gate`, when set up, holds every upload until it is opened, as a slow network would.
    """

    def __init__(self, fail_uploads: int = 0) -> None:
        super().__init__()
        self.fail_uploads = fail_uploads
        self.gate: threading.Event | None = None

    def uploads(self) -> list[dict]:
        return [c[1] for c in self.calls if c[0] == "upload_folder"]


def install_hub(monkeypatch, fail_uploads: int = 0) -> FakeHub:
    hub = FakeHub(fail_uploads)

    class RepoUrl(str):
        repo_id: str

    class HfApi:
        def create_repo(self, repo_id, private=None, exist_ok=False, token=None, **kwargs):
            hub.calls.append(("create_repo", repo_id, private, exist_ok, token))
            url = RepoUrl(f"https://huggingface.co/{repo_id}")
            url.repo_id = repo_id if "/" in repo_id else f"me/{repo_id}"
            return url

        def upload_folder(self, repo_id, folder_path, path_in_repo=None, commit_message=None, token=None,
                          **kwargs):
            if hub.gate is not None:
                assert hub.gate.wait(30), "the test never opened the upload gate"
            root = Path(folder_path)
            files = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
            hub.calls.append(("upload_folder", {"repo_id": repo_id, "path_in_repo": path_in_repo,
                                                "message": commit_message, "token": token, "files": files}))
            if hub.fail_uploads:
                hub.fail_uploads -= 1
                raise OSError("503 Service Unavailable")

    module = types.ModuleType("huggingface_hub")
    module.HfApi = HfApi
    monkeypatch.setitem(__import__("sys").modules, "huggingface_hub", module)
    return hub
