"""scikit-learn on scipy: sparse inputs, the sparse solvers, ARPACK eigen
paths, HiGHS, scipy.optimize under the linear models; pipelines and CV.
Written for scikit-learn 1.0 and later."""

from __future__ import annotations

from typing import Any

from . import check, close, mod
from .shims import one_hot_encoder


def _classification(n: int = 200, d: int = 8, seed: int = 0) -> tuple[Any, Any]:
    """Nearly separable two-class data, the same on every numpy."""
    np = mod("numpy")
    rng = np.random.RandomState(seed)
    x = rng.standard_normal((n, d))
    y = (x @ np.linspace(1.0, -1.0, d) + 0.1 * rng.standard_normal(n) > 0).astype(int)
    return x, y


@check("scikit-learn", "scipy", valid={"scikit-learn": ">=1.0", "scipy": ">=1.6"})
def check_sparse_linear_models() -> None:
    """LogisticRegression (lbfgs) and Ridge (sparse_cg, lsqr) fitted on CSR input."""
    np = mod("numpy")
    sparse = mod("scipy.sparse")
    linear = mod("sklearn.linear_model")
    x, y = _classification()
    xs = sparse.csr_matrix(np.where(np.abs(x) > 0.3, x, 0.0))
    assert sparse.issparse(xs)
    assert xs.nnz < x.size
    clf = linear.LogisticRegression(solver="lbfgs", max_iter=500).fit(xs, y)
    assert clf.score(xs, y) >= 0.9
    assert clf.n_iter_[0] < 500
    proba = clf.predict_proba(xs)
    assert proba.shape == (200, 2)
    assert close(proba.sum(axis=1), np.ones(200))

    true_coef = np.arange(1.0, 9.0)
    target = xs @ true_coef + 0.5
    with_intercept = linear.Ridge(alpha=1e-8, solver="sparse_cg", tol=1e-10).fit(xs, target)
    assert close(with_intercept.coef_, true_coef, 1e-4)
    assert close(with_intercept.intercept_, 0.5, 1e-4)
    through_origin = linear.Ridge(alpha=1e-8, solver="lsqr", fit_intercept=False, tol=1e-10)
    through_origin.fit(xs, target - 0.5)
    assert close(through_origin.coef_, true_coef, 1e-4)


@check("scikit-learn", "scipy", valid={"scikit-learn": ">=1.0", "scipy": ">=1.6"})
def check_eigen_solvers() -> None:
    """TruncatedSVD and PCA with ARPACK, KernelPCA (arpack vs dense), SpectralEmbedding."""
    np = mod("numpy")
    sparse = mod("scipy.sparse")
    decomposition = mod("sklearn.decomposition")
    manifold = mod("sklearn.manifold")
    x, _ = _classification()
    xs = sparse.csr_matrix(np.where(np.abs(x) > 0.3, x, 0.0))

    svd = decomposition.TruncatedSVD(n_components=3, algorithm="arpack", random_state=0).fit(xs)
    dense_singular = np.linalg.svd(xs.toarray(), compute_uv=False)[:3]
    assert close(svd.singular_values_, dense_singular, 1e-6)
    assert svd.transform(xs).shape == (200, 3)

    arpack = decomposition.PCA(n_components=3, svd_solver="arpack", random_state=0).fit(x)
    full = decomposition.PCA(n_components=3, svd_solver="full").fit(x)
    assert close(arpack.explained_variance_, full.explained_variance_, 1e-6)

    subset = x[:80]
    kpca = {"n_components": 2, "kernel": "rbf", "gamma": 0.1, "random_state": 0}
    by_arpack = decomposition.KernelPCA(eigen_solver="arpack", **kpca).fit_transform(subset)
    by_dense = decomposition.KernelPCA(eigen_solver="dense", **kpca).fit_transform(subset)
    assert by_arpack.shape == (80, 2)
    assert close(np.abs(by_arpack), np.abs(by_dense), 1e-5)

    embedding = manifold.SpectralEmbedding(
        n_components=2, affinity="rbf", gamma=0.1, eigen_solver="arpack", random_state=0
    ).fit_transform(subset)
    assert embedding.shape == (80, 2)
    assert np.isfinite(embedding).all()
    assert embedding.std(axis=0).min() > 0


@check("scikit-learn", "scipy", valid={"scikit-learn": ">=1.0", "scipy": ">=1.6"})
def check_scipy_backed_estimators() -> None:
    """QuantileRegressor (HiGHS), IsotonicRegression, KernelDensity, KD-tree neighbours,
    multinomial LogisticRegression (scipy's L-BFGS-B)."""
    np = mod("numpy")
    sklearn_linear = mod("sklearn.linear_model")
    isotonic = mod("sklearn.isotonic")
    neighbors = mod("sklearn.neighbors")
    rng = np.random.RandomState(0)

    xs = np.linspace(0, 10, 101)
    ys = 2 * xs + 1 + rng.laplace(0, 0.3, 101)
    ys[::10] += 50  # outliers that the median ignores
    # "highs" explicitly: the default was interior-point, which scipy 1.11 removed.
    median = sklearn_linear.QuantileRegressor(quantile=0.5, alpha=0.0, solver="highs")
    median.fit(xs.reshape(-1, 1), ys)
    assert abs(median.coef_[0] - 2) < 0.1
    assert abs(median.intercept_ - 1) < 0.5

    fitted = isotonic.IsotonicRegression().fit_transform([1, 2, 3, 4], [1, 3, 2, 4])
    assert close(fitted, [1.0, 2.5, 2.5, 4.0])
    increasing = isotonic.IsotonicRegression(out_of_bounds="clip").fit(
        xs, xs + rng.normal(0, 1, 101)
    )
    assert (np.diff(increasing.predict(xs)) >= 0).all()
    assert increasing.predict([20.0])[0] <= 12

    samples = rng.normal(0, 1, (2000, 1))
    kde = neighbors.KernelDensity(kernel="gaussian", bandwidth=0.2).fit(samples)
    assert abs(np.exp(kde.score_samples([[0.0]]))[0] - 0.39) < 0.05
    grid = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [5.0, 5.0]])
    dist, idx = (
        neighbors.NearestNeighbors(n_neighbors=2, algorithm="kd_tree")
        .fit(grid)
        .kneighbors([[0.1, 0.0]])
    )
    assert idx[0].tolist() == [0, 1]
    assert close(dist[0], [0.1, 0.9])

    centers = np.array([[0.0, 4.0], [4.0, 0.0], [-4.0, -4.0]])
    points = np.vstack([c + rng.normal(0, 1, (60, 2)) for c in centers])
    labels = np.repeat([0, 1, 2], 60)
    multi = sklearn_linear.LogisticRegression(solver="lbfgs", max_iter=300).fit(points, labels)
    assert multi.score(points, labels) > 0.95
    assert multi.coef_.shape == (3, 2)


@check("scikit-learn", "scipy", valid={"scikit-learn": ">=1.0", "scipy": ">=1.6"})
def check_pipelines_cv() -> None:
    """train_test_split, scaled pipeline, cross_val_score, GridSearchCV, sparse one-hot."""
    np = mod("numpy")
    sparse = mod("scipy.sparse")
    linear = mod("sklearn.linear_model")
    pipeline = mod("sklearn.pipeline")
    preprocessing = mod("sklearn.preprocessing")
    selection = mod("sklearn.model_selection")
    x, y = _classification(240)
    x_train, x_test, y_train, y_test = selection.train_test_split(
        x * 50 + 7, y, test_size=0.25, random_state=0, stratify=y
    )
    assert x_train.shape == (180, 8)
    assert x_test.shape == (60, 8)
    assert abs(y_train.mean() - y.mean()) < 0.05
    model = pipeline.make_pipeline(preprocessing.StandardScaler(), linear.LogisticRegression())
    assert model.fit(x_train, y_train).score(x_test, y_test) >= 0.85
    scaler = model.steps[0][1]
    assert close(scaler.transform(x_train).mean(axis=0), np.zeros(8), 1e-8)
    scores = selection.cross_val_score(model, x, y, cv=3)
    assert scores.shape == (3,)
    assert scores.min() > 0.8
    search = selection.GridSearchCV(model, {"logisticregression__C": [0.01, 1.0]}, cv=2).fit(x, y)
    assert search.best_params_["logisticregression__C"] in (0.01, 1.0)

    colours = np.array(
        [["red", "s"], ["blue", "m"], ["red", "l"], ["green", "m"]] * 10, dtype=object
    )
    encoder = one_hot_encoder(handle_unknown="ignore")
    encoded = encoder.fit_transform(colours)
    assert sparse.issparse(encoded)
    assert encoded.shape == (40, 6)
    assert encoded.sum() == 80
    assert encoder.transform([["purple", "s"]]).toarray().tolist() == [[0, 0, 0, 0, 0, 1]]
    chained = pipeline.make_pipeline(one_hot_encoder(), linear.LogisticRegression())
    hot = (colours[:, 0] == "red").astype(int)
    assert chained.fit(colours, hot).score(colours, hot) == 1.0
