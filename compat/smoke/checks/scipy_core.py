"""scipy on its own: enough of each subpackage to load and run its compiled
code (LAPACK/BLAS, SuperLU, ARPACK, HiGHS, FITPACK, Cython stats, signal)."""

from __future__ import annotations

from . import check, close, mod


@check("scipy", valid={"scipy": ">=1.6"})
def check_linalg() -> None:
    """scipy.linalg solve, eigh, svd, lu, cholesky, expm and the raw LAPACK wrappers."""
    np = mod("numpy")
    linalg = mod("scipy.linalg")
    rng = np.random.default_rng(1)
    a = rng.standard_normal((30, 30))
    spd = a @ a.T + 30 * np.eye(30)
    b = rng.standard_normal(30)
    assert close(spd @ linalg.solve(spd, b, assume_a="pos"), b)
    w, v = linalg.eigh(spd)
    assert close(v @ np.diag(w) @ v.T, spd, 1e-8)
    assert close(linalg.eigh(spd, eigvals_only=True)[:3], w[:3], 1e-8)
    u, s, vt = linalg.svd(a)
    assert close((u * s) @ vt, a, 1e-8)
    p, lower, upper = linalg.lu(a)
    assert close(p @ lower @ upper, a, 1e-8)
    c = linalg.cholesky(spd, lower=True)
    assert close(c @ c.T, spd, 1e-8)
    assert close(linalg.expm(np.zeros((3, 3))), np.eye(3))
    assert close(linalg.expm(np.array([[0.0, 1.0], [0.0, 0.0]])), [[1.0, 1.0], [0.0, 1.0]])
    (getrf,) = linalg.get_lapack_funcs(("getrf",), (a,))
    _, _, info = getrf(a)
    assert info == 0
    assert close(linalg.blas.dgemm(1.0, a, a), a @ a, 1e-8)


@check("scipy", valid={"scipy": ">=1.6"})
def check_sparse() -> None:
    """CSR/CSC arithmetic, spsolve (SuperLU), eigsh (ARPACK), lsqr and cg."""
    np = mod("numpy")
    sparse = mod("scipy.sparse")
    splinalg = mod("scipy.sparse.linalg")
    n = 200
    lap = sparse.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(n, n), format="csr")
    assert lap.nnz == 3 * n - 2
    assert lap.format == "csr"
    ones = np.ones(n)
    assert close(lap @ ones, np.r_[1.0, np.zeros(n - 2), 1.0])
    assert (lap - lap.T).nnz == 0
    assert close(lap.tocsc().sum(axis=0), lap.sum(axis=1).T)
    product = (lap @ lap).tocsr()
    assert product.shape == (n, n)
    assert product[0, 0] == 5.0
    x = splinalg.spsolve(lap.tocsc(), ones)
    assert close(lap @ x, ones, 1e-8)
    vals = splinalg.eigsh(lap, k=3, which="LA", return_eigenvectors=False)
    expected = 2 - 2 * np.cos(np.pi * np.arange(n - 2, n + 1) / (n + 1))
    assert close(np.sort(vals), expected, 1e-6)
    x_lsqr = splinalg.lsqr(lap, ones, atol=1e-12, btol=1e-12, iter_lim=5000)[0]
    assert close(lap @ x_lsqr, ones, 1e-4)
    x_cg, info = splinalg.cg(lap + sparse.identity(n), ones, maxiter=500)
    assert info == 0
    assert close((lap + sparse.identity(n)) @ x_cg, ones, 1e-3)


@check("scipy", valid={"scipy": ">=1.6"})
def check_optimize() -> None:
    """minimize (BFGS, L-BFGS-B, Nelder-Mead), linprog (HiGHS), root, curve_fit."""
    np = mod("numpy")
    optimize = mod("scipy.optimize")
    start = np.array([-1.2, 1.0, 0.5])
    for method in ("BFGS", "L-BFGS-B", "Nelder-Mead"):
        options = (
            {"maxiter": 5000, "xatol": 1e-8, "fatol": 1e-10} if method == "Nelder-Mead" else {}
        )
        res = optimize.minimize(
            optimize.rosen,
            start,
            jac=None if method == "Nelder-Mead" else optimize.rosen_der,
            method=method,
            options=options,
        )
        assert res.success, (method, res.message)
        assert close(res.x, np.ones(3), 1e-3), (method, res.x)
    bounded = optimize.minimize(
        lambda v: (v[0] - 3) ** 2, [0.0], method="L-BFGS-B", bounds=[(0, 2)]
    )
    assert close(bounded.x, [2.0])
    # max x + 2y s.t. x + y <= 4, x + 3y <= 6
    lp = optimize.linprog(
        c=[-1, -2], A_ub=[[1, 1], [1, 3]], b_ub=[4, 6], bounds=[(0, None)] * 2, method="highs"
    )
    assert lp.status == 0
    assert close(lp.x, [3.0, 1.0])
    assert close(lp.fun, -5.0)
    root = optimize.root(lambda v: [v[0] ** 2 - 4, v[1] - 1], [1.0, 0.0])
    assert root.success
    assert close(root.x, [2.0, 1.0])
    assert close(optimize.brentq(lambda t: t**3 - 8, 0, 5), 2.0)
    xs = np.linspace(0, 4, 50)
    params, _ = optimize.curve_fit(lambda t, a, k: a * np.exp(-k * t), xs, 2.5 * np.exp(-1.3 * xs))
    assert close(params, [2.5, 1.3], 1e-4)


@check("scipy", valid={"scipy": ">=1.6"})
def check_stats() -> None:
    """Distributions (pdf/cdf/ppf/rvs), tests, kde, descriptive statistics."""
    np = mod("numpy")
    stats = mod("scipy.stats")
    assert close(stats.norm.cdf(0), 0.5)
    assert close(stats.norm.ppf(0.975), 1.959963984540054)
    assert close(stats.t(df=5).cdf(2.015048373), 0.95, 1e-6)
    assert close(stats.gamma(a=2).mean(), 2.0)
    assert close(stats.poisson(3).pmf(0), np.exp(-3))
    sample = stats.norm(loc=10, scale=2).rvs(size=4000, random_state=3)
    assert abs(sample.mean() - 10) < 0.15
    assert abs(sample.std() - 2) < 0.15
    rng = np.random.default_rng(5)
    left, right = rng.normal(0, 1, 300), rng.normal(1, 1, 300)
    assert stats.ttest_ind(left, right).pvalue < 1e-6
    assert stats.ks_2samp(left, left + 0.0).pvalue > 0.99
    assert close(stats.pearsonr([1, 2, 3, 4], [2, 4, 6, 8])[0], 1.0)
    assert close(stats.spearmanr([1, 2, 3, 4], [1, 3, 2, 4])[0], 0.8)
    kde = stats.gaussian_kde(left)
    assert 0.3 < float(kde(np.array([0.0]))[0]) < 0.5
    fitted_loc, fitted_scale = stats.norm.fit(sample)
    assert abs(fitted_loc - 10) < 0.15
    assert abs(fitted_scale - 2) < 0.15
    assert close(stats.describe([1, 2, 3, 4]).mean, 2.5)


@check("scipy", valid={"scipy": ">=1.6"})
def check_interpolate_signal_misc() -> None:
    """interpolate (splines, FITPACK, griddata), signal filters, fft, special, ndimage, spatial."""
    np = mod("numpy")
    interpolate = mod("scipy.interpolate")
    signal = mod("scipy.signal")
    special = mod("scipy.special")
    ndimage = mod("scipy.ndimage")
    spatial = mod("scipy.spatial")
    fft = mod("scipy.fft")

    xs = np.linspace(0, 2 * np.pi, 40)
    spline = interpolate.CubicSpline(xs, np.sin(xs))
    assert close(spline(1.0), np.sin(1.0), 1e-4)
    tck = interpolate.splrep(xs, np.cos(xs), s=0)
    assert close(interpolate.splev(2.0, tck), np.cos(2.0), 1e-4)
    assert close(interpolate.interp1d(xs, 2 * xs)(1.5), 3.0)
    points = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert close(interpolate.griddata(points, points.sum(axis=1), [[0.5, 0.5]]), [1.0])

    b, a = signal.butter(4, 0.1)
    t = np.linspace(0, 1, 500)
    noisy = np.sin(2 * np.pi * 2 * t) + 0.5 * np.sin(2 * np.pi * 100 * t)
    smooth = signal.filtfilt(b, a, noisy)
    assert np.abs(smooth - np.sin(2 * np.pi * 2 * t))[50:-50].max() < 0.05
    assert close(signal.fftconvolve(np.ones(4), np.ones(3)), [1, 2, 3, 3, 2, 1])
    freqs, power = signal.welch(np.sin(2 * np.pi * 50 * t), fs=500, nperseg=256)
    assert abs(freqs[power.argmax()] - 50) < 2
    peaks, _ = signal.find_peaks(np.sin(2 * np.pi * 3 * t))
    assert len(peaks) == 3

    assert close(special.gamma(5), 24.0)
    assert close(special.erf(0.0), 0.0)
    assert close(special.jv(0, 0.0), 1.0)
    assert close(special.expit(0.0), 0.5)
    assert close(fft.irfft(fft.rfft(t), n=len(t)), t)
    image = np.zeros((9, 9))
    image[4, 4] = 1.0
    assert close(ndimage.gaussian_filter(image, 1.0).sum(), 1.0)
    assert ndimage.label(image > 0)[1] == 1
    tree = spatial.cKDTree(points)
    dist, idx = tree.query([0.9, 0.1])
    assert idx == 1
    assert close(dist, np.sqrt(0.02))
    assert close(spatial.distance.cdist([[0, 0]], [[3, 4]]), [[5.0]])
    assert close(spatial.ConvexHull(points).volume, 1.0)
