"""What `dlprov lineage` prints for an artifact row: the epoch of a checkpoint first, the digest
(already on the first line) not repeated, the file's own path last (the line is clipped)."""

from __future__ import annotations

from dlprov_otel.lineage_cli import render


def test_a_checkpoint_line_shows_its_epoch_before_long_paths():
    digest = "ab" * 32
    doc = {"digest": digest, "found": True, "runs": [{
        "execution": {"tag": "torch-20261201-040704-e6ea", "dataflow_tag": "torch", "status": "FINISHED",
                      "start_time": "2026-12-01T04:07:04", "end_time": "2026-12-01T04:07:06", "scientist": "me"},
        "artifacts": [{"set": "otrainedmodel", "role": "output", "column": "sha256",
                       "task": {"id": "trainmodel-1", "dt_tag": "trainmodel"},
                       "values": {"model_name": "Sequential",
                                  "model_dir": "/very/long/path/to/the/experiments/folder/of/this/user/ckpt-1.pt",
                                  "saved": "checkpoint", "format": "pt", "size_bytes": 3200.0, "sha256": digest,
                                  "epoch": 1.0}}],
        "recipe": [], "hyperparameters": [], "inputs": [], "epochs": None, "test_metrics": []}]}
    (line,) = [x for x in render(doc, "ckpt-1.pt").splitlines() if x.strip().startswith("made by")]
    head = "  made by    trainmodel (task trainmodel-1) as otrainedmodel: epoch=1 model_name=Sequential"
    assert line.startswith(head)
    assert digest not in line and line.count("sha256") == 0
