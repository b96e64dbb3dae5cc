"""scikit-learn with pandas frames: feature names, set_output, ColumnTransformer
by column name, nullable and categorical dtypes."""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

from . import check, close, installed, mod
from . import sklearn_estimators as estimators
from .shims import enable_copy_on_write, one_hot_encoder


def _frame() -> Any:
    np = mod("numpy")
    pd = mod("pandas")
    rng = np.random.RandomState(1)
    n = 120
    frame = pd.DataFrame(
        {
            "size": rng.normal(10, 3, n),
            "weight": rng.normal(50, 10, n),
            "colour": pd.Categorical(rng.choice(["red", "green", "blue"], n)),
            "shape": rng.choice(["round", "square"], n),
        },
        index=pd.RangeIndex(100, 100 + n),
    )
    signal = (frame["size"] - 10) / 3 + (frame["colour"] == "red") * 2 - 1
    frame["label"] = (signal > 0).astype(int)
    return frame


@check("scikit-learn", "pandas", valid={"scikit-learn": ">=1.0", "pandas": ">=1.5"})
def check_fit_predict_frames() -> None:
    """Estimators fitted on DataFrames keep feature names and predict on frames and Series."""
    np = mod("numpy")
    pd = mod("pandas")
    linear = mod("sklearn.linear_model")
    impute = mod("sklearn.impute")
    frame = _frame()
    numeric = frame[["size", "weight"]]
    target = 3 * frame["size"] - frame["weight"] + 2
    model = linear.LinearRegression().fit(numeric, target)
    assert list(model.feature_names_in_) == ["size", "weight"]
    assert close(model.coef_, [3.0, -1.0], 1e-8)
    assert close(model.intercept_, 2.0, 1e-6)
    predicted = model.predict(numeric.iloc[:5])
    assert isinstance(predicted, np.ndarray)
    assert close(predicted, target.iloc[:5].to_numpy(), 1e-8)

    holes = pd.DataFrame(
        {"a": pd.array([1, None, 3, 4], dtype="Int64"), "b": [1.0, 2.0, np.nan, 4.0]}
    )
    filled = impute.SimpleImputer(strategy="mean").fit_transform(holes.astype("float64"))
    assert close(filled[:, 0], [1.0, 8 / 3, 3.0, 4.0])
    assert close(filled[2, 1], 7 / 3)
    if installed("scikit-learn", ">=1.2"):  # nullable pandas dtypes accepted directly since 1.2
        direct = impute.SimpleImputer(strategy="median").fit_transform(holes)
        assert close(direct[:, 0], [1.0, 3.0, 3.0, 4.0])


@check("scikit-learn", "pandas", valid={"scikit-learn": ">=1.0", "pandas": ">=1.5"})
def check_column_transformer() -> None:
    """ColumnTransformer selecting columns by name (numeric + categorical), in a pipeline."""
    compose = mod("sklearn.compose")
    pipeline = mod("sklearn.pipeline")
    preprocessing = mod("sklearn.preprocessing")
    linear = mod("sklearn.linear_model")
    frame = _frame()
    features = frame.drop(columns="label")
    columns = compose.ColumnTransformer(
        [
            ("num", preprocessing.StandardScaler(), ["size", "weight"]),
            ("cat", one_hot_encoder(handle_unknown="ignore"), ["colour", "shape"]),
        ]
    )
    matrix = columns.fit_transform(features)
    assert matrix.shape == (120, 2 + 3 + 2)
    names = list(columns.get_feature_names_out())
    assert names[:2] == ["num__size", "num__weight"], names
    assert "cat__colour_red" in names, names
    model = pipeline.make_pipeline(columns, linear.LogisticRegression(max_iter=500))
    model.fit(features, frame["label"])
    assert model.score(features, frame["label"]) > 0.9
    shuffled = features[["shape", "weight", "colour", "size"]]  # selected by name, not position
    assert (model.predict(shuffled) == model.predict(features)).all()


@check("scikit-learn", "pandas", valid={"scikit-learn": ">=1.2", "pandas": ">=1.5"})
def check_set_output_pandas() -> None:
    """set_output(transform="pandas"): frames out of transformers and ColumnTransformer."""
    pd = mod("pandas")
    compose = mod("sklearn.compose")
    preprocessing = mod("sklearn.preprocessing")
    frame = _frame()
    scaled = (
        preprocessing.StandardScaler()
        .set_output(transform="pandas")
        .fit_transform(frame[["size", "weight"]])
    )
    assert isinstance(scaled, pd.DataFrame)
    assert list(scaled.columns) == ["size", "weight"]
    assert scaled.index.equals(frame.index)
    assert abs(scaled["size"].mean()) < 1e-9
    columns = compose.ColumnTransformer(
        [
            ("num", preprocessing.StandardScaler(), ["size"]),
            ("cat", one_hot_encoder(dense=True, handle_unknown="ignore"), ["colour"]),
        ],
        verbose_feature_names_out=False,
    ).set_output(transform="pandas")
    out = columns.fit_transform(frame)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == ["size", "colour_blue", "colour_green", "colour_red"], list(
        out.columns
    )
    assert out.index.equals(frame.index)
    assert (out[["colour_blue", "colour_green", "colour_red"]].sum(axis=1) == 1).all()


def _frame_as_built(np: Any, pd: Any, x: Any) -> Any:
    """``x`` as a DataFrame the way the installed pandas builds one, with nullable
    Float64/Int64 columns where scikit-learn takes them (1.2+)."""
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
    frame.index = pd.RangeIndex(100, 100 + len(frame))
    if installed("scikit-learn", ">=1.2"):
        frame["f1"] = frame["f1"].astype("Float64")
        frame["f3"] = (frame["f3"] * 10).round().astype("Int64")
    return frame


def _fails_on_arrays(template: Any, kind: str, sets: dict[str, Any], needs: Any) -> bool:
    """Whether the estimator fails on the plain array too: then pandas is not the
    cause, and the estimator sweep on arrays reports it against its real pair."""
    try:
        estimators.exercise(mod("sklearn.base").clone(template), kind, sets["x"], sets, needs)
    except Exception:  # any failure: not this pair's to report
        return True
    return False


@check("scikit-learn", "pandas", valid={"scikit-learn": ">=1.0", "pandas": ">=1.3"})
def check_estimators_on_frames() -> None:
    """Every classifier, regressor and transformer all_estimators() lists, fitted on a
    DataFrame (nullable columns, copy-on-write where the releases have them);
    transformers with set_output(transform="pandas") where available."""
    np = mod("numpy")
    pd = mod("pandas")
    base = mod("sklearn.base")
    enable_copy_on_write()
    sets = estimators.data()
    frame = _frame_as_built(np, pd, sets["x"])
    columns = list(frame.columns)
    pandas_output = installed("scikit-learn", ">=1.2")
    findings = estimators.Findings()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for kind in ("classifier", "regressor", "transformer"):
            for name, cls in estimators.estimators_of(kind):
                try:
                    template = estimators.construct(cls, kind)
                    needs = None if template is None else estimators.applicable(template)
                except Exception:
                    continue
                if needs is None or findings.out_of_time():
                    continue
                findings.tried += 1
                estimator = base.clone(template)
                try:
                    if kind == "transformer" and pandas_output and hasattr(estimator, "set_output"):
                        # Without feature names out it stays on numpy output.
                        with contextlib.suppress(ValueError):
                            estimator.set_output(transform="pandas")
                    estimators.exercise(estimator, kind, frame, sets, needs)
                    seen = getattr(estimator, "feature_names_in_", None)
                    if seen is not None:
                        assert list(seen) == columns, list(seen)
                    if kind == "transformer" and pandas_output:
                        out = (
                            estimator.transform(frame) if hasattr(estimator, "transform") else None
                        )
                        if isinstance(out, pd.DataFrame):
                            assert out.index.equals(frame.index)
                except Exception as exc:
                    if not _fails_on_arrays(template, kind, sets, needs):
                        findings.judge(f"{name} on a DataFrame", exc, sparse_input=False)
    findings.conclude("estimator on a frame")


@check("scikit-learn", "pandas", valid={"scikit-learn": ">=1.0", "pandas": ">=1.3"})
def check_inspection_on_frames() -> None:
    """partial_dependence and permutation_importance on a frame through a pipeline with
    a ColumnTransformer (numeric, categorical and default-string columns)."""
    np = mod("numpy")
    compose = mod("sklearn.compose")
    pipeline = mod("sklearn.pipeline")
    preprocessing = mod("sklearn.preprocessing")
    ensemble = mod("sklearn.ensemble")
    inspection = mod("sklearn.inspection")
    frame = _frame()
    features = frame.drop(columns="label")
    model = pipeline.make_pipeline(
        compose.ColumnTransformer(
            [
                ("num", preprocessing.StandardScaler(), ["size", "weight"]),
                ("cat", one_hot_encoder(dense=True, handle_unknown="ignore"), ["colour", "shape"]),
            ]
        ),
        ensemble.RandomForestClassifier(n_estimators=10, random_state=0),
    ).fit(features, frame["label"])
    dependence = inspection.partial_dependence(
        model, features, ["size"], kind="average", grid_resolution=5
    )
    averaged = dependence["average"]
    assert averaged.shape == (1, 5), averaged.shape
    assert np.isfinite(averaged).all()
    importance = inspection.permutation_importance(
        model, features, frame["label"], n_repeats=3, random_state=0
    )
    assert importance.importances_mean.shape == (4,)
    ranked = list(features.columns[np.argsort(-importance.importances_mean)])
    assert ranked[0] in ("size", "colour"), ranked
