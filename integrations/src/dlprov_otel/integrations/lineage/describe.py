"""Describing data: each array, tensor or ``tf.data`` pipeline becomes one row with its
shape, dtype, sample count and content digest (sha256 of the array bytes; a cheap
description for ``tf.data`` pipelines, which are never iterated)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any

from dlprov_otel.digests import file_digest

logger = logging.getLogger(__name__)
_MAX_ITEMS = 64  # leaves described per structure (a list of 10,000 files is not 10,000 rows)


def is_tf_dataset(obj: Any) -> bool:
    return hasattr(obj, "element_spec") and type(obj).__module__.startswith("tensorflow")


def is_array(obj: Any) -> bool:
    """An array or tensor (has shape and dtype), not a ``tf.data`` pipeline."""
    return hasattr(obj, "shape") and hasattr(obj, "dtype") and not is_tf_dataset(obj)


def _as_numpy(obj: Any) -> Any:
    import numpy as np

    if hasattr(obj, "to_numpy"):  # pandas
        return obj.to_numpy()
    if hasattr(obj, "detach"):  # torch
        return obj.detach().cpu().numpy()
    return np.asarray(obj)


def digest_array(arr: Any) -> str | None:
    """sha256 of an array's bytes in C order (``None`` for object arrays)."""
    import numpy as np

    a = np.ascontiguousarray(_as_numpy(arr))
    if a.dtype.hasobject:
        return None
    return hashlib.sha256(memoryview(a.reshape(-1)).cast("B")).hexdigest()


def _describe_array(name: str, obj: Any, digest: str | None = None, shape: Any = None) -> dict[str, Any]:
    shape = tuple(int(d) if d is not None else None for d in (obj.shape if shape is None else shape))
    row: dict[str, Any] = {
        "data_name": name,
        "kind": type(obj).__module__.split(".")[0] + "." + type(obj).__name__,
        "shape": str(shape),
        "dtype": str(getattr(obj.dtype, "name", obj.dtype)),
        "samples": shape[0] if shape else 1,
        "sha256": digest,
    }
    if digest is None:
        try:
            row["sha256"] = digest_array(obj)
        except Exception as exc:  # a symbolic tensor has no bytes: keep the description
            logger.debug("DLProv: no digest for %s: %s", name, exc)
    return row


def _describe_tf_dataset(name: str, ds: Any) -> dict[str, Any]:
    # Never iterate: the description comes from the static element spec and cardinality.
    spec = str(ds.element_spec)
    try:
        cardinality = int(ds.cardinality())
    except Exception:
        cardinality = -2
    return {
        "data_name": name,
        "kind": "tf.data." + type(ds).__name__,
        "shape": spec,
        "dtype": None,
        "samples": None,
        "sha256": None,
        "cardinality": float(cardinality) if cardinality >= 0 else None,
        "fingerprint": hashlib.sha256(f"{spec}|{cardinality}".encode()).hexdigest(),
    }


def leaves(obj: Any, name: str = "data") -> list[tuple[str, Any]]:
    """(name, piece) for each array, ``tf.data`` pipeline or other data object in a
    structure of tuples, lists and dicts (a list of plain numbers is one array)."""
    out: list[tuple[str, Any]] = []

    def walk(o: Any, n: str) -> None:
        if o is None or len(out) >= _MAX_ITEMS:
            return
        if is_tf_dataset(o) or is_array(o):
            out.append((n, o))
        elif isinstance(o, Mapping):
            for k, v in o.items():
                walk(v, f"{n}.{k}")
        elif isinstance(o, list | tuple) and o:
            if all(x is None or is_array(x) or is_tf_dataset(x) or isinstance(x, list | tuple | Mapping) for x in o):
                for i, v in enumerate(o):
                    walk(v, f"{n}[{i}]")
            else:
                import numpy as np

                out.append((n, np.asarray(o)))
        else:  # a generator, a PyDataset, a DataLoader
            out.append((n, o))

    walk(obj, name)
    return out


def _describe_other(name: str, obj: Any) -> dict[str, Any]:
    # a generator, a PyDataset, a DataLoader: its type and length, never its contents
    length = None
    try:
        length = len(obj)
    except Exception:
        pass
    kind = type(obj).__module__.split(".")[0] + "." + type(obj).__name__
    return {"data_name": name, "kind": kind, "shape": None, "dtype": None, "samples": length, "sha256": None}


def describe(obj: Any, name: str = "data") -> list[dict[str, Any]]:
    """Rows describing ``obj`` (an array, a tensor, a ``tf.data`` pipeline, or a tuple, list
    or dict of them): data_name, kind, shape, dtype, samples, sha256."""
    rows = []
    for n, piece in leaves(obj, name):
        if is_tf_dataset(piece):
            rows.append(_describe_tf_dataset(n, piece))
        elif is_array(piece):
            rows.append(_describe_array(n, piece))
        else:
            rows.append(_describe_other(n, piece))
    return rows


def describe_split(
    obj: Any, name: str, split_at: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows for the arrays of ``obj`` whole and for their parts ``[:split_at]`` and
    ``[split_at:]``.

    Hashes every byte once: sha256 is sequential, so the digest of the first part continues
    into the digest of the whole.
    """
    import numpy as np

    whole: list[dict[str, Any]] = []
    first: list[dict[str, Any]] = []
    second: list[dict[str, Any]] = []
    for n, arr in leaves(obj, name):
        a = np.ascontiguousarray(_as_numpy(arr))
        head, tail = a[:split_at], a[split_at:]
        if a.dtype.hasobject:
            d_head = d_tail = d_all = None
        else:
            h = hashlib.sha256(memoryview(head.reshape(-1)).cast("B"))
            d_head = h.hexdigest()
            h.update(memoryview(tail.reshape(-1)).cast("B"))
            d_all = h.hexdigest()
            d_tail = hashlib.sha256(memoryview(tail.reshape(-1)).cast("B")).hexdigest()
        whole.append(_describe_array(n, arr, d_all))
        first.append(_describe_array(n, arr, d_head, shape=head.shape))
        second.append(_describe_array(n, arr, d_tail, shape=tail.shape))
    return whole, first, second


def ref(row: Mapping[str, Any]) -> str:
    """What the set's FILE attribute holds: a path when known, else a content address."""
    if row.get("path"):
        return str(row["path"])
    if row.get("sha256"):
        return "sha256:" + row["sha256"]
    if row.get("fingerprint"):
        return "spec-sha256:" + row["fingerprint"]
    return str(row.get("kind") or "data") + ":" + str(row.get("data_name"))


__all__ = ["describe", "describe_split", "digest_array", "file_digest", "is_array", "is_tf_dataset", "leaves", "ref"]
