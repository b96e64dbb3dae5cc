"""lightgbm: its native Dataset/train API (libgomp, lib_lightgbm), pandas input
with a categorical column, and its scikit-learn API inside sklearn's machinery.
Small data, few iterations, one thread. Written for lightgbm 2.3 and later
(early stopping through :mod:`.shims`)."""

from __future__ import annotations

from typing import Any

from . import check, close, mod
from .shims import lgb_early_stopping_fit, lgb_early_stopping_train, lgb_quiet_train

PARAMS = {
    "learning_rate": 0.2,
    "num_leaves": 15,
    "min_data_in_leaf": 5,
    "num_threads": 1,
    "verbose": -1,
    "seed": 0,
    "deterministic": True,
}


def _regression(n: int = 300, seed: int = 0) -> tuple[Any, Any]:
    np = mod("numpy")
    rng = np.random.RandomState(seed)
    x = rng.uniform(-2, 2, (n, 4))
    y = 3 * x[:, 0] - 2 * x[:, 1] ** 2 + rng.normal(0, 0.5, n)
    return x, y


def _r2(truth: Any, predicted: Any) -> float:
    np = mod("numpy")
    return float(1 - ((truth - predicted) ** 2).sum() / ((truth - np.mean(truth)) ** 2).sum())


@check("lightgbm", "numpy", valid={"lightgbm": ">=2.3"})
def check_native_train() -> None:
    """Dataset/train with a validation set, early stopping and evaluation callbacks, save/load."""
    lgb = mod("lightgbm")
    x, y = _regression()
    train = lgb.Dataset(x[:240], y[:240], free_raw_data=False)
    valid = lgb.Dataset(x[240:], y[240:], reference=train)
    history: dict[str, Any] = {}
    booster = lgb.train(
        dict(PARAMS, objective="regression", metric="l2"),
        train,
        num_boost_round=300,
        valid_sets=[valid],
        valid_names=["valid"],
        **lgb_early_stopping_train(10, history),
    )
    assert 0 < booster.best_iteration < 300, booster.best_iteration
    assert len(history["valid"]["l2"]) >= booster.best_iteration
    predicted = booster.predict(x[240:], num_iteration=booster.best_iteration)
    assert predicted.shape == (60,)
    assert _r2(y[240:], predicted) > 0.8
    assert booster.feature_importance().shape == (4,)
    assert booster.num_feature() == 4
    reloaded = lgb.Booster(model_str=booster.model_to_string())
    assert close(reloaded.predict(x[240:], num_iteration=booster.best_iteration), predicted, 1e-10)


@check("lightgbm", "pandas", valid={"lightgbm": ">=2.3", "pandas": ">=1.0"})
def check_pandas_categorical() -> None:
    """A DataFrame with a pandas categorical column: used as categorical, remapped at predict."""
    np = mod("numpy")
    pd = mod("pandas")
    lgb = mod("lightgbm")
    rng = np.random.RandomState(2)
    n = 300
    shop = rng.choice(["north", "south", "east", "west"], n)
    effect = {"north": 5.0, "south": -5.0, "east": 1.0, "west": -1.0}
    frame = pd.DataFrame({"x": rng.uniform(0, 1, n), "shop": pd.Categorical(shop)})
    target = frame["x"] * 2 + np.array([effect[s] for s in shop]) + rng.normal(0, 0.1, n)
    booster = lgb.train(
        dict(PARAMS, objective="regression", min_data_per_group=5, cat_smooth=1.0),
        lgb.Dataset(frame, label=target),
        num_boost_round=40,
    )
    assert booster.feature_name() == ["x", "shop"]
    assert booster.pandas_categorical == [sorted(effect)]
    predicted = booster.predict(frame)
    assert _r2(target.to_numpy(), predicted) > 0.95
    reordered = frame.assign(
        shop=frame["shop"].cat.reorder_categories(["west", "south", "north", "east"])
    )
    assert close(booster.predict(reordered), predicted, 1e-10)


@check("lightgbm", "scikit-learn", valid={"lightgbm": ">=2.3", "scikit-learn": ">=1.0"})
def check_sklearn_api() -> None:
    """LGBMClassifier/LGBMRegressor: fit, predict(_proba), eval_set early stopping, clone."""
    np = mod("numpy")
    lgb = mod("lightgbm")
    base = mod("sklearn.base")
    rng = np.random.RandomState(3)
    x = rng.normal(0, 1, (300, 5))
    labels = (x[:, 0] + x[:, 1] > 0).astype(int)
    options = {"n_estimators": 40, "num_leaves": 15, "n_jobs": 1, "random_state": 0, "verbose": -1}
    clf = lgb.LGBMClassifier(**options).fit(x, labels)
    assert base.is_classifier(clf)
    assert list(clf.classes_) == [0, 1]
    proba = clf.predict_proba(x)
    assert proba.shape == (300, 2)
    assert close(proba.sum(axis=1), np.ones(300))
    assert (clf.predict(x) == labels).mean() > 0.95
    copy = base.clone(clf)
    assert copy.get_params()["n_estimators"] == 40
    assert not hasattr(copy, "booster_")

    x_reg, y_reg = _regression()
    reg = lgb.LGBMRegressor(**dict(options, n_estimators=300, learning_rate=0.2))
    reg.fit(
        x_reg[:240],
        y_reg[:240],
        eval_set=[(x_reg[240:], y_reg[240:])],
        **lgb_early_stopping_fit(10),
    )
    assert base.is_regressor(reg)
    assert 0 < reg.best_iteration_ < 300
    assert _r2(y_reg[240:], reg.predict(x_reg[240:])) > 0.8


@check("lightgbm", "scikit-learn", valid={"lightgbm": ">=2.3", "scikit-learn": ">=1.0"})
def check_sklearn_pipeline_cv() -> None:
    """LGBMClassifier inside a sklearn Pipeline, cross_val_score and GridSearchCV."""
    np = mod("numpy")
    lgb = mod("lightgbm")
    pipeline = mod("sklearn.pipeline")
    preprocessing = mod("sklearn.preprocessing")
    selection = mod("sklearn.model_selection")
    rng = np.random.RandomState(4)
    x = rng.normal(0, 1, (240, 5))
    labels = (x[:, 0] - x[:, 2] > 0).astype(int)
    model = pipeline.make_pipeline(
        preprocessing.StandardScaler(),
        lgb.LGBMClassifier(n_estimators=30, num_leaves=7, n_jobs=1, random_state=0, verbose=-1),
    )
    scores = selection.cross_val_score(model, x, labels, cv=3)
    assert scores.shape == (3,)
    assert scores.min() > 0.8, scores
    search = selection.GridSearchCV(model, {"lgbmclassifier__num_leaves": [3, 7]}, cv=2)
    search.fit(x, labels)
    assert search.best_params_["lgbmclassifier__num_leaves"] in (3, 7)
    assert search.predict(x[:10]).shape == (10,)


def _input_kinds(x: Any, y: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The kinds of data and labels lightgbm's Dataset documents it takes."""
    np = mod("numpy")
    data: dict[str, Any] = {
        "float64 array": x,
        "float32 array": x.astype(np.float32),
        "Fortran array": np.asfortranarray(x),
    }
    labels: dict[str, Any] = {
        "float array": y,
        "int array": (y > np.median(y)).astype(np.int64) * 2,
        "list": y.tolist(),
    }
    try:
        pd = mod("pandas")
    except ImportError:
        return data, labels
    data["DataFrame"] = pd.DataFrame(x, columns=[f"c{i}" for i in range(x.shape[1])])
    labels["Series"] = pd.Series(y)
    return data, labels


@check("lightgbm", "numpy", valid={"lightgbm": ">=2.3"})
def check_native_input_kinds() -> None:
    """train and cv on every kind of data (arrays of each layout and dtype, frames) and of
    labels (arrays, lists, Series) the native Dataset documents, with weights."""
    np = mod("numpy")
    lgb = mod("lightgbm")
    x, y = _regression(120, seed=5)
    data, labels = _input_kinds(x, y)
    params = dict(PARAMS, objective="regression", min_data_in_leaf=3)
    reference = None
    for data_kind, values in data.items():
        for label_kind, label in labels.items():
            weights = np.ones(len(y)) if label_kind == "list" else None
            dataset = lgb.Dataset(values, label=label, weight=weights, free_raw_data=False)
            booster = lgb.train(params, dataset, num_boost_round=5, **lgb_quiet_train())
            predicted = booster.predict(x)
            assert predicted.shape == (120,), (data_kind, label_kind)
            if label_kind == "float array":
                if reference is None:
                    reference = predicted
                assert close(predicted, reference, 1e-5), (data_kind, label_kind)
    results = lgb.cv(
        params,
        lgb.Dataset(data["float32 array"], label=labels["list"]),
        num_boost_round=5,
        nfold=3,
        stratified=False,
        seed=0,
    )
    curve = next(v for k, v in results.items() if k.endswith("l2-mean"))
    assert len(curve) == 5
    assert curve[-1] < curve[0]
