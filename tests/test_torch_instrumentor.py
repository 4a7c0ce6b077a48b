"""TorchInstrumentor used in a program: exact uninstrument, explicit API, errors, adaptations.

Each scenario of ``torch_scripts/scenarios.py`` runs in a child process (see its docstring)
and prints what it computed; the store it wrote is checked here.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

import dlprov_otel
from dlprov_otel import semconv
from dlprov_otel.integrations._shared import STRICT_ENV, strict
from dlprov_otel.integrations.torch import TorchInstrumentor
from dlprov_otel.store import open_store
from tests.torch_helpers import SCRIPTS, rows, set_rows

pytestmark = pytest.mark.torch


@pytest.fixture
def subprocess_env(subprocess_env: dict[str, str]) -> dict[str, str]:
    """Strict mode in the child: a provenance failure raises instead of being logged."""
    return {**subprocess_env, STRICT_ENV: "1"}


def missing(value) -> bool:
    """NULL (the embedded backend may hand it back as NaN)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


@pytest.fixture
def scenario(tmp_path: Path, subprocess_env):
    opened = []

    def run(name: str, strict: bool = True):
        store = tmp_path / "store"
        env = subprocess_env if strict else {k: v for k, v in subprocess_env.items() if k != STRICT_ENV}
        proc = subprocess.run(
            [sys.executable, str(SCRIPTS / "scenarios.py"), name, "--store", str(store)],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180,
        )
        assert proc.returncode == 0, proc.stderr[-4000:]
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        assert result["stats"]["dropped"] == 0 and result["stats"]["pending"] == 0
        opened.append(open_store(store))
        return result, opened[-1]

    yield run
    for st in opened:
        st.close()


def test_uninstrument_restores_torch_exactly(scenario):
    result, _ = scenario("restore")
    patched = set(result["patched"])
    for name in ("<class 'torch.Tensor'>.backward", "<class 'torch.utils.data.dataloader.DataLoader'>.__iter__",
                 "<class 'torch.optim.lr_scheduler.ReduceLROnPlateau'>.step"):
        assert name in patched
    assert sum(p.endswith(".save") or p.endswith(".random_split") for p in patched) == 4
    assert sum(p.endswith(".load") for p in patched) == 2
    assert "<class 'torch.nn.modules.module.Module'>.train" in patched
    assert {p.rsplit(".", 1)[1] for p in patched if p.startswith("<module 'torch.nn.functional'")} == {
        "nll_loss", "cross_entropy"}
    assert result["excepthook_patched"]
    for check in result["checks"]:
        assert check == {
            "changed": [], "classes_same": True, "hooks_same": True, "excepthook_same": True,
            "loss_call_inherited": True, "save_original": True,
        }


def test_loop_without_dataloader_and_explicit_api(scenario):
    own, st = scenario("explicit_api")
    epochs = set_rows(st, "otrainmodel", "epoch")
    assert [r["epoch"] for r in epochs] == [0, 1]
    for r, mine, f1 in zip(epochs, own["losses"], (0.5, 1.5), strict=True):
        assert math.isclose(r["loss"], mine, abs_tol=1e-6) and r["f1_score"] == f1 and r["steps"] == 4
    (test,) = set_rows(st, "otestmodel")
    assert math.isclose(test["loss"], own["test_loss"], abs_tol=1e-6)
    assert math.isclose(test["accuracy"], own["test_accuracy"], abs_tol=1e-9)
    assert test["auc"] == 0.93
    (hp,) = set_rows(st, "itrainmodel")
    assert hp["optimizer_name"] == "Adam" and hp["learning_rate"] == 0.01 and hp["num_layers"] == 3
    assert missing(hp["batch_size"])  # no DataLoader: unknown
    status = rows(st, "SELECT dt_tag, status FROM task ORDER BY dt_tag")
    assert status == [{"dt_tag": "testmodel", "status": "FINISHED"}, {"dt_tag": "trainmodel", "status": "FINISHED"}]


def test_manual_rate_change_and_a_second_training(scenario):
    own, st = scenario("manual_rate")
    (adapt,) = set_rows(st, "oadaptation")
    assert (adapt["old_learning_rate"], adapt["new_learning_rate"], adapt["trigger"], adapt["epoch"]) == (
        0.1, 0.02, "param_groups", 0,
    )
    trains = rows(st, "SELECT id, status FROM task WHERE dt_tag = 'trainmodel' ORDER BY id")
    assert trains == [{"id": "trainmodel-1", "status": "FINISHED"}, {"id": "trainmodel-2", "status": "FINISHED"}]
    hps = set_rows(st, "itrainmodel", "task_id")
    assert [(h["task_id"], h["optimizer_name"]) for h in hps] == [("trainmodel-1", "SGD"), ("trainmodel-2", "RMSprop")]
    epochs = rows(st, 'SELECT task_id, epoch, loss, learning_rate FROM "torch".otrainmodel ORDER BY task_id, epoch')
    assert [(e["task_id"], e["epoch"], e["learning_rate"]) for e in epochs] == [
        ("trainmodel-1", 0, 0.1), ("trainmodel-1", 1, 0.02), ("trainmodel-2", 0, 0.005),
    ]
    for e, mine in zip(epochs, own["first"] + own["second"], strict=True):
        assert math.isclose(e["loss"], mine, abs_tol=1e-6)
    # both trainings read the same loader, so the same lineage
    deps = rows(
        st, "SELECT task_id, depends_on_task_id FROM task_dependency WHERE dt_tag = 'trainmodel' ORDER BY task_id"
    )
    assert [d["depends_on_task_id"] for d in deps] == ["loaddata-1", "loaddata-1"]


def test_a_provenance_error_is_logged_once_and_training_goes_on(scenario):
    own, st = scenario("broken_dataset", strict=False)  # the failure is meant to be swallowed
    assert own["losses"] == own["reference"]  # the training is exactly what it is without us
    failures = [m for m in own["warnings"] if "recording provenance" in m]
    assert len(failures) == 1 and "no root here" in failures[0], own["warnings"]
    epochs = set_rows(st, "otrainmodel", "epoch")
    assert [r["epoch"] for r in epochs] == [0, 1, 2]
    for r, mine in zip(epochs, own["losses"], strict=True):
        assert math.isclose(r["loss"], mine, abs_tol=1e-6)
    assert set_rows(st, "oloaddata") == []  # what could not be described is left out


# --- in this process: the shared layer on real PyTorch ----------------------------------------------
class _Memory:
    """A TracerProvider of the test's own, exporting into memory."""

    def __init__(self) -> None:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def spans(self, kind: str | None = None) -> list:
        found = self.exporter.get_finished_spans()
        return [s for s in found if kind is None or s.attributes.get(semconv.KIND) == kind]

    def datasets(self, set_tag: str) -> list:
        return [s for s in self.spans(semconv.KIND_DATASET) if s.attributes.get(semconv.DATASET_TAG) == set_tag]


@pytest.fixture
def no_pipeline(monkeypatch: pytest.MonkeyPatch):
    """No DLProv pipeline, and none that could be configured (a span that does not go to the
    test's provider fails, and strict mode raises it)."""
    dlprov_otel.shutdown()
    monkeypatch.setenv("DLPROV_STORE", "nosuchscheme://nowhere")
    for name in ("DLPROV_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    yield


def test_torch_instrumentor_restores_every_attribute(no_pipeline: None) -> None:
    import torch
    import torch.utils.data as tud
    from torch.nn.modules import loss as nn_loss

    watched = [
        (torch.Tensor, "backward"),
        (nn_loss._Loss, "__call__"),
        (tud.DataLoader, "__init__"),
        (tud, "random_split"),
        (torch, "save"),
        (torch.optim.Optimizer, "__init__"),
        (torch.optim.lr_scheduler.LRScheduler, "step"),
        (torch.optim.lr_scheduler.ReduceLROnPlateau, "step"),
        (sys, "excepthook"),
    ]
    before = [vars(owner).get(name, "absent") for owner, name in watched]
    inst = TorchInstrumentor()
    inst.instrument(lightning=False)
    try:
        during = [vars(owner).get(name, "absent") for owner, name in watched]
        assert all(a is not b for a, b in zip(before, during, strict=True))
    finally:
        inst.uninstrument()
    after = [vars(owner).get(name, "absent") for owner, name in watched]
    assert all(a is b for a, b in zip(before, after, strict=True))
    assert "__call__" not in vars(nn_loss._Loss)  # inherited from Module: nothing left behind


def test_a_plain_torch_loop_is_recorded_on_the_given_tracer_provider(no_pipeline: None) -> None:
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    mem = _Memory()
    inst = TorchInstrumentor()
    torch.manual_seed(0)
    with strict():
        inst.instrument(tracer_provider=mem.provider, dataflow="unit_loop", execution="unit-loop-1", lightning=False)
        try:
            data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
            loader = DataLoader(data, batch_size=16, shuffle=True)
            model = torch.nn.Linear(4, 2)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            loss_fn = torch.nn.CrossEntropyLoss()
            means = []
            for _ in range(2):
                losses = []
                for x, y in loader:
                    optimizer.zero_grad()
                    loss = loss_fn(model(x), y)
                    loss.backward()
                    optimizer.step()
                    losses.append(loss.item())
                means.append(sum(losses) / len(losses))
        finally:
            inst.uninstrument()  # records the last epoch
    names = sorted(s.name for s in mem.spans(semconv.KIND_TASK))
    assert names == ["loaddata", "trainmodel"]
    assert {s.attributes[semconv.EXECUTION_TAG] for s in mem.spans(semconv.KIND_TASK)} == {"unit-loop-1"}
    epochs = mem.datasets("otrainmodel")
    assert [e.attributes[semconv.data_key("epoch")] for e in epochs] == [(0,), (1,)]
    for e, mean in zip(epochs, means, strict=True):
        assert e.attributes[semconv.data_key("loss")][0] == pytest.approx(mean, abs=1e-6)
    (hp,) = mem.datasets("itrainmodel")
    assert hp.attributes[semconv.data_key("optimizer_name")] == ("SGD",)
    assert hp.attributes[semconv.data_key("batch_size")] == (16,)
