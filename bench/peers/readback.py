"""Which epoch rows a tool stored, read back after the job's processes are dead.

The parent calls :func:`stored_rows`; it runs a NEW process of the tool's own interpreter:
DLProv through its CLI (``dlprov sql --store ...``: the next DLProv process that opens the
store, which may first replay what the dead one left), the peers through this file
(``python readback.py TOOL STORE TAG``) reading each tool's own files or store.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def settings_env(store: Path) -> dict[str, str]:
    """Environment that points a tool's configuration into ``store`` (Flowcept's settings file)."""
    return {"FLOWCEPT_SETTINGS_PATH": str(store / "flowcept_settings.yaml")}


def stored_rows(tool: str, store: Path, tag: str, python: str, env: dict[str, str]) -> tuple[set[int], str]:
    """Indices of the rows the tool stored for run ``tag``, and how they were read."""
    if tool == "dlprov":
        sql = f'SELECT epoch FROM "mnist"."otrainmodel" WHERE execution_tag = \'{tag}\''
        cmd = [str(Path(python).with_name("dlprov")), "sql", "--store", str(store / "db"), "--format", "json", sql]
        how = "dlprov sql --store (a new process)"
    else:
        cmd = [python, str(HERE / "readback.py"), tool, str(store), tag]
        how = f"{tool}'s own files/store, in a new process"
    proc = subprocess.run(cmd, env=env, cwd=store, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        return set(), f"{how}: failed: {proc.stderr.strip()[-300:]}"
    replayed = [line for line in proc.stderr.splitlines() if "journal" in line]  # DLProv's replay on open
    if replayed:
        how += f" [{replayed[-1].strip()}]"
    rows = json.loads(proc.stdout)
    return {int(r["epoch"]) if isinstance(r, dict) else int(r) for r in rows}, how


# --------------------------------------------------------------------------- in the peers' env


def _mlflow(store: Path, tag: str) -> list[int]:
    from mlflow.tracking import MlflowClient

    run_id_file = store / f"{tag}.run_id"
    if not run_id_file.exists():
        return []
    client = MlflowClient(tracking_uri=f"sqlite:///{store}/mlflow.db")
    return [int(m.value) for m in client.get_metric_history(run_id_file.read_text().strip(), "epoch")]


def _wandb_records(path: Path) -> list[bytes]:
    """The records of a ``.wandb`` transaction log (W&B's LevelDB-style log: a 7-byte file header,
    32 KiB blocks, each record chunk behind a 7-byte header: crc32, length, type). The wandb
    package has no public reader, so this follows the format; a torn tail ends the scan."""
    import struct

    block, header = 32768, 7
    data = path.read_bytes()
    if data[:4] != b":W&B":
        return []
    pos, records, parts = header, [], []
    while True:
        left = block - pos % block
        if left < header:
            pos += left  # the block's zero padding
        if pos + header > len(data):
            break
        _, length, kind = struct.unpack("<IHB", data[pos : pos + header])
        if kind == 0 or pos + header + length > len(data):
            break
        chunk = data[pos + header : pos + header + length]
        pos += header + length
        if kind == 1:  # FULL
            records.append(chunk)
        elif kind == 2:  # FIRST
            parts = [chunk]
        elif kind == 3:  # MIDDLE
            parts.append(chunk)
        elif kind == 4:  # LAST
            records.append(b"".join([*parts, chunk]))
            parts = []
    return records


def _wandb(store: Path, tag: str) -> list[int]:
    from wandb.proto import wandb_internal_pb2

    out: list[int] = []
    for f in sorted((store / "wandb").glob(f"offline-run-*-{tag}/run-{tag}.wandb")):
        for data in _wandb_records(f):
            rec = wandb_internal_pb2.Record()
            try:
                rec.ParseFromString(data)
            except Exception:
                continue
            if rec.WhichOneof("record_type") != "history":
                continue
            for item in rec.history.item:
                key = item.key or "/".join(item.nested_key)
                if key == "epoch":
                    out.append(int(float(item.value_json)))
    return out


def _flowcept(store: Path, tag: str) -> list[int]:
    out: list[int] = []
    for f in sorted(store.glob("flowcept*.jsonl")) + sorted((store / "flowcept").glob("*.jsonl")):
        for line in f.read_text(errors="replace").splitlines():
            try:
                msg = json.loads(line)
            except ValueError:
                continue  # a torn last line
            gen = msg.get("generated") or {}
            if msg.get("activity_id") == "epoch" and msg.get("workflow_id") == tag and "epoch" in gen:
                out.append(int(gen["epoch"]))
    return out


def _yprov4ml(store: Path, tag: str) -> list[int]:
    out: set[int] = set()
    root = store / "prov"
    for f in root.rglob("epoch_*"):  # prov/<experiment>_<n>/metrics_GR0/epoch_<context>_<source>_GR0.csv
        if f.is_file() and f.relative_to(root).parts[0].rsplit("_", 1)[0] == tag:
            out |= _epochs_in_file(f)
    return sorted(out)


def _epochs_in_file(f: Path) -> set[int]:
    """Values of an ``epoch`` metric file of yProv4ML (CSV/text lines or JSON, or netCDF/zarr)."""
    if f.suffix in (".nc", ".zarr"):
        import xarray as xr

        ds = xr.open_dataset(f)
        return {int(v) for v in ds["values"].values.tolist()} if "values" in ds else set()
    text = f.read_text(errors="replace")
    try:
        doc = json.loads(text)
        values = doc.get("values", []) if isinstance(doc, dict) else doc
        return {int(float(v)) for v in values}
    except ValueError:
        pass
    vals: set[int] = set()
    for line in text.splitlines()[1:]:
        try:
            vals.add(int(float(line.split(",")[0])))
        except ValueError:
            continue
    return vals


def main() -> int:
    tool, store, tag = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    readers = {"mlflow": _mlflow, "wandb": _wandb, "flowcept": _flowcept, "yprov4ml": _yprov4ml}
    print(json.dumps(readers[tool](store, tag)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
