"""numpy on its own: the 2.0 behaviour changes, as the installed version
documents them, and the compiled parts (BLAS/LAPACK, FFT, random)."""

from __future__ import annotations

import pickle

from . import check, close, installed, mod

# Present in every numpy 1.x, removed by NumPy 2.0 (NEP 52). Downstream
# packages that still use them fail at runtime: the cross-package checks
# exercise those paths.
REMOVED_IN_2 = ("float_", "complex_", "NaN", "Inf", "unicode_", "string_", "cfloat", "PINF")
REMOVED_IN_2_DEPRECATED_IN_1_25 = ("product", "cumproduct", "sometrue", "alltrue", "round_")


@check("numpy", valid={"numpy": ">=1.20"})
def check_copy_semantics() -> None:
    """np.array(copy=False) never copies in 2.x (raises instead), copies if needed in 1.x."""
    np = mod("numpy")
    base = np.arange(6, dtype=np.float64)
    assert np.asarray(base) is base
    assert np.shares_memory(np.array(base, copy=False), base)
    converted = np.asarray(base, dtype=np.float32)
    assert converted.dtype == np.float32
    assert not np.shares_memory(converted, base)
    if installed("numpy", ">=2"):
        for needs_copy, dtype in (([1.0, 2.0], None), (base, np.float32)):
            try:
                np.array(needs_copy, dtype=dtype, copy=False)
            except ValueError:
                continue
            raise AssertionError("numpy 2: np.array(copy=False) made a copy instead of raising")
        assert np.array([1.0, 2.0], copy=None).shape == (2,)

        # numpy 2 hands copy=False on to __array__ implementations that accept it.
        seen: list[object] = []

        class Wrapped:
            def __array__(self, dtype: object = None, copy: object = None) -> object:
                seen.append(copy)
                return base if not copy else base.copy()

        assert np.shares_memory(np.array(Wrapped(), copy=False), base)
        assert seen == [False], seen
        assert not np.shares_memory(np.array(Wrapped(), copy=True), base)
    else:
        silently_copied = np.array([1.0, 2.0], copy=False)
        assert silently_copied.tolist() == [1.0, 2.0]
        converted = np.array(base, dtype=np.float32, copy=False)
        assert converted.dtype == np.float32
        assert not np.shares_memory(converted, base)


@check("numpy", valid={"numpy": ">=1.20"})
def check_removed_aliases() -> None:
    """The aliases NumPy 2.0 removed are gone in 2.x and present in 1.x."""
    np = mod("numpy")
    if installed("numpy", ">=2"):
        for alias in REMOVED_IN_2 + REMOVED_IN_2_DEPRECATED_IN_1_25:
            try:
                getattr(np, alias)
            except AttributeError:
                continue
            raise AssertionError(f"numpy {np.__version__} still has np.{alias}")
        assert np.float64(1.5) + np.nan != 0  # the spellings that replace them
        assert np.isinf(np.inf)
        assert np.str_("a") == "a"
        assert np.bytes_(b"a") == b"a"
    else:
        for alias in REMOVED_IN_2:
            assert hasattr(np, alias), f"numpy {np.__version__} lacks np.{alias}"
        assert np.float_ is np.float64
        assert np.isnan(np.NaN)


@check("numpy", valid={"numpy": ">=1.20"})
def check_promotion() -> None:
    """Type promotion: NEP 50 (weak Python scalars) in 2.x, value-based casting in 1.x."""
    np = mod("numpy")
    small = np.array([1, 2], dtype=np.int8)
    assert (small + 1).dtype == np.int8
    assert (np.array([1.0], dtype=np.float32) + 3.0).dtype == np.float32
    assert np.result_type(np.int8, np.uint8) == np.int16
    assert (np.float32(1) + np.float64(1)).dtype == np.float64
    if installed("numpy", ">=2"):
        assert (np.float32(3) + 3.0).dtype == np.float32
        assert (np.uint8(1) + 2).dtype == np.uint8
        try:
            small + 300
        except OverflowError:
            pass
        else:
            raise AssertionError("numpy 2: int8 array + 300 did not raise OverflowError")
    else:
        assert (np.float32(3) + 3.0).dtype == np.float64
        assert (small + 300).dtype == np.int16


@check("numpy", valid={"numpy": ">=1.20"})
def check_linalg_fft_random() -> None:
    """BLAS/LAPACK (solve, eigh, svd, lstsq, qr), FFT and the random generators compute right."""
    np = mod("numpy")
    rng = np.random.default_rng(0)
    a = rng.standard_normal((40, 40))
    spd = a @ a.T + 40 * np.eye(40)
    b = rng.standard_normal(40)
    x = np.linalg.solve(spd, b)
    assert close(spd @ x, b)
    w, v = np.linalg.eigh(spd)
    assert (w > 0).all()
    assert close(v @ np.diag(w) @ v.T, spd, 1e-8)
    u, s, vt = np.linalg.svd(a)
    assert close((u * s) @ vt, a, 1e-8)
    assert (np.diff(s) <= 0).all()
    q, r = np.linalg.qr(a)
    assert close(q @ r, a, 1e-8)
    coef = np.linalg.lstsq(a[:, :3], a[:, :3] @ np.array([1.0, -2.0, 3.0]), rcond=None)[0]
    assert close(coef, [1.0, -2.0, 3.0])
    assert close(np.linalg.det(np.diag([2.0, 3.0])), 6.0)
    assert close(np.linalg.inv(spd) @ spd, np.eye(40), 1e-8)
    assert close(np.linalg.cholesky(spd) @ np.linalg.cholesky(spd).T, spd, 1e-8)

    t = np.arange(256) / 256
    spectrum = np.abs(np.fft.rfft(np.sin(2 * np.pi * 8 * t)))
    assert int(spectrum.argmax()) == 8
    assert close(np.fft.ifft(np.fft.fft(b)).real, b)

    draws = rng.normal(5.0, 1.0, size=20000)
    assert abs(draws.mean() - 5.0) < 0.05
    assert abs(draws.std() - 1.0) < 0.05
    legacy = np.random.RandomState(42).randint(0, 100, size=5)
    assert legacy.tolist() == np.random.RandomState(42).randint(0, 100, size=5).tolist()


@check("numpy", valid={"numpy": ">=1.20"})
def check_dtypes_and_ufuncs() -> None:
    """datetime64, strings, structured dtypes, einsum, sorting, pickling behave."""
    np = mod("numpy")
    days = np.arange("2024-02-27", "2024-03-02", dtype="datetime64[D]")
    assert len(days) == 4
    assert str(days[2]) == "2024-02-29"
    assert (days[-1] - days[0]) == np.timedelta64(3, "D")

    words = np.array(["numpy", "scipy", "pandas"])
    assert words.dtype.kind == "U"
    assert np.char.upper(words).tolist()[0] == "NUMPY"
    assert sorted(np.unique(words).tolist()) == ["numpy", "pandas", "scipy"]

    people = np.array(
        [("ada", 36, 1.7), ("bob", 25, 1.8)], dtype=[("name", "U8"), ("age", "i4"), ("h", "f8")]
    )
    assert people["age"].sum() == 61
    assert people[np.argsort(people["age"])]["name"][0] == "bob"

    m = np.arange(12.0).reshape(3, 4)
    assert close(np.einsum("ij,kj->ik", m, m), m @ m.T)
    assert close(np.percentile(np.arange(101), [25, 50]), [25.0, 50.0])
    counts, _ = np.histogram(np.arange(10), bins=5)
    assert counts.tolist() == [2, 2, 2, 2, 2]
    assert np.float16(0.5) * 2 == 1
    assert np.complex128(1j) ** 2 == -1

    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.array([1.0, 0.0]) / np.array([0.0, 0.0])
    assert np.isinf(ratios[0])
    assert np.isnan(ratios[1])

    restored = pickle.loads(pickle.dumps(people, protocol=pickle.HIGHEST_PROTOCOL))
    assert (restored == people).all()
    assert restored.dtype == people.dtype
