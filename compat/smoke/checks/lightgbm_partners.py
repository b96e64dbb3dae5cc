"""lightgbm with scipy (sparse CSR/CSC input to its native and scikit-learn
APIs, sparse SHAP contributions) and with matplotlib (its plotting helpers,
rendered to PNG and SVG). Small data, few iterations, one thread."""

from __future__ import annotations

from typing import Any

from . import check, close, mod, render
from .shims import lgb_quiet_train

PARAMS = {
    "objective": "regression",
    "learning_rate": 0.3,
    "num_leaves": 7,
    "min_data_in_leaf": 5,
    "num_threads": 1,
    "verbose": -1,
    "seed": 0,
}


def _data() -> tuple[Any, Any]:
    np = mod("numpy")
    rng = np.random.RandomState(7)
    x = rng.uniform(0, 1, (200, 6))
    x[x < 0.5] = 0.0  # half the entries are zero: worth storing sparse
    y = 3 * x[:, 0] - 2 * x[:, 1] + x[:, 2] + rng.normal(0, 0.05, 200)
    return x, y


def _dense(values: Any) -> Any:
    sparse = mod("scipy.sparse")
    return values.toarray() if sparse.issparse(values) else values


@check("lightgbm", "scipy", valid={"lightgbm": ">=2.3", "scipy": ">=1.6"})
def check_sparse_input() -> None:
    """Dataset/train from CSR and CSC, predict on both and dense alike, sparse pred_contrib."""
    np = mod("numpy")
    sparse = mod("scipy.sparse")
    lgb = mod("lightgbm")
    x, y = _data()
    csr = sparse.csr_matrix(x)
    reference = None
    for matrix in (csr, sparse.csc_matrix(x)):
        booster = lgb.train(
            PARAMS, lgb.Dataset(matrix, label=y), num_boost_round=30, **lgb_quiet_train()
        )
        predicted = booster.predict(matrix)
        assert predicted.shape == (200,)
        assert close(booster.predict(x), predicted, 1e-10)
        assert close(booster.predict(csr), predicted, 1e-10)
        if reference is None:
            reference = predicted
        assert close(predicted, reference, 1e-8)
        contributions = _dense(booster.predict(csr, pred_contrib=True))
        assert contributions.shape == (200, 7)
        assert close(contributions.sum(axis=1), booster.predict(csr, raw_score=True), 1e-6)
    assert reference is not None
    assert float(np.corrcoef(reference, y)[0, 1]) > 0.9


@check("lightgbm", "scipy", "scikit-learn", valid={"lightgbm": ">=2.3", "scikit-learn": ">=1.0"})
def check_sklearn_api_sparse() -> None:
    """LGBMRegressor/LGBMClassifier fitted on CSR input, predicting on CSR and dense."""
    sparse = mod("scipy.sparse")
    lgb = mod("lightgbm")
    x, y = _data()
    csr = sparse.csr_matrix(x)
    options = {"n_estimators": 30, "num_leaves": 7, "n_jobs": 1, "random_state": 0, "verbose": -1}
    regressor = lgb.LGBMRegressor(**options).fit(csr, y)
    assert close(regressor.predict(csr), regressor.predict(x), 1e-10)
    labels = (y > y.mean()).astype(int)
    classifier = lgb.LGBMClassifier(**options).fit(csr, labels)
    assert classifier.predict_proba(csr).shape == (200, 2)
    assert (classifier.predict(csr) == labels).mean() > 0.9


@check("lightgbm", "matplotlib", valid={"lightgbm": ">=2.3", "matplotlib": ">=3.3"})
def check_plotting() -> None:
    """plot_importance, plot_metric and plot_split_value_histogram, rendered to PNG and SVG."""
    plt = mod("matplotlib.pyplot")
    lgb = mod("lightgbm")
    x, y = _data()
    history: dict[str, Any] = {}
    train = lgb.Dataset(x[:150], y[:150], feature_name=[f"f{i}" for i in range(6)])
    valid = lgb.Dataset(x[150:], y[150:], reference=train)
    params = dict(PARAMS, metric="l2")
    try:
        callbacks = {"callbacks": [lgb.record_evaluation(history)]}
        booster = lgb.train(
            params,
            train,
            num_boost_round=20,
            valid_sets=[valid],
            valid_names=["valid"],
            **callbacks,
            **lgb_quiet_train(),
        )
        ax = lgb.plot_importance(booster, max_num_features=4)
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert "f0" in labels, labels
        assert len(ax.patches) == 4
        render(ax.figure)

        ax = lgb.plot_metric(history, metric="l2")
        assert len(ax.get_lines()) == 1
        assert len(ax.get_lines()[0].get_ydata()) == 20
        render(ax.figure)

        ax = lgb.plot_split_value_histogram(booster, feature="f0", bins=5)
        assert len(ax.patches) >= 1
        render(ax.figure)
    finally:
        plt.close("all")
