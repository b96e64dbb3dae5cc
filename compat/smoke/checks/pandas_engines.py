"""pandas with the optional engines it hands work to when they are installed:
numexpr (arithmetic and comparisons on frames past pandas' own size threshold,
``eval`` and ``query``), bottleneck (reductions), pyarrow (its string and Arrow
dtypes, parquet and feather) and PyTables (HDF5 files).

What is tried comes from the packages' own tables: the operators pandas maps to
numexpr and the operator symbols its ``eval`` parses, the reductions bottleneck
provides that pandas has, a spread of pyarrow's types, the compression
libraries PyTables was built with. Each accelerated result is compared with
pandas' own result with the engine turned off. An engine installed but older
than the pandas release needs (which pandas then ignores, with a warning) is a
failure: the pair does not work together. Written for pandas 1.5 to 3.x.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from . import check, installed, mod, version


def _accepted(module: str) -> None:
    """Fail when pandas refuses the installed engine as too old (its minimum is
    in ``pandas.compat._optional.VERSIONS``, by import name)."""
    optional = mod("pandas.compat._optional")
    minimum = getattr(optional, "VERSIONS", {}).get(module)
    engine = mod(module)
    if minimum and version(engine) < tuple(int(p) for p in minimum.split(".")[:3]):
        raise AssertionError(
            f"pandas {mod('pandas').__version__} needs {module}>={minimum}, have "
            f"{engine.__version__}: pandas ignores it"
        )


@contextlib.contextmanager
def option(name: str, value: Any) -> Iterator[None]:
    pd = mod("pandas")
    with pd.option_context(name, value):
        yield


def same(got: Any, expected: Any, what: str, tol: float = 1e-12) -> None:
    """Equal values (floats to ``tol``, NaN where NaN), equal shapes and dtypes."""
    np = mod("numpy")
    got_values, expected_values = np.asarray(got), np.asarray(expected)
    assert got_values.shape == expected_values.shape, (what, got_values.shape)
    assert got_values.dtype == expected_values.dtype, (what, got_values.dtype)
    if got_values.dtype.kind not in "fc":
        ok = bool((got_values == expected_values).all())
    else:  # mostly bit for bit: the cheap test first
        ok = bool(np.array_equal(got_values, expected_values, equal_nan=True)) or bool(
            np.allclose(got_values, expected_values, rtol=tol, atol=0, equal_nan=True)
        )
    assert ok, f"{what}: the accelerated result differs from pandas' own"


def _numeric_frame(rows: int, seed: int) -> Any:
    np = mod("numpy")
    pd = mod("pandas")
    rng = np.random.RandomState(seed)
    frame = pd.DataFrame(
        {
            "a": rng.uniform(0.5, 1.5, rows),
            "b": rng.uniform(0.5, 1.5, rows),
            "c": rng.uniform(-1.0, 1.0, rows),
        }
    )
    frame.loc[frame.index[::97], "b"] = np.nan
    return frame


@check("pandas", "numexpr", valid={"pandas": ">=1.5", "numexpr": ">=2.7"})
def check_numexpr_operators() -> None:
    """Every operator pandas maps to numexpr on a frame past its threshold, eval and query."""
    np = mod("numpy")
    pd = mod("pandas")
    ex = mod("pandas.core.computation.expressions")
    ops = mod("pandas.core.computation.ops")
    _accepted("numexpr")
    assert ex.NUMEXPR_INSTALLED, "pandas does not see numexpr"
    threshold = int(getattr(ex, "_MIN_ELEMENTS", 1_000_000))
    big = _numeric_frame(threshold + 1, 0)  # each column alone crosses it
    left, right = big["a"], big["b"]
    flags = left > 1.0, right > 1.0

    def run(op: Callable[[Any, Any], Any], logical: bool) -> Any:
        return op(*flags) if logical else op(left, right)

    used = []
    mapping = {op: sym for op, sym in ex._op_str_mapping.items() if sym is not None}
    assert mapping, "pandas maps no operator to numexpr"
    ex.set_test_mode(True)
    try:
        for op, sym in mapping.items():
            what = f"{getattr(op, '__name__', op)} ({sym})"
            logical = sym in ("&", "|", "^")
            with option("compute.use_numexpr", False):
                expected = run(op, logical)
            ex.get_test_result()
            with option("compute.use_numexpr", True):
                got = run(op, logical)
            if ex.get_test_result():
                used.append(sym)
            same(got, expected, what)
        with option("compute.use_numexpr", True):
            both = big[["a", "b"]]
            same(both * 2.0 + both, both.to_numpy() * 2.0 + both.to_numpy(), "frame arithmetic")
            masked = both.where(both > 1.0, -both)
            same(masked, np.where(both > 1.0, both, -both), "where")
            evaluated = big.eval("a + b * c - a / c")
            queried = big.query("a > b and c < 0.5")
        with option("compute.use_numexpr", False):
            same(evaluated, big.eval("a + b * c - a / c", engine="python"), "eval")
            same(queried, big.query("a > b and c < 0.5", engine="python"), "query")
    finally:
        ex.set_test_mode(False)
    assert {"+", "*", "/", ">"} <= set(used), f"numexpr took only {sorted(set(used))}"

    small = _numeric_frame(200, 1)
    # the symbols eval parses that pandas hands numexpr as they are (not // or %,
    # whose semantics numexpr does not share)
    handed = set(mapping.values())
    arithmetic = [s for s in ops.ARITH_OPS_SYMS if s in handed]
    comparisons = [s for s in ops.CMP_OPS_SYMS if s in handed]
    expressions = [f"a {s} b" for s in arithmetic + comparisons]
    expressions += [f"c {s} 2.5" for s in arithmetic]  # a literal
    expressions += [f"a {s} @offset" for s in arithmetic]  # a local variable
    expressions += [f"(a > b) {s} (c < 0)" for s in ops.BOOL_OPS_SYMS]
    offset = 0.25  # noqa: F841 - read by eval through "@offset"
    for text in expressions:
        same(small.eval(text, engine="numexpr"), small.eval(text, engine="python"), text)
    for sym in comparisons:
        for text in (f"a {sym} b or c > 0.9", f"a {sym} @offset * 4"):
            same(small.query(text), small.query(text, engine="python"), f"query {text!r}")
    assert len(expressions) >= 10, expressions
    assert pd.eval("small.a + small.b", engine="numexpr").shape == (200,)


def _bottleneck_reductions() -> list[str]:
    """The reductions bottleneck provides that pandas' nanops has, by pandas'
    method name (``nanmedian`` is ``median``)."""
    bn = mod("bottleneck")
    nanops = mod("pandas.core.nanops")
    try:
        provided = set(bn.get_functions("reduce", as_string=True))
    except (AttributeError, TypeError):
        provided = {n for n in dir(bn) if n.startswith("nan")}
    names = sorted(n for n in provided if n.startswith("nan") and hasattr(nanops, n))
    return [n[len("nan") :] for n in names]


@check("pandas", "bottleneck", valid={"pandas": ">=1.5", "bottleneck": ">=1.3"})
def check_bottleneck_reductions() -> None:
    """The reductions bottleneck provides, through pandas on frames with NaN, equal without it."""
    np = mod("numpy")
    nanops = mod("pandas.core.nanops")
    _accepted("bottleneck")
    with option("compute.use_bottleneck", True):
        assert nanops._USE_BOTTLENECK, "pandas does not use bottleneck"
    wide = _numeric_frame(20_000, 2)
    wide["i"] = np.arange(len(wide), dtype=np.int64) % 1000 - 500
    # float32 sums in float32 in bottleneck, in float64 in numpy: tolerance to match
    narrow = wide[["a", "b", "c"]].astype(np.float32)
    names = _bottleneck_reductions()
    assert {"median", "std", "min", "max"} <= set(names), names
    tried = 0
    for frame, tol in ((wide, 1e-9), (narrow, 1e-4)):
        for name in names:
            for axis in (0, 1):
                for skipna in (True, False):
                    single = name in ("argmin", "argmax")  # Series only
                    if axis and (single or not skipna):  # row-wise without skipna: slow
                        continue
                    target = frame["b"] if single else frame
                    method = getattr(target, name, None)
                    if method is None:
                        continue
                    kwargs: dict[str, Any] = {"skipna": skipna}
                    if not single:
                        kwargs["axis"] = axis
                    what = f"{name}(axis={axis}, skipna={skipna}) of {frame.dtypes.iloc[0]}"
                    with option("compute.use_bottleneck", False):
                        try:
                            expected = method(**kwargs)
                        except (TypeError, ValueError) as exc:  # pandas' own refusal
                            expected = type(exc)
                    with option("compute.use_bottleneck", True):
                        if isinstance(expected, type):
                            with contextlib.suppress(expected):
                                method(**kwargs)
                                raise AssertionError(f"{what}: no {expected.__name__} with it")
                            continue
                        got = method(**kwargs)
                    same(got, expected, what, tol=tol)
                    tried += 1
    print(f"{tried} reductions compared: {', '.join(names)}")


# A spread of pyarrow's types (factory, arguments) and values of each, a null among them.
ARROW_TYPES: tuple[tuple[str, tuple[Any, ...], list[Any]], ...] = (
    ("int8", (), [1, None, -3]),
    ("int64", (), [2**40, None, -1]),
    ("uint16", (), [7, None, 65535]),
    ("float32", (), [0.5, None, -2.25]),
    ("float64", (), [1.5, None, 1e300]),
    ("bool_", (), [True, None, False]),
    ("string", (), ["b", None, "a"]),
    ("large_string", (), ["y", None, "x"]),
    ("date32", (), [datetime.date(2024, 2, 29), None, datetime.date(1970, 1, 1)]),
    (
        "timestamp",
        ("us",),
        [datetime.datetime(2024, 3, 31, 1, 30), None, datetime.datetime(2000, 1, 1)],
    ),
    ("duration", ("ms",), [datetime.timedelta(seconds=90), None, datetime.timedelta(days=-1)]),
)


@check("pandas", "pyarrow", valid={"pandas": ">=1.5", "pyarrow": ">=7"})
def check_arrow_dtypes() -> None:
    """string[pyarrow], and on pandas 2+ ArrowDtype over a spread of pyarrow's types."""
    pd = mod("pandas")
    pa = mod("pyarrow")
    _accepted("pyarrow")
    words = pd.Series(["pear", None, "apple", "fig"], dtype="string[pyarrow]")
    assert words.dtype.storage == "pyarrow", words.dtype
    plain = words.astype("string[python]")
    assert words.isna().tolist() == [False, True, False, False]
    assert words.str.upper().astype(object).tolist()[::2] == ["PEAR", "APPLE"]
    assert words.str.len().astype("Float64").tolist()[::2] == [4, 5]
    assert words.str.contains("p").fillna(False).astype(bool).tolist() == [True, False, True, False]
    assert words.sort_values().dropna().tolist() == ["apple", "fig", "pear"]
    assert words.astype(object).tolist() == plain.astype(object).tolist()
    assert (words == "fig").fillna(False).astype(bool).tolist() == [False, False, False, True]
    assert pd.concat([words, words]).value_counts()["fig"] == 2
    assert words.str.cat(sep="-", na_rep="?") == "pear-?-apple-fig"
    if not installed("pandas", ">=2.0"):
        return
    for factory, arguments, values in ARROW_TYPES:
        arrow_type = getattr(pa, factory)(*arguments)
        what = f"ArrowDtype({arrow_type})"
        series = pd.Series(values, dtype=pd.ArrowDtype(arrow_type))
        assert series.dtype.pyarrow_dtype == arrow_type, what
        assert series.isna().tolist() == [False, True, False], what
        kept = [v for v in values if v is not None]
        assert len(series.dropna()) == 2, what
        assert series.dropna().sort_values().tolist() == sorted(kept), what
        assert series.min() == min(kept), what
        assert series.max() == max(kept), what
        assert (series == series).fillna(True).all(), what
        assert series.iloc[[2, 0]].tolist() == [values[2], values[0]], what
        assert pd.concat([series, series]).dtype == series.dtype, what
        assert series.to_frame().astype({0: object})[0].tolist()[0] == values[0], what
        assert pa.array(series).type == arrow_type, what


def _frame_of_dtypes() -> Any:
    """A frame with a column of each common dtype pandas stores in parquet and feather."""
    np = mod("numpy")
    pd = mod("pandas")
    frame = pd.DataFrame(
        {
            "i": np.arange(5, dtype=np.int64),
            "f": [0.5, np.nan, 2.5, 3.5, -1.0],
            "b": [True, False, True, True, False],
            "t": pd.to_datetime(["2024-01-01", "2024-02-29", None, "1999-12-31", "2024-07-04"]),
            "z": pd.date_range("2024-03-30", periods=5, freq="D", tz="UTC"),
            "c": pd.Categorical(["x", "y", "x", None, "z"]),
            "n": pd.array([1, None, 3, 4, 5], dtype="Int64"),
            "s": pd.array(["a", None, "c", "d", "e"], dtype="string[pyarrow]"),
        }
    )
    if installed("pandas", ">=2.0"):
        pa = mod("pyarrow")
        frame["a"] = pd.Series([1.5, None, 2.5, 0.0, -3.0], dtype=pd.ArrowDtype(pa.float64()))
    return frame


def _kinds(frame: Any) -> list[str]:
    """Each column's dtype, every string dtype (``string``, pandas 3's ``str``) as one."""
    pd = mod("pandas")
    return ["string" if isinstance(d, pd.StringDtype) else str(d) for d in frame.dtypes]


@check("pandas", "pyarrow", valid={"pandas": ">=1.5", "pyarrow": ">=7"})
def check_parquet_feather() -> None:
    """Parquet and feather round trips through BytesIO keep every column's values and dtype."""
    pd = mod("pandas")
    testing = mod("pandas.testing")
    _accepted("pyarrow")
    frame = _frame_of_dtypes()
    for fmt in ("parquet", "feather"):
        buffer = io.BytesIO()
        # the files record "string", the storage is the reader's option
        with option("mode.string_storage", "pyarrow"):
            if fmt == "parquet":
                frame.to_parquet(buffer, engine="pyarrow")
                buffer.seek(0)
                back = pd.read_parquet(buffer, engine="pyarrow")
            else:
                frame.to_feather(buffer)
                buffer.seek(0)
                back = pd.read_feather(buffer)
        assert _kinds(back) == _kinds(frame), (
            f"{fmt}: dtypes {dict(back.dtypes.astype(str))} came back for "
            f"{dict(frame.dtypes.astype(str))}"
        )
        # pandas 3 may read strings back as its default "str" (NaN for missing) where
        # the file recorded "string" (pd.NA): the values are what is compared
        testing.assert_frame_equal(back, frame, check_dtype=False)
    buffer = io.BytesIO()
    frame.to_parquet(buffer, engine="pyarrow")
    buffer.seek(0)
    some = pd.read_parquet(buffer, engine="pyarrow", columns=["i", "f"])
    testing.assert_frame_equal(some, frame[["i", "f"]])
    if installed("pandas", ">=2.0"):
        buffer.seek(0)
        arrow = pd.read_parquet(buffer, engine="pyarrow", dtype_backend="pyarrow")
        assert all(isinstance(d, pd.ArrowDtype) for d in arrow.dtypes), dict(arrow.dtypes)
        assert arrow["i"].tolist() == frame["i"].tolist()


@check("pandas", "tables", valid={"pandas": ">=1.5", "tables": ">=3.6"})
def check_hdf5() -> None:
    """to_hdf/read_hdf in fixed and table formats, a where query, each compression PyTables has."""
    np = mod("numpy")
    pd = mod("pandas")
    tables = mod("tables")
    testing = mod("pandas.testing")
    _accepted("tables")
    rng = np.random.RandomState(3)
    frame = pd.DataFrame(
        {
            "x": rng.uniform(0, 1, 400),
            "k": np.arange(400, dtype=np.int64),
            "flag": np.arange(400) % 3 == 0,
            "when": pd.date_range("2024-01-01", periods=400, freq="h"),
            "name": [f"n{i % 7}" for i in range(400)],
        }
    )
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "frames.h5")
        frame.to_hdf(path, key="fixed", format="fixed", mode="w")
        testing.assert_frame_equal(pd.read_hdf(path, "fixed"), frame)
        frame.to_hdf(path, key="rows", format="table", data_columns=["x", "k", "when"])
        testing.assert_frame_equal(pd.read_hdf(path, "rows"), frame)
        picked = pd.read_hdf(path, "rows", where="x > 0.5 & k < 300")
        testing.assert_frame_equal(picked, frame[(frame.x > 0.5) & (frame.k < 300)])
        stamp = pd.Timestamp("2024-01-05")
        late = pd.read_hdf(path, "rows", where="when >= stamp", columns=["k"])
        testing.assert_frame_equal(late, frame.loc[frame.when >= stamp, ["k"]])
        with pd.HDFStore(path, mode="a") as store:
            store.append("grown", frame.iloc[:200], data_columns=["k"])
            store.append("grown", frame.iloc[200:])
            testing.assert_frame_equal(store.select("grown"), frame)
            assert len(store.select("grown", where="k >= 100 & k < 300")) == 200
            assert sorted(store.keys()) == ["/fixed", "/grown", "/rows"], store.keys()
        # one per library PyTables was built with (blosc's inner codecs left out)
        libraries = [
            lib
            for lib in tables.filters.all_complibs
            if ":" not in lib and tables.which_lib_version(lib)
        ]
        assert "zlib" in libraries, libraries
        for lib in libraries:
            packed = str(Path(folder) / f"{lib.replace(':', '-')}.h5")
            frame.to_hdf(packed, key="t", format="table", complib=lib, complevel=5)
            testing.assert_frame_equal(pd.read_hdf(packed, "t"), frame, obj=lib)
        print(f"compression libraries: {', '.join(libraries)}")
