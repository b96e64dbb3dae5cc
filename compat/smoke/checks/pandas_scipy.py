"""pandas' scipy-backed features, as the installed releases enumerate them:
every window function of ``scipy.signal.windows`` as a rolling ``win_type``,
every scipy interpolation method pandas lists, the correlation methods, the
sparse accessor's conversions to and from ``scipy.sparse``.

A ValueError raised by pandas itself (a window type or method this pandas does
not offer) is a documented gap, not a break; see :func:`breaks_stack`.
"""

from __future__ import annotations

import inspect
import traceback
import warnings
from typing import Any

from . import breaks_stack, check, close, mod

VALID = {"pandas": ">=1.3", "scipy": ">=1.6"}

# Values for the shape parameters some windows require (by scipy's own names).
WINDOW_PARAMETERS: dict[str, Any] = {
    "std": 1.5,
    "beta": 2.0,
    "alpha": 0.5,
    "p": 1.5,
    "sig": 2.0,
    "at": 50,
    "tau": 2.0,
    "a": [0.5, 0.5],
    "NW": 2.5,
    "nbar": 4,
    "sll": 30,
}

# Before pandas enumerated them in pandas.core.missing (every release since 1.0 does).
SCIPY_METHODS = ("nearest", "zero", "slinear", "quadratic", "cubic", "barycentric", "krogh")


def _report(broken: list[str], what: str, exc: BaseException) -> None:
    print(f"--- {what} ---")
    traceback.print_exception(type(exc), exc, exc.__traceback__)
    broken.append(f"{what}: {traceback.format_exception_only(type(exc), exc)[-1].strip()}")


def _conclude(broken: list[str], what: str, tried: int) -> None:
    print(f"{tried} {what} tried; {len(broken)} broken")
    if broken:
        raise AssertionError(f"{len(broken)} of {tried} {what} broke: " + "; ".join(broken))
    assert tried >= 3, f"only {tried} {what} tried"


@check("pandas", "scipy", valid=VALID)
def check_rolling_window_types() -> None:
    """Every scipy.signal.windows function as rolling(win_type=...): weighted mean and sum."""
    np = mod("numpy")
    pd = mod("pandas")
    windows = mod("scipy.signal.windows")
    series = pd.Series(np.sin(np.linspace(0, 6, 40)) + np.linspace(0, 1, 40))
    values = series.to_numpy()
    size = 5
    broken: list[str] = []
    refused: dict[str, BaseException] = {}
    tried = 0
    for name in getattr(windows, "__all__", ()):
        function = getattr(windows, name, None)
        if name == "get_window" or not callable(function):
            continue
        signature = inspect.signature(function)
        required = [
            p.name
            for p in list(signature.parameters.values())[1:]
            if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
        if any(r not in WINDOW_PARAMETERS for r in required):
            continue
        kwargs = {r: WINDOW_PARAMETERS[r] for r in required}
        try:
            weights = np.asarray(function(size, **kwargs), dtype=float)
        except Exception:
            continue
        if weights.shape != (size,) or not np.isfinite(weights).all() or weights.sum() == 0:
            continue
        tried += 1
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rolled = series.rolling(size, win_type=name)
                mean = rolled.mean(**kwargs)
                total = rolled.sum(**kwargs)
            expected = np.convolve(values, weights[::-1], mode="valid")
            assert close(total.to_numpy()[size - 1 :], expected, 1e-8), name
            assert close(mean.to_numpy()[size - 1 :], expected / weights.sum(), 1e-8), name
            assert mean.isna().sum() == size - 1
        except Exception as exc:
            if breaks_stack(exc, partners=("scipy", "numpy")):
                _report(broken, f"win_type={name}", exc)
            else:
                refused[name] = exc
    # pandas may refuse a window newer than itself, but refusing boxcar, which
    # every scipy has, means it cannot reach scipy's windows at all.
    if "boxcar" in refused:
        for name, error in refused.items():
            _report(broken, f"win_type={name} (pandas reaches no scipy window)", error)
    _conclude(broken, "window types", tried)


@check("pandas", "scipy", valid=VALID)
def check_interpolation_methods() -> None:
    """Series.interpolate with every scipy method pandas lists, on a numeric index."""
    np = mod("numpy")
    pd = mod("pandas")
    missing = mod("pandas.core.missing")
    methods = (*getattr(missing, "SP_METHODS", SCIPY_METHODS), "linear", "index")
    x = np.linspace(0.0, 4.0, 21)
    truth = pd.Series(x**2, index=x)
    holed = truth.copy()
    gaps = [3, 4, 9, 15]
    holed.iloc[gaps] = np.nan
    options = {"spline": {"order": 2}, "polynomial": {"order": 2}}
    broken: list[str] = []
    tried = 0
    for method in methods:
        tried += 1
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                filled = holed.interpolate(method=method, **options.get(method, {}))
            assert filled.notna().all(), f"{method} left gaps"
            kept = [i for i in range(len(x)) if i not in gaps]
            assert close(filled.iloc[kept].to_numpy(), truth.iloc[kept].to_numpy(), 1e-12)
            assert float(np.abs(filled - truth).max()) < 2.0, f"{method} far off"
        except Exception as exc:
            if breaks_stack(exc, partners=("scipy", "numpy")):
                _report(broken, f"interpolate(method={method!r})", exc)
    _conclude(broken, "interpolation methods", tried)


@check("pandas", "scipy", valid=VALID)
def check_corr_methods() -> None:
    """DataFrame.corr/Series.corr: pearson, spearman, kendall (scipy.stats) agree with scipy."""
    np = mod("numpy")
    pd = mod("pandas")
    stats = mod("scipy.stats")
    rng = np.random.RandomState(5)
    a = rng.normal(0, 1, 50)
    frame = pd.DataFrame({"a": a, "b": a * 2 + rng.normal(0, 0.5, 50), "c": rng.normal(0, 1, 50)})
    frame["n"] = pd.array(np.round(frame["b"] * 10).astype(int), dtype="Int64")
    reference = {"pearson": "pearsonr", "spearman": "spearmanr", "kendall": "kendalltau"}
    for method, function in reference.items():
        matrix = frame[["a", "b", "c"]].corr(method=method)
        assert matrix.shape == (3, 3)
        assert close(np.diag(matrix.to_numpy()), np.ones(3))
        expected = getattr(stats, function)(frame["a"], frame["b"])[0]
        assert close(matrix.loc["a", "b"], expected, 1e-10), method
        assert close(frame["a"].corr(frame["c"], method=method), matrix.loc["a", "c"], 1e-10)
        nullable = frame["a"].corr(frame["n"].astype("float64"), method=method)
        assert nullable > 0.5, (method, nullable)


@check("pandas", "scipy", valid=VALID)
def check_sparse_accessor() -> None:
    """DataFrame.sparse.from_spmatrix / to_coo and Series.sparse.to_coo with scipy.sparse.

    The stored entries must come through in place. The unstored ones take the frame's
    own fill value: 0 in pandas before 3.0 and again after 3.0.6, NaN for float
    matrices in pandas 3.0.0 to 3.0.6 (pandas-dev/pandas#59064, reverted by #69115).
    That is pandas' choice with every scipy, not a break between the two.
    """
    np = mod("numpy")
    pd = mod("pandas")
    sparse = mod("scipy.sparse")
    dense = np.array([[0.0, 1.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 3.0], [0.0, 4.0, 0.0]])
    for fmt in ("csr", "csc", "coo"):
        matrix = getattr(sparse, f"{fmt}_matrix")(dense)
        frame = pd.DataFrame.sparse.from_spmatrix(matrix, columns=["x", "y", "z"])
        assert frame.shape == (4, 3)
        assert all(isinstance(t, pd.SparseDtype) for t in frame.dtypes)
        assert close(frame.sparse.density, 4 / 12)
        fill = frame.dtypes.iloc[0].fill_value
        assert fill == 0 or fill != fill, f"fill value {fill!r}"  # zero or NaN
        expected = np.where(dense != 0, dense, fill)
        assert np.allclose(frame.sparse.to_dense().to_numpy(), expected, equal_nan=True), fmt
        back = frame.sparse.to_coo()
        assert sparse.issparse(back)
        assert close(back.toarray(), dense)
    series = pd.Series(
        [1.0, 0.0, 2.0, 0.0],
        index=pd.MultiIndex.from_tuples([(0, "a"), (0, "b"), (1, "a"), (1, "b")]),
        dtype=pd.SparseDtype("float64", 0.0),
    )
    coo, rows, columns = series.sparse.to_coo(row_levels=[0], column_levels=[1])
    assert coo.shape == (2, 2)
    assert close(coo.toarray(), [[1.0, 0.0], [2.0, 0.0]])
    # Labels are scalars or 1-tuples depending on the release.
    assert [r[0] if isinstance(r, tuple) else r for r in rows] == [0, 1]
    assert [c[0] if isinstance(c, tuple) else c for c in columns] == ["a", "b"]
