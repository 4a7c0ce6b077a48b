"""W3C PROV documents from the provenance store.

::

    from dlprov_otel.prov import build_document, export
    doc = build_document(store, execution="mnist-2024-10-21 16:32:51.503436")
    export(store, dataflow="mnist", formats=("json", "provn", "png"), out_dir="dlprov-out")

``build_document`` returns a :class:`prov.model.ProvDocument` (see :mod:`.builder` for the
mapping); ``export`` writes it as PROV-JSON, PROV-N, PROV-XML, RDF (Turtle), JSON-LD and a
PNG or SVG drawing (:mod:`.draw`). The ``prov`` library is imported only when used, so the
command line starts fast.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ProvExportError, UnknownTagError
from .namespaces import ID_URI, VOCAB_URI

if TYPE_CHECKING:
    from prov.model import ProvDocument

    from ..store import Store

# format -> file extension
FORMATS: dict[str, str] = {
    "json": "json",
    "provn": "provn",
    "xml": "xml",
    "rdf": "ttl",
    "jsonld": "jsonld",
    "png": "png",
    "svg": "svg",
}
DEFAULT_FORMATS = ("json", "provn", "png")


def build_document(
    store: Store | str | os.PathLike[str] | None,
    execution: str | None = None,
    dataflow: str | None = None,
    *,
    progress: bool | str = False,
) -> ProvDocument:
    """The PROV document of one execution, of all executions of a dataflow, or (neither given)
    of every execution in the store. ``store`` is a :class:`Store` or a store URL/path."""
    from .builder import build

    with _opened(store) as st, _bar(progress, "PROV records", "element") as bar:
        return build(st, execution, dataflow, progress=bar.update, on_total=bar.set_total)


def export(
    store: Store | str | os.PathLike[str] | None,
    execution: str | None = None,
    dataflow: str | None = None,
    formats: Iterable[str] | str = DEFAULT_FORMATS,
    out_dir: str | os.PathLike[str] = "dlprov-out",
    progress: bool | str = False,
) -> list[Path]:
    """Build the document and write it in ``formats`` to ``out_dir/<tag>.<ext>``; returns the
    paths written. ``progress=True`` shows a bar on a terminal, ``"always"`` everywhere."""
    wanted = parse_formats(formats)
    with _opened(store) as st:
        if execution is not None:  # `latest`, a name or a prefix: the files take the tag
            from .builder import select_executions

            execution = select_executions(st, execution, dataflow)[0].tag
        doc = build_document(st, execution, dataflow, progress=progress)
        stem = file_stem(execution or dataflow or _only_dataflow(st) or "dlprov")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with _bar(progress, "writing", "file", total=len(wanted)) as bar:
        for fmt in wanted:
            path = out / f"{stem}.{FORMATS[fmt]}"
            write(doc, path, fmt)
            written.append(path)
            bar.update(1)
    return written


def write(doc: ProvDocument, path: str | os.PathLike[str], fmt: str) -> Path:
    """Write ``doc`` to ``path`` in one of :data:`FORMATS`."""
    fmt = parse_formats([fmt])[0]
    path = Path(path)
    if fmt in ("png", "svg"):
        from .draw import render

        return render(doc, path, fmt)
    try:
        if fmt == "rdf":
            _require("rdflib", "rdf")
            from .rdf import turtle

            text = turtle(doc)  # the unqualified relations beside the qualified ones
        elif fmt == "jsonld":
            _require("rdflib", "jsonld")
            from .rdf import rdf_graph

            text = rdf_graph(doc).serialize(format="json-ld")  # the same triples as the Turtle
        elif fmt == "xml":
            _require("lxml", "xml")
            text = doc.serialize(format="xml")
        elif fmt == "json":
            text = doc.serialize(format="json", indent=1)
        else:
            text = doc.serialize(format=fmt)
    except ProvExportError:
        raise
    except Exception as exc:
        raise ProvExportError(f"cannot write {fmt} to {path}: {type(exc).__name__}: {exc}") from exc
    path.write_text(text if isinstance(text, str) else str(text), encoding="utf-8")
    return path


def parse_formats(formats: Iterable[str] | str) -> list[str]:
    """``"json,provn"`` or ``["json", "provn"]`` -> validated, de-duplicated list."""
    items = formats.split(",") if isinstance(formats, str) else list(formats)
    out: list[str] = []
    for item in items:
        name = str(item).strip().lower().lstrip(".")
        name = {"ttl": "rdf", "turtle": "rdf", "prov-n": "provn", "prov-json": "json"}.get(name, name)
        if not name:
            continue
        if name not in FORMATS:
            raise ProvExportError(f"unknown PROV format {item!r}; choose from {', '.join(FORMATS)}")
        if name not in out:
            out.append(name)
    if not out:
        raise ProvExportError(f"no PROV format given; choose from {', '.join(FORMATS)}")
    return out


def file_stem(tag: str) -> str:
    """A file name made from an execution or dataflow tag (``mnist-2024-10-21_16_32_51.5``)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", tag).strip("._")
    return stem[:150] or "dlprov"


# ----------------------------------------------------------------------------- helpers


def _require(module: str, fmt: str) -> None:
    try:
        __import__(module)
    except ImportError:
        raise ProvExportError(
            f"the {fmt} format needs the {module!r} package: pip install 'prov[{fmt}]'"
        ) from None


def _only_dataflow(store: Store) -> str | None:
    from ..store.readmodel import dataflow_tags

    tags = dataflow_tags(store)
    return tags[0] if len(tags) == 1 else None


@contextmanager
def _opened(store: Any) -> Iterator[Store]:
    from ..store import Store, open_store

    if isinstance(store, Store):
        yield store
        return
    opened = open_store(store)
    try:
        yield opened
    finally:
        opened.close()


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_total(self, total: int) -> None:
        pass


class _Bar:
    def __init__(self, bar: Any) -> None:
        self.bar = bar

    def update(self, n: int = 1) -> None:
        self.bar.update(n)

    def set_total(self, total: int) -> None:
        self.bar.total = total
        self.bar.refresh()


@contextmanager
def _bar(progress: bool | str, desc: str, unit: str, total: int | None = None) -> Iterator[Any]:
    show = progress == "always" or (progress is True and sys.stderr.isatty())
    if not show:
        yield _NoBar()
        return
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False)
    try:
        yield _Bar(bar)
    finally:
        bar.close()


__all__ = [
    "DEFAULT_FORMATS",
    "FORMATS",
    "ID_URI",
    "VOCAB_URI",
    "ProvExportError",
    "UnknownTagError",
    "build_document",
    "export",
    "file_stem",
    "parse_formats",
    "write",
]
