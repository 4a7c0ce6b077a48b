"""Render the README's benchmark table from bench/results/*.json (between the BENCH markers).

python bench/report.py          # rewrite README.md in place
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BEGIN, END = "<!-- BENCH:BEGIN -->", "<!-- BENCH:END -->"


def _load(name: str) -> dict | None:
    p = RESULTS / name
    return json.loads(p.read_text()) if p.exists() else None


def _verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def rows() -> list[tuple[str, str, str, str]]:
    out: list[tuple[str, str, str, str]] = []
    core = _load("core.json")
    if core:
        tp1 = core["throughput_1_element_spans"]["rows_per_s"]
        tp100 = core["throughput_100_element_spans"]["rows_per_s"]
        cc = core["caller_cost_per_emission"]
        lat = core["emission_to_queryable"]
        out += [
            (
                "span → embedded MonetDB, 1 row per span",
                f"{tp1:,.0f} rows/s",
                "≥ 50,000 rows/s",
                _verdict(tp1 >= 50_000),
            ),
            (
                "span → embedded MonetDB, 100 rows per span",
                f"{tp100:,.0f} rows/s",
                "≥ 50,000 rows/s",
                _verdict(tp100 >= 50_000),
            ),
            (
                "caller-thread cost per dataset emission",
                f"median {cc['median_us']:.0f} µs, p99 {cc['p99_us']:.0f} µs",
                "≤ 50 µs",
                _verdict(cc["median_us"] <= 50),
            ),
            (
                "emission → queryable (SQL)",
                f"p50 {lat['p50_s'] * 1000:.0f} ms, p99 {lat['p99_s'] * 1000:.0f} ms",
                "p99 ≤ 1 s",
                _verdict(lat["p99_s"] <= 1),
            ),
        ]
    for name, label in (
        ("torch_overhead.json", "PyTorch training overhead"),
        ("keras_overhead.json", "Keras training overhead"),
    ):
        r = _load(name)
        if r and "overhead_pct" in r:
            out.append(
                (
                    label,
                    f"{r['overhead_pct']:+.2f} % (median of {r.get('repetitions', '?')} A/B pairs)",
                    "≤ 1 %",
                    _verdict(r["overhead_pct"] <= 1),
                )
            )
    col = _load("collector.json")
    if col and "spans_per_s" in col:
        out.append(("collector ingest over OTLP/HTTP", f"{col['spans_per_s']:,.0f} spans/s", "—", "—"))
    return out


def table() -> str:
    core = _load("core.json") or {}
    m = core.get("machine", {})
    lines = [
        f"Measured {core.get('when', '?')} on {m.get('cpu', '?')} ({m.get('cores', '?')} cores), "
        f"Python {m.get('python', '?')}.",
        "",
        "| measure | result | target | |",
        "|---|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows()]
    return "\n".join(lines)


def main() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    if BEGIN not in text:
        sys.exit("README.md has no benchmark markers")
    new = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), BEGIN + "\n" + table() + "\n" + END, text, flags=re.S)
    readme.write_text(new)
    print(table())


if __name__ == "__main__":
    main()
