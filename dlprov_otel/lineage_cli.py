"""``dlprov lineage PATH``: where did this file come from?

The file's sha256 is looked up among the stored artifacts (:mod:`dlprov_otel.store.artifacts`):
saved models and checkpoints, data digests, entry scripts. For every run that made or used it
the command prints the run, its recipe, hyperparameters, input data digests, epochs and test
metrics; ``--format json,provn,png`` also writes the PROV sub-graph of that lineage. Through a
collector (``--endpoint``) it asks ``/ui/api/lineage``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .digests import file_digest
from .errors import DLProvError

_TEXT_WIDTH = 100


def file_sha256(path: str) -> str:
    """sha256 of a file, or of a folder's files (a SavedModel folder): the digest the
    integrations record when they save (:mod:`dlprov_otel.digests`)."""
    try:
        return file_digest(path)[1]
    except OSError as exc:
        raise DLProvError(f"cannot read {path}: {exc.strerror or exc}") from None


def _digest_of(args: argparse.Namespace) -> tuple[str, str]:
    from .store.artifacts import normalize_digest

    if args.digest:
        return normalize_digest(args.digest), "the digest"
    if not args.path:
        raise DLProvError("give a file (dlprov lineage PATH) or --digest HEX")
    return file_sha256(args.path), args.path


def _local(args: argparse.Namespace, digest: str) -> dict[str, Any]:
    from .store import artifacts, open_store, require_existing

    store = open_store(require_existing(args.store))
    try:
        lin = artifacts.lineage(store, digest)
        if lin.found and args.format:
            from .prov.lineage import write_lineage

            for path in write_lineage(store, lin, args.format, args.out):
                print(f"wrote {path}", file=sys.stderr)
        return artifacts.as_json(lin)
    finally:
        store.close()


def _remote(args: argparse.Namespace, digest: str) -> dict[str, Any]:
    from urllib.parse import quote

    from .client import _json_call, _request, base_url

    base = base_url(args.endpoint) + "/ui/api/lineage"
    doc: dict[str, Any]
    status, _, body = _request("GET", f"{base}?digest={quote(digest)}", token=args.token, timeout=120)
    if status == 404:
        return {"digest": digest, "found": False, "runs": []}
    if status != 200:
        _json_call("GET", f"{base}?digest={quote(digest)}", None, args.token, 120)  # raises with the error
    doc = json.loads(body)
    if doc.get("found") and args.format:
        from .prov import FORMATS, parse_formats

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for fmt in parse_formats(args.format):
            status, _, data = _request("GET", f"{base}/prov.{fmt}?digest={quote(digest)}", token=args.token,
                                       timeout=300)
            if status != 200:
                raise DLProvError(f"{base}/prov.{fmt}: HTTP {status}")
            path = out / f"lineage-{digest[:12]}.{FORMATS[fmt]}"
            path.write_bytes(data)
            print(f"wrote {path}", file=sys.stderr)
    return doc


def _cmd_lineage(args: argparse.Namespace) -> int:
    digest, what = _digest_of(args)
    doc = _remote(args, digest) if args.endpoint else _local(args, digest)
    if not doc.get("found"):
        where = args.endpoint or args.store or "the store"
        raise DLProvError(f"no run in {where} made or used {what} (sha256 {digest})")
    if args.json:
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render(doc, what))
    return 0


# --- text --------------------------------------------------------------------------------------
def _pairs(values: dict[str, Any], skip: tuple[str, ...] = ()) -> str:
    out = []
    for k, v in values.items():
        if v is None or k in skip:
            continue
        if isinstance(v, float):
            v = f"{v:.6g}"
        out.append(f"{k}={v}")
    return " ".join(out)


def _artifact_values(artifact: dict[str, Any]) -> dict[str, Any]:
    """A row that holds the digest: its epoch first (a checkpoint's), the digest itself left out
    (the first line shows it), the file's path last (the line is clipped)."""
    values = {k: v for k, v in artifact["values"].items() if k != artifact.get("column")}
    first = {k: values.pop(k) for k in ("epoch",) if k in values}
    last = {k: values.pop(k) for k in ("model_dir", "path", "dataset_dir") if k in values}
    return {**first, **values, **last}


def _clip(text: str, width: int = _TEXT_WIDTH) -> str:
    text = " ".join(text.split("\n"))
    return text if len(text) <= width else text[: width - 1] + "…"


def _when(value: Any) -> str:
    return str(value).replace("T", " ")[:23] if value else "?"


def _recipe_lines(entries: list[dict[str, Any]]) -> list[str]:
    by = {e["name"]: e for e in entries if e.get("rank") in (None, 0)} or {e["name"]: e for e in entries}
    val = lambda n: (by.get(n) or {}).get("value")  # noqa: E731
    lines = []
    if val("script.path"):
        lines.append(f"script    {val('script.path')} (sha256 {(by['script.path'].get('digest') or '?')[:16]}…)")
    if val("command"):
        lines.append(_clip(f"command   {val('command')}"))
    if val("git.commit"):
        dirty = val("git.dirty") == "true"
        diff = by.get("git.diff")
        state = f", dirty (diff sha256 {diff['digest'][:16]}…)" if dirty and diff and diff.get("digest") else ""
        state = state or (", dirty" if dirty else ", clean")
        lines.append(f"git       {val('git.commit')[:12]} on {val('git.branch') or '(detached)'}{state}")
    elif val("git.error"):
        lines.append(f"git       ({val('git.error')})")
    if val("python.version"):
        lines.append(f"python    {val('python.version')} ({val('python.executable') or '?'})")
    seeds = [f"{n[5:]}={e['value']}" for n, e in by.items() if n.startswith("seed.")]
    if seeds:
        lines.append("seeds     " + " ".join(seeds))
    packages = [f"{n[8:]} {e['value']}" for n, e in by.items() if n.startswith("package.")]
    if packages:
        lines.append(_clip(f"packages  {len(packages)}: " + ", ".join(packages)))
    env = [f"{n[4:]}={e['value']}" for n, e in by.items() if n.startswith("env.")]
    if env:
        lines.append(_clip("env       " + " ".join(env)))
    return lines


def render(doc: dict[str, Any], what: str) -> str:
    """The lineage document as text, one block per run."""
    runs = doc["runs"]
    out = [f"{what}  sha256 {doc['digest']}", f"{len(runs)} run(s) made or used it:", ""]
    for run in runs:
        e = run["execution"]
        span = f"{_when(e.get('start_time'))} → {_when(e.get('end_time')) if e.get('end_time') else 'running'}"
        out.append(f"run {e['tag']}  ({e.get('dataflow_tag')}, {e.get('status')}, {span}, {e.get('scientist')})")
        for a in run["artifacts"]:
            task = a.get("task") or {}
            how = {"output": "made by", "input": "used by", "recipe": "entry"}.get(a["role"], a["role"])
            if a["role"] == "recipe":
                out.append(f"  {how:<11}the run's {a['column'].replace('.path', '')}")
            else:
                by = f"{task.get('dt_tag')} (task {task.get('id')})" if task else "no task"
                out.append(_clip(f"  {how:<11}{by} as {a['set']}: {_pairs(_artifact_values(a))}"))
        rec = _recipe_lines(run["recipe"])
        out.extend(("  recipe     " if i == 0 else "             ") + line for i, line in enumerate(rec))
        if not rec:
            out.append("  recipe     (none recorded)")
        for i, p in enumerate(run["hyperparameters"]):
            out.append(_clip(("  parameters " if i == 0 else "             ") + f"{p['set']}: {_pairs(p['values'])}"))
        for i, d in enumerate(run["inputs"]):
            label = f"{d['set']}: sha256 {d['digest']}" if d.get("digest") else f"{d['set']}: {_pairs(d['values'])}"
            out.append(_clip(("  input data " if i == 0 else "             ") + label))
        ep = run.get("epochs")
        if ep:
            out.append(_clip(f"  epochs     {ep['count']} ({ep['set']}); first {_pairs(ep['first'], ('timestamp',))}"))
            out.append(_clip(f"             last {_pairs(ep['last'], ('timestamp',))}"))
            best = ep.get("best")
            if best:
                direction = "lowest" if best["lower_is_better"] else "highest"
                epoch = best["values"].get("epoch")
                at = f" at epoch {epoch:g}" if isinstance(epoch, int | float) else ""
                value = best["values"].get(best["metric"])
                out.append(f"             best ({direction} {best['metric']}) {value:.6g}{at}")
        for i, t in enumerate(run["test_metrics"]):
            out.append(_clip(("  test       " if i == 0 else "             ") + f"{t['set']}: {_pairs(t['values'])}"))
        out.append("")
    return "\n".join(out)


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``dlprov lineage``."""
    p = subparsers.add_parser(
        "lineage", help="which runs made or used a file (model, checkpoint, data, script), found by its sha256"
    )
    p.add_argument("path", nargs="?", help="the file (or a saved model's folder)")
    p.add_argument("--digest", help="a sha256 (64 hex characters, or sha256:HEX) instead of a file")
    p.add_argument("--store", help="store URL or path (default: $DLPROV_STORE or ./dlprov-data)")
    p.add_argument("--endpoint", help="ask a DLProv collector instead (http://host:4318)")
    p.add_argument("--token", help="bearer token for the collector (default: $DLPROV_TOKEN)")
    p.add_argument("--format", help="also write the PROV sub-graph of the lineage: json,provn,png,svg,xml,rdf,jsonld")
    p.add_argument("--out", default="dlprov-out", help="where --format writes (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the lineage as JSON instead of text")
    p.set_defaults(func=_cmd_lineage)


__all__ = ["add_commands", "file_sha256", "render"]
