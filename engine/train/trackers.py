"""The experiment trackers of `train.report_to`: TensorBoard, MLflow and Weights & Biases, each a thin `Mirror`.

Each tracker is private by default: TensorBoard writes event files into the run folder; MLflow writes to a
SQLite file under HOME (`mlflow/mlflow.db`) unless `MLFLOW_TRACKING_URI` names another store; W&B runs offline
into the run folder unless `WANDB_MODE` says otherwise; and neither sends usage telemetry or error reports
(`PRIVATE_ENV`, set before their packages are imported). Their chatter goes to stdout/stderr, which is the
run's engine.log. A tracker that fails never stops the run (`Reporter` drops it with a warning).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from engine.paths import slmtui_home

#: Set (unless the user set them) before a tracker's package is imported: offline or local, no telemetry.
PRIVATE_ENV = {
    "WANDB_MODE": "offline",
    "WANDB_ERROR_REPORTING": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}
#: Where TensorBoard's event files go, inside the run folder.
TENSORBOARD_DIR = "tensorboard"
#: The MLflow store used when `MLFLOW_TRACKING_URI` is not set, under HOME (one store for every run).
MLFLOW_DB = Path("mlflow") / "mlflow.db"
#: The MLflow experiment runs go to when `MLFLOW_EXPERIMENT_NAME` is not set.
MLFLOW_EXPERIMENT = "slmtui"
#: Event files are flushed at most this often (seconds), so TensorBoard shows a run while it trains.
TENSORBOARD_FLUSH_S = 1.0
#: MLflow takes at most this many params in one call, and params longer than this are cut.
_MLFLOW_BATCH, _MLFLOW_PARAM_CHARS = 100, 500
#: A run's end, as MLflow says it (any other end is FAILED, and a failed W&B run exits 1).
_MLFLOW_STATUS = {"completed": "FINISHED", "stopped": "KILLED"}


def private_tracker_env() -> None:
    """Put `PRIVATE_ENV` into this process's environment, leaving whatever the user set."""
    for key, value in PRIVATE_ENV.items():
        os.environ.setdefault(key, value)


def flat_params(config: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """`{"train": {"lr": 1e-4}}` -> `("train.lr", "0.0001")`, values cut for the trackers' limits."""
    for key, value in config.items():
        if isinstance(value, Mapping):
            yield from flat_params(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", str(value)[:_MLFLOW_PARAM_CHARS]


class Mirror:
    """A thin adapter that copies metrics to one experiment tracker."""

    name = "mirror"

    def __init__(self, run_dir: Path, run_id: str, config: dict[str, Any]) -> None:
        self.run_dir, self.run_id = run_dir, run_id

    def log(self, values: dict[str, float], step: int) -> None:
        raise NotImplementedError

    def close(self, status: str) -> None:
        """End the tracker's run; `status` is how the slmtui run ended (`completed`, `stopped`, ...)."""
        raise NotImplementedError


class TensorBoardMirror(Mirror):
    """Scalars into `RUN_DIR/tensorboard/events.out.tfevents.*`, flushed within a second of each step."""

    name = "tensorboard"

    def __init__(self, run_dir: Path, run_id: str, config: dict[str, Any]) -> None:
        from torch.utils.tensorboard import SummaryWriter  # needs the `tensorboard` package

        super().__init__(run_dir, run_id, config)
        self.writer = SummaryWriter(log_dir=str(run_dir / TENSORBOARD_DIR))
        self.writer.add_text("spec", "\n".join(f"    {k} = {v}" for k, v in flat_params(config)), 0)
        self._flushed = 0.0

    def log(self, values: dict[str, float], step: int) -> None:
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)
        now = time.monotonic()
        if now - self._flushed >= TENSORBOARD_FLUSH_S:  # the writer's own flush waits two minutes
            self.writer.flush()
            self._flushed = now

    def close(self, status: str) -> None:
        self.writer.close()


class MlflowMirror(Mirror):
    """One MLflow run per slmtui run, named by its id, with the spec as params; through a client, so no global
    "active run" state is touched."""

    name = "mlflow"

    def __init__(self, run_dir: Path, run_id: str, config: dict[str, Any]) -> None:
        private_tracker_env()
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        super().__init__(run_dir, run_id, config)
        self.client = MlflowClient(tracking_uri=os.environ.get("MLFLOW_TRACKING_URI") or local_mlflow_uri())
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or MLFLOW_EXPERIMENT
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            experiment_id = experiment.experiment_id
        else:
            artifacts = slmtui_home() / MLFLOW_DB.parent / "artifacts"
            experiment_id = self.client.create_experiment(name, artifact_location=artifacts.as_uri())
        run = self.client.create_run(experiment_id, run_name=run_id, tags={"slmtui.run_dir": str(run_dir)})
        self.mlflow_run = run.info.run_id
        params = [Param(key, value) for key, value in flat_params(config)]
        for start in range(0, len(params), _MLFLOW_BATCH):
            self.client.log_batch(self.mlflow_run, params=params[start : start + _MLFLOW_BATCH])

    def log(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.mlflow_run, metrics=[Metric(k, float(v), now, step) for k, v in values.items()])

    def close(self, status: str) -> None:
        self.client.set_terminated(self.mlflow_run, _MLFLOW_STATUS.get(status, "FAILED"))


def local_mlflow_uri() -> str:
    """The SQLite store under HOME that MLflow writes to when the user named none."""
    path = slmtui_home() / MLFLOW_DB
    path.parent.mkdir(mode=0o700, exist_ok=True)
    return f"sqlite:///{path}"


class WandbMirror(Mirror):
    """A W&B run in `RUN_DIR/wandb/`, offline unless `WANDB_MODE` says otherwise (`wandb sync` uploads it)."""

    name = "wandb"

    def __init__(self, run_dir: Path, run_id: str, config: dict[str, Any]) -> None:
        private_tracker_env()
        import wandb

        super().__init__(run_dir, run_id, config)
        # console "off": wandb would otherwise wrap this process's stdout, which is the run's engine.log
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT") or "slmtui", name=run_id, config=config,
                              dir=str(run_dir), settings=wandb.Settings(console="off"))

    def log(self, values: dict[str, float], step: int) -> None:
        self.run.log(values, step=step)

    def close(self, status: str) -> None:
        self.run.finish(exit_code=0 if status in ("completed", "stopped") else 1)


MIRRORS: dict[str, type[Mirror]] = {"tensorboard": TensorBoardMirror, "wandb": WandbMirror, "mlflow": MlflowMirror}
