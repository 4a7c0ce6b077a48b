"""Values coercion: user values (numpy, NaN, bool, text, None) become plain span attribute values."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given

from dlprov_otel import ElementError
from dlprov_otel.api import Element, dataset_attributes
from dlprov_otel.model import Attribute, AttributeType, Set, SetType
from dlprov_otel.values import coerce, infer_type, to_number

N, T = AttributeType.NUMERIC, AttributeType.TEXT
FINITE = st.floats(allow_nan=False, allow_infinity=True)
NUMPY_DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint64]


def numeric(value):
    return coerce(value, N, set_tag="s", attribute="a")


def text(value):
    return coerce(value, T, set_tag="s", attribute="a")


@given(FINITE)
def test_floats_pass_unchanged(x):
    out = numeric(x)
    assert type(out) is float and out == x


@given(st.integers(-(2**53), 2**53))
def test_ints_become_exact_floats(n):
    out = numeric(n)
    assert type(out) is float and out == n


def test_nan_stays_nan_for_numbers_and_becomes_none_for_text():
    assert math.isnan(numeric(math.nan))
    assert math.isnan(numeric(np.float32("nan")))
    assert text(math.nan) is None


@pytest.mark.parametrize("dtype", NUMPY_DTYPES)
@given(x=st.integers(0, 100))
def test_numpy_scalars_and_zero_d_arrays(dtype, x):
    for value in (dtype(x), np.array(x, dtype=dtype)):
        out = numeric(value)
        assert type(out) is float and out == float(dtype(x))


def test_bools_are_numbers_for_numeric_and_words_for_text():
    assert numeric(True) == 1.0 and numeric(np.bool_(False)) == 0.0
    assert text(True) == "True"
    assert infer_type(True) is T  # an undeclared flag is not a metric


@pytest.mark.parametrize("missing", [None, "", "  ", "None", "null", "NULL"])
def test_missing_numbers_are_none(missing):
    assert numeric(missing) is None


@given(FINITE)
def test_numeric_text_is_parsed(x):
    assert numeric(f"  {x!r} ") == x


@pytest.mark.parametrize("bad", ["fast", [1, 2], np.array([1.0, 2.0]), object(), {"a": 1}, 10**400])
def test_what_is_not_a_number_is_refused_with_set_and_attribute(bad):
    with pytest.raises(ElementError, match=r"set 's', attribute 'a' is NUMERIC but got "):
        numeric(bad)


def test_a_long_refused_value_is_shortened():
    with pytest.raises(ElementError) as err:
        numeric("x" * 500)
    assert "..." in str(err.value) and len(str(err.value)) < 200


def test_text_conversions():
    assert text(b"caf\xc3\xa9") == "café"
    assert text(Path("/data/train.npz")) == "/data/train.npz"
    assert text(dt.datetime(2024, 10, 21, 16, 33, 46)) == "2024-10-21 16:33:46"
    assert text(dt.date(2024, 10, 21)) == "2024-10-21"
    assert text(np.int64(3)) == "3"
    assert text(None) is None
    assert to_number(dt.timedelta(minutes=1, seconds=30)) == 90.0


@given(st.text())
def test_text_keeps_every_string_without_nul_and_refuses_nul(s):
    if "\x00" in s:
        with pytest.raises(ElementError, match=r"NUL character"):
            text(s)
    else:
        assert text(s) == s


@given(st.text(), st.text())
def test_nul_anywhere_is_refused_never_truncated(a, b):
    with pytest.raises(ElementError, match=r"attribute 'a': the text contains a NUL character"):
        text(a + "\x00" + b)


@given(st.one_of(st.integers(), FINITE, st.text(), st.booleans(), st.none()))
def test_infer_type_agrees_with_coerce(value):
    kind = infer_type(value)
    out = coerce(value, kind, set_tag="s", attribute="a") if not (isinstance(value, str) and "\x00" in value) else None
    if kind is N:
        assert out is None or type(out) is float
    else:
        assert out is None or type(out) is str
    if isinstance(value, str):
        assert kind is T  # a number-looking string that was not declared stays text


ROW = st.fixed_dictionaries(
    {"loss": st.one_of(FINITE, st.integers(-(10**6), 10**6), st.none()), "name": st.one_of(st.text(), st.none())}
)


@given(st.lists(ROW, max_size=8))
def test_dataset_attributes_one_list_per_attribute_all_of_one_type(rows):
    """OpenTelemetry drops a whole attribute whose list mixes types: every list is homogeneous."""
    s = Set("s", SetType.OUTPUT, [Attribute("loss", N), Attribute("name", T, optional=True)])
    rows = [{k: v for k, v in r.items() if not (isinstance(v, str) and "\x00" in v)} for r in rows]
    attrs = dataset_attributes(s, SetType.OUTPUT, [Element(r) for r in rows])
    losses, names = attrs["dlprov.data.loss"], attrs["dlprov.data.name"]
    assert len(losses) == len(names) == len(rows) == attrs["dlprov.dataset.element_count"]
    assert all(v is None or type(v) is float for v in losses)
    assert all(v is None or type(v) is str for v in names)
    assert [r["loss"] for r in rows] == list(losses)
