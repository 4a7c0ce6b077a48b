"""PNG and SVG drawings a person can read: labels, PROV colours, long runs folded."""

from __future__ import annotations

import re
from pathlib import Path

from dlprov_otel.prov import build_document, export
from dlprov_otel.prov.draw import to_dot
from tests.seedflow import record_seed_flow


def _svg_texts(svg: str) -> list[str]:
    import html

    return [html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]


def test_png_and_svg_carry_human_labels(dlprov, store_dir: Path, tmp_path: Path) -> None:
    tag = record_seed_flow(store_dir, epochs=2)
    png, svg = export(dlprov.store, execution=tag, formats=("png", "svg"), out_dir=tmp_path)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    text = svg.read_text(encoding="utf-8")
    texts = _svg_texts(text)
    for label in (
        "trainmodel",
        "testmodel",
        "itrainmodel",
        "otrainmodel · epoch 0",
        "otrainmodel · epoch 1",
        f"execution {tag}",
        "Débora Pina",
        "dataflow mnist",
    ):
        assert label in texts, label
    assert "loss = 0.3029" in texts  # key values under the label
    assert not any(re.fullmatch(r"dlid:\S+", t) for t in texts)  # no bare identifiers as labels
    # PROV convention: entities yellow ellipses, activities blue boxes, agents orange houses
    fills = {f.lower() for f in re.findall(r'fill="(#[0-9a-fA-F]{6})"', text)}
    assert {"#fffc87", "#9fb1fc", "#fed37f"} <= fills


def test_long_run_is_folded(dlprov, store_dir: Path) -> None:
    tag = record_seed_flow(store_dir, epochs=300)
    doc = build_document(dlprov.store, execution=tag)
    dot = to_dot(doc)
    assert "otrainmodel · epoch 0" in dot and "otrainmodel · epoch 299" in dot
    assert "… 295 more otrainmodel" in dot
    assert dot.count("otrainmodel · epoch") == 5
    nodes = re.findall(r"^  n\d+ \[", dot, flags=re.M)
    assert len(nodes) < 30


def test_a_plan_of_an_association_is_drawn_linked_to_its_activity() -> None:
    # a run's recipe is the plan of wasAssociatedWith(execution, script, recipe): not a lone node
    from prov.model import ProvDocument

    doc = ProvDocument()
    doc.add_namespace("ex", "https://example.org/")
    doc.add_namespace("dlprov", "https://w3id.org/dlprov/ns#")
    run = doc.activity("ex:run", other_attributes={"prov:label": "run"})
    script = doc.agent("ex:script", {"prov:type": "prov:SoftwareAgent"})
    recipe = doc.entity("ex:recipe", {"prov:type": "prov:Plan", "prov:label": "recipe · train.py"})
    doc.wasAssociatedWith(run, script, recipe)
    dot = to_dot(doc)
    ids = {label: nid for nid, label in re.findall(r'^  (n\d+) \[.*?label="([^"]+)"', dot, flags=re.M)}
    assert f'{ids["run"]} -> {ids["recipe · train.py"]}' in dot and "hadPlan" in dot
    # a plan the activity already used is not drawn twice
    doc.used(run, recipe)
    assert to_dot(doc).count(f'{ids["run"]} -> {ids["recipe · train.py"]}') == 1
