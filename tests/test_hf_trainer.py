"""A HuggingFace ``Trainer`` run (tiny BERT from a config, synthetic data, no download) under
``opentelemetry-instrument``: recorded with the vocabulary of the other integrations, and the
rows equal the Trainer's own log history."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import pytest

from dlprov_otel.integrations._shared import STRICT_ENV
from dlprov_otel.store import open_store
from tests.torch_helpers import report, rows, run_instrumented, set_rows

pytestmark = pytest.mark.torch

SCRIPT = Path(__file__).parent / "hf_scripts" / "hf_trainer.py"


def close(a: Any, b: float) -> bool:
    return a is not None and not (isinstance(a, float) and math.isnan(a)) and math.isclose(a, b, rel_tol=1e-6)


def test_trainer_run_is_recorded_like_the_other_frameworks(tmp_path: Path, subprocess_env: dict) -> None:
    out = tmp_path / "out"
    proc = run_instrumented(
        str(SCRIPT), ["--out", str(out), "--epochs", "2"], {**subprocess_env, STRICT_ENV: "1"}, tmp_path / "store",
        tmp_path,
    )  # fmt: skip
    own = report(proc)
    assert "no training was recognised" not in proc.stderr, proc.stderr[-2000:]
    history = own["log_history"]
    logged = [h for h in history if "loss" in h]
    evals = [h for h in history if "eval_loss" in h][:2]  # during training; the last one is the test

    st = open_store(tmp_path / "store")
    try:
        (ex,) = rows(st, "SELECT * FROM dataflow_execution")
        assert (ex["dataflow_tag"], ex["status"]) == ("transformers", "FINISHED")  # nothing in "torch"
        (hp,) = set_rows(st, "itrainmodel", dataflow="transformers")
        assert (hp["optimizer_name"], hp["learning_rate"], hp["num_epochs"], hp["num_layers"], hp["batch_size"]) == (
            "AdamW", 5e-3, 2, 2, 16,
        )  # fmt: skip
        assert hp["lr_scheduler_type"] == "linear" and hp["model_name"] == "BertForSequenceClassification"
        data = set_rows(st, "otrainset", dataflow="transformers")
        assert [(r["data_name"], r["dataset_class"], r["samples"], r["subset"]) for r in data] == [
            ("train_dataset", "Synthetic", 96, "train"),
            ("eval_dataset", "Synthetic", 32, "validation"),
        ]

        epochs = set_rows(st, "otrainmodel", "epoch", dataflow="transformers")
        assert [r["epoch"] for r in epochs] == [0, 1]
        for r, mine, val in zip(epochs, logged, evals, strict=True):
            assert close(r["loss"], mine["loss"]), (r["loss"], mine["loss"])
            assert close(r["val_loss"], val["eval_loss"])
            assert r["steps"] == 6
        assert epochs[0]["learning_rate"] == 5e-3

        # a linear schedule: one adaptation per epoch (not per step), after that epoch's row
        adaptations = set_rows(st, "oadaptation", "epoch", dataflow="transformers")
        assert [(a["epoch"], a["trigger"]) for a in adaptations] == [(e, "lr_scheduler:linear") for e in (0, 1)]
        assert close(adaptations[0]["new_learning_rate"], epochs[1]["learning_rate"])
        assert all(a["emitted_at"] >= epochs[int(a["epoch"])]["emitted_at"] for a in adaptations)

        # checkpoints carry the epoch of their weights; save_model after training the last one
        saved = {Path(r["model_dir"]).name: r for r in set_rows(st, "otrainedmodel", dataflow="transformers")}
        assert {k: v["epoch"] for k, v in saved.items()} == {"checkpoint-6": 0, "checkpoint-12": 1, "final": 1}
        weights = (Path(own["saved"]) / "model.safetensors").read_bytes()
        assert saved["final"]["weights_sha256"] == hashlib.sha256(weights).hexdigest()

        (test,) = set_rows(st, "otestmodel", dataflow="transformers")
        assert close(test["loss"], own["final"]["eval_loss"])
        tasks = {t["dt_tag"]: t for t in rows(st, "SELECT * FROM task")}
        deps = rows(st, "SELECT * FROM task_dependency WHERE task_id = ?", [tasks["testmodel"]["id"]])
        assert [d["depends_on_dt_tag"] for d in deps] == ["trainmodel"]
    finally:
        st.close()


def test_hand_added_callback_without_the_instrumentor(dlprov: Any, tmp_path: Path) -> None:
    import uuid

    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments

    import dlprov_otel
    from dlprov_otel.integrations._shared import strict
    from dlprov_otel.integrations.transformers import DLProvTrainerCallback

    class Tokens(torch.utils.data.Dataset):
        def __init__(self) -> None:
            self.ids = torch.randint(0, 50, (24, 8), generator=torch.Generator().manual_seed(0))

        def __len__(self) -> int:
            return len(self.ids)

        def __getitem__(self, i: int) -> dict:
            return {"input_ids": self.ids[i], "labels": self.ids[i]}

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=8, n_embd=16, n_layer=1, n_head=2))
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"), num_train_epochs=2, per_device_train_batch_size=8, logging_strategy="epoch",
        save_strategy="no", report_to="none", use_cpu=True, learning_rate=1e-2,
    )  # fmt: skip
    tag = f"hf-{uuid.uuid4().hex[:6]}"
    with dlprov_otel.execution(tag, dataflow="hfcb"), strict():
        trainer = Trainer(model=model, args=args, train_dataset=Tokens(), callbacks=[DLProvTrainerCallback()])
        trainer.train()
    assert dlprov_otel.flush(30)
    st = dlprov_otel.get_store()
    epochs = st.query('SELECT * FROM "hfcb"."otrainmodel" ORDER BY epoch').as_dicts()
    logged = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert [r["epoch"] for r in epochs] == [0, 1]
    assert [r["loss"] for r in epochs] == logged  # the Trainer's own epoch losses (no step capture alone)
    (hp,) = st.query('SELECT * FROM "hfcb"."itrainmodel"').as_dicts()
    assert (hp["num_layers"], hp["model_type"], hp["batch_size"]) == (1, "gpt2", 8)
    (task,) = st.query("SELECT * FROM task WHERE dt_tag = 'trainmodel'").as_dicts()
    assert task["status"] == "FINISHED"
