"""Each tool's own idiomatic per-epoch call, behind one small interface (child side).

``start(params)`` opens the run (what a user's script does before training), ``log(i, row)``
records one epoch row through the tool's documented per-epoch call, ``stop()`` closes the run as
the tool's documentation says. Everything is written under ``store`` (one directory per tool,
kept between runs, as a user's). Imports are lazy: each tool runs in its own interpreter.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

TOOLS = ("none", "dlprov", "flowcept", "wandb", "mlflow", "yprov4ml")


class Tool:
    def __init__(self, store: str, tag: str) -> None:
        self.store, self.tag = Path(store), tag

    def start(self, params: dict[str, Any]) -> None:
        pass

    def log(self, i: int, row: dict[str, float]) -> None:
        pass

    def stop(self) -> None:
        pass


class DLProv(Tool):
    """The Pythonic API on the predefined ``mnist`` dataflow: one ``otrainmodel`` row per epoch."""

    def start(self, params: dict[str, Any]) -> None:
        from contextlib import ExitStack

        import dlprov_otel

        dlprov_otel.configure(store=str(self.store / "db"))
        self.stack = ExitStack()
        self.stack.enter_context(dlprov_otel.execution(self.tag, dataflow="mnist"))
        self.task = self.stack.enter_context(dlprov_otel.task("trainmodel", inputs={"itrainmodel": params}))

    def log(self, i: int, row: dict[str, float]) -> None:
        self.task.output(
            "otrainmodel",
            timestamp="",
            elapsed_time=row["elapsed"],
            loss=row["loss"],
            accuracy=row["accuracy"],
            val_loss=row["val_loss"],
            val_accuracy=row["val_accuracy"],
            epoch=i,
        )

    def stop(self) -> None:
        self.stack.close()  # the process's exit flushes, as in a user's script


class MLflow(Tool):
    """SQLite tracking store; ``log_metrics`` per epoch (what MLflow documents for plain loops)."""

    def start(self, params: dict[str, Any]) -> None:
        import mlflow

        self.mlflow = mlflow
        mlflow.set_tracking_uri(f"sqlite:///{self.store}/mlflow.db")
        run = mlflow.start_run(run_name=self.tag)
        (self.store / f"{self.tag}.run_id").write_text(run.info.run_id)
        mlflow.log_params(params)

    def log(self, i: int, row: dict[str, float]) -> None:
        self.mlflow.log_metrics(row, step=i)

    def stop(self) -> None:
        self.mlflow.end_run()


class WandB(Tool):
    """Offline mode (``WANDB_MODE=offline``); ``wandb.log`` per epoch, ``finish`` at the end."""

    def start(self, params: dict[str, Any]) -> None:
        import wandb

        self.run = wandb.init(project="peers", name=self.tag, id=self.tag, dir=str(self.store), config=params)

    def log(self, i: int, row: dict[str, float]) -> None:
        self.run.log(row, step=i)

    def stop(self) -> None:
        self.run.finish()


class Flowcept(Tool):
    """Flowcept's default set-up: no message queue, no database; the buffer goes to its JSONL file
    (``flowcept_buffer.jsonl`` in the working directory). One ``FlowceptTask`` per epoch."""

    def start(self, params: dict[str, Any]) -> None:
        from flowcept import Flowcept as FC
        from flowcept import FlowceptTask

        self.FlowceptTask = FlowceptTask
        self.fc = FC(workflow_id=self.tag, workflow_name=self.tag, workflow_args=params, start_persistence=False)
        self.fc.start()

    def log(self, i: int, row: dict[str, float]) -> None:
        self.FlowceptTask(activity_id="epoch", used={"epoch": i}, generated=row)  # ends at once

    def stop(self) -> None:
        self.fc.stop()


class YProv4ML(Tool):
    """yProv4ML: ``log_metric`` per metric (it has no per-row call), saved at ``end_run``."""

    def start(self, params: dict[str, Any]) -> None:
        import yprov4ml

        self.p = yprov4ml
        yprov4ml.start_run(
            prov_user_namespace="www.example.org",
            experiment_name=self.tag,
            provenance_save_dir=str(self.store / "prov"),
            save_after_n_logs=100,
        )
        for k, v in params.items():
            yprov4ml.log_param(k, v)

    def log(self, i: int, row: dict[str, float]) -> None:
        for k, v in row.items():
            self.p.log_metric(k, v, context="training", step=i)

    def stop(self) -> None:
        self.p.end_run(create_graph=False, create_svg=False)


def make_tool(name: str, store: str, tag: str) -> Tool:
    Path(store).mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("WANDB_MODE", "offline")
    classes: dict[str, type[Tool]] = {
        "none": Tool,
        "dlprov": DLProv,
        "flowcept": Flowcept,
        "wandb": WandB,
        "mlflow": MLflow,
        "yprov4ml": YProv4ML,
    }
    return classes[name](store, tag)
