"""scikit-learn with pandas frames: feature names, set_output, ColumnTransformer
by column name, nullable and categorical dtypes."""

from __future__ import annotations

from typing import Any

from . import check, close, installed, mod
from .shims import one_hot_encoder


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
