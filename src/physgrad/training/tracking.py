"""Optional experiment trackers beside the always-written ``metrics.csv``: TensorBoard and
MLflow. Each is used only when asked for and fails with a one-line install hint when its
package is missing."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from physgrad._validation import short_text


class Tracker(Protocol):
    """Receives one row of metrics per training iteration."""

    def log(self, row: dict[str, float], step: int) -> None: ...

    def close(self, finished: bool = True) -> None: ...


PACKAGES = {"tensorboard": ("tensorboard", "tensorboard"), "mlflow": ("mlflow", "mlflow-skinny")}
"""Tracker name -> (module it imports, package to install)."""


def check_trackers(names: Sequence[str]) -> tuple[str, ...]:
    """Validate tracker names (``"tensorboard"``, ``"mlflow"``) and that their packages are
    installed (``ModuleNotFoundError`` with the pip command otherwise), before any file is
    written."""
    for name in names:
        if name not in PACKAGES:
            raise ValueError(f"unknown tracker {name!r}; known: {', '.join(PACKAGES)}")
        module, package = PACKAGES[name]
        if importlib.util.find_spec(module) is None:
            raise ModuleNotFoundError(f"--{name} needs the {module} package: pip install {package}")
        if name == "mlflow":
            check_mlflow_server()
    return tuple(names)


class TrackerError(ValueError):
    """A tracker (e.g. the MLflow server) failed; the run's own files are unaffected."""


def check_mlflow_server(timeout: float = 3.0) -> None:
    """Fail fast when ``$MLFLOW_TRACKING_URI`` names an HTTP(S) server that does not accept a
    connection within ``timeout`` seconds (MLflow itself retries for minutes before it gives
    up), and bound MLflow's own retries (``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` = 2,
    ``MLFLOW_HTTP_REQUEST_TIMEOUT`` = 10 s, unless already set). Local stores pass.

    Raises:
        TrackerError: the server is unreachable (the message names host and port).
    """
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme not in ("http", "https"):
        return
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            pass
    except (OSError, ValueError) as exc:
        where = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise TrackerError(
            f"--mlflow: the tracking server {where} (MLFLOW_TRACKING_URI) is unreachable "
            f"({reason}); start it, or unset MLFLOW_TRACKING_URI for a local file store"
        ) from None


def open_trackers(names: Sequence[str], run_dir: Path, meta: dict[str, Any]) -> list[Tracker]:
    """Start the named trackers (checked by :func:`check_trackers`) for the run in ``run_dir``
    (``meta`` becomes params/tags)."""
    return [TensorBoardTracker(run_dir) if name == "tensorboard" else MLflowTracker(run_dir, meta)
            for name in names]


class TensorBoardTracker:
    """Scalars in ``run_dir/tensorboard`` (``tensorboard --logdir runs``)."""

    def __init__(self, run_dir: Path):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))

    def log(self, row: dict[str, float], step: int) -> None:
        for key, value in row.items():
            if key != "iteration":
                self.writer.add_scalar(key, value, step)

    def close(self, finished: bool = True) -> None:
        self.writer.close()


class MLflowTracker:
    """One MLflow run per physgrad run, in an MLflow experiment named after the physgrad one.

    The store is ``$MLFLOW_TRACKING_URI`` when set, else a local file store ``mlruns`` beside
    the run folder (``mlflow ui --backend-store-uri <out>/mlruns``; MLflow 3 keeps file stores
    in maintenance mode, so this sets ``MLFLOW_ALLOW_FILE_STORE`` for it). A resumed run
    continues the same MLflow run (its id is kept in ``run_dir/mlflow_run_id``). Metrics are
    sent in batches of :attr:`batch` rows.
    """

    batch = 100

    def __init__(self, run_dir: Path, meta: dict[str, Any]):
        from mlflow.tracking import MlflowClient

        uri = os.environ.get("MLFLOW_TRACKING_URI")
        if not uri:
            uri = (run_dir.parent / "mlruns").resolve().as_uri()
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.client = MlflowClient(tracking_uri=uri)
        self.id_file = run_dir / "mlflow_run_id"
        with _one_line_errors():
            self.run_id = self._existing_run() or self._new_run(run_dir, meta)
        self.pending: list[Any] = []

    def _existing_run(self) -> str | None:
        if not self.id_file.is_file():
            return None
        run_id = self.id_file.read_text().strip()
        try:
            self.client.get_run(run_id)
        except Exception:  # deleted or another store: start a new one
            return None
        self.client.update_run(run_id, status="RUNNING")
        return run_id

    def _new_run(self, run_dir: Path, meta: dict[str, Any]) -> str:
        from physgrad.training.checkpoint import atomic_write

        name = str(meta.get("experiment", "physgrad"))
        found = self.client.get_experiment_by_name(name)
        experiment_id = found.experiment_id if found else self.client.create_experiment(name)
        run = self.client.create_run(
            experiment_id, run_name=str(meta.get("method", run_dir.name)),
            tags={"physgrad.run_dir": str(run_dir.resolve())},
        )
        for key, value in meta.items():
            self.client.log_param(run.info.run_id, key, str(value)[:500])
        atomic_write(self.id_file, lambda tmp: Path(tmp).write_text(run.info.run_id))
        return run.info.run_id

    def log(self, row: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        self.pending += [Metric(k, v, stamp, step) for k, v in row.items() if k != "iteration"]
        if len(self.pending) >= self.batch * max(len(row) - 1, 1):
            self._flush()

    def _flush(self) -> None:
        pending, self.pending = self.pending, []
        with _one_line_errors():
            for start in range(0, len(pending), 1000):  # MLflow's limit per batch
                self.client.log_batch(self.run_id, metrics=pending[start : start + 1000])

    def close(self, finished: bool = True) -> None:
        self._flush()
        with _one_line_errors():
            self.client.set_terminated(self.run_id, status="FINISHED" if finished else "KILLED")


@contextlib.contextmanager
def _one_line_errors() -> Iterator[None]:
    """MLflow's errors (server down, HTTP errors after its retries) as one-line TrackerError."""
    try:
        yield
    except TrackerError:
        raise
    except Exception as exc:
        raise TrackerError(
            f"--mlflow: MLflow failed ({type(exc).__name__}: {short_text(exc)}); the run's own "
            "files (metrics.csv, checkpoint.pt) are unaffected"
        ) from None
