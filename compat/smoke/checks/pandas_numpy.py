"""pandas on numpy: the everyday operations whose compiled paths (and numpy
calls) break first when the two disagree. Written for pandas 1.5 to 3.x."""

from __future__ import annotations

import datetime
import io
import traceback

from . import breaks_stack, check, close, mod


@check("pandas", "numpy", valid={"pandas": ">=1.5"})
def check_frames_dtypes() -> None:
    """A frame of every common dtype: to_numpy, numpy ufuncs, reductions, CSV round trip."""
    np = mod("numpy")
    pd = mod("pandas")
    df = pd.DataFrame(
        {
            "i": np.arange(6, dtype=np.int64),
            "f": np.linspace(0.0, 1.0, 6),
            "b": [True, False] * 3,
            "t": pd.date_range("2024-01-01", periods=6, freq="D"),
            "c": pd.Categorical(list("abcabc")),
            "s": pd.array(list("uvwxyz"), dtype="string"),
            "o": ["x", 1, None, 2.5, "y", 3],
            "n": pd.array([1, None, 3, 4, 5, 6], dtype="Int64"),
        }
    )
    assert df.shape == (6, 8)
    assert df["i"].dtype == np.int64
    assert df["t"].dtype.kind == "M"
    assert isinstance(df["c"].dtype, pd.CategoricalDtype)
    assert df["n"].isna().sum() == 1
    numeric = df[["i", "f"]].to_numpy()
    assert numeric.dtype == np.float64
    assert numeric.shape == (6, 2)
    filled = df["n"].to_numpy(dtype="float64", na_value=np.nan)
    assert np.isnan(filled[1])
    assert filled[2] == 3.0
    assert np.asarray(df["t"]).dtype.kind == "M"
    assert np.asarray(df["b"]).dtype == np.bool_

    logged = np.log1p(df[["i", "f"]])
    assert isinstance(logged, pd.DataFrame)
    assert close(logged["i"].to_numpy(), np.log1p(np.arange(6)))
    assert isinstance(np.sqrt(df["f"]), pd.Series)
    assert close(np.add(df["i"], df["f"]).to_numpy(), np.arange(6) + np.linspace(0, 1, 6))
    assert close(np.maximum(df["i"], 2).to_numpy(), [2, 2, 2, 3, 4, 5])
    assert close(df[["i", "f"]].sum().to_numpy(), [15.0, 3.0])
    assert close(df["n"].mean(), 19 / 5)
    assert int(df["n"].sum()) == 19
    stats = df[["i", "f"]].describe()
    assert close(stats.loc["mean", "i"], 2.5)
    assert close(stats.loc["50%", "f"], 0.5)
    assert df["i"].where(df["b"], -1).tolist() == [0, -1, 2, -1, 4, -1]
    assert df.sort_values("f", ascending=False)["i"].iloc[0] == 5
    assert close(df["f"].rank().to_numpy(), np.arange(1, 7))
    assert df["i"].cumsum().iloc[-1] == 15
    assert df["b"].astype(int).sum() == 3
    assert df["f"].clip(0.2, 0.6).min() == 0.2

    text = io.StringIO()
    df[["i", "f", "t", "s"]].to_csv(text, index=False)
    back = pd.read_csv(io.StringIO(text.getvalue()), parse_dates=["t"])
    assert back["i"].tolist() == list(range(6))
    assert close(back["f"].to_numpy(), df["f"].to_numpy())
    assert back["t"].dtype.kind == "M"
    assert back["t"].iloc[5] == pd.Timestamp("2024-01-06")
    assert back["s"].tolist() == list("uvwxyz")
    assert pd.DataFrame(df[["i", "f"]].to_dict("records")).equals(df[["i", "f"]])


@check("pandas", "numpy", valid={"pandas": ">=1.5"})
def check_groupby_agg() -> None:
    """groupby with named and multiple aggregations, transform, categorical and multi keys."""
    np = mod("numpy")
    pd = mod("pandas")
    df = pd.DataFrame(
        {
            "k": list("aabbbc"),
            "g": ["x", "y", "x", "y", "x", "y"],
            "v": [1, 2, 3, 4, 5, 6],
            "w": [0.5, 1.5, 2.0, 4.0, 6.0, 1.0],
        }
    )
    grouped = df.groupby("k")
    named = grouped.agg(total=("v", "sum"), mean_w=("w", "mean"), n=("v", "size"))
    assert named.loc["b", "total"] == 12
    assert close(named.loc["b", "mean_w"], 4.0)
    assert named["n"].tolist() == [2, 3, 1]
    several = grouped["v"].agg(["min", "max", "std"])
    assert several.loc["b", "max"] == 5
    assert close(several.loc["b", "std"], 1.0)
    assert np.isnan(several.loc["c", "std"])
    assert close(grouped["w"].transform("mean").to_numpy(), [1.0, 1.0, 4.0, 4.0, 4.0, 1.0])
    assert grouped.cumcount().tolist() == [0, 1, 0, 1, 2, 0]
    assert close(grouped["v"].quantile(0.5).to_numpy(), [1.5, 4.0, 6.0])
    assert grouped["g"].nunique().tolist() == [2, 2, 1]
    table = df.groupby(["k", "g"])["v"].sum().unstack(fill_value=0)
    assert table.loc["b"].tolist() == [8, 4]
    assert table.shape == (3, 2)
    by_cat = df.assign(k=pd.Categorical(df["k"], categories=["c", "b", "a", "z"]))
    sums = by_cat.groupby("k", observed=False)["v"].sum()
    assert sums.index.tolist() == ["c", "b", "a", "z"]
    assert sums.tolist() == [6, 12, 3, 0]
    assert close(
        df.groupby("g")["w"].agg(lambda s: float(np.ptp(s.to_numpy()))).to_numpy(), [5.5, 3.0]
    )


@check("pandas", "numpy", valid={"pandas": ">=1.5"})
def check_merge_pivot_reshape() -> None:
    """merge (inner/left/outer), join, concat, pivot_table, melt, crosstab, unstack."""
    np = mod("numpy")
    pd = mod("pandas")
    left = pd.DataFrame({"key": ["a", "b", "c"], "x": [1, 2, 3]})
    right = pd.DataFrame({"key": ["b", "c", "d"], "y": [20.0, 30.0, 40.0]})
    inner = left.merge(right, on="key")
    assert inner["key"].tolist() == ["b", "c"]
    assert inner["y"].tolist() == [20.0, 30.0]
    outer = left.merge(right, on="key", how="outer", indicator=True).sort_values("key")
    assert outer["_merge"].astype(str).tolist() == ["left_only", "both", "both", "right_only"]
    assert np.isnan(left.merge(right, how="left", on="key")["y"].iloc[0])
    joined = left.set_index("key").join(right.set_index("key"), how="inner")
    assert joined.shape == (2, 2)
    stacked = pd.concat([left, left], ignore_index=True)
    assert stacked.shape == (6, 2)
    assert stacked.index.tolist() == list(range(6))
    sales = pd.DataFrame(
        {
            "region": ["n", "n", "s", "s", "s"],
            "item": ["p", "q", "p", "p", "q"],
            "units": [1, 2, 3, 4, 5],
        }
    )
    pivot = sales.pivot_table(
        index="region", columns="item", values="units", aggfunc="sum", margins=True
    )
    assert pivot.loc["s", "p"] == 7
    assert pivot.loc["All", "All"] == 15
    long = sales.melt(id_vars=["region"], value_vars=["units"])
    assert long.shape == (5, 3)
    assert set(long["variable"]) == {"units"}
    counts = pd.crosstab(sales["region"], sales["item"])
    assert counts.loc["s"].tolist() == [2, 1]
    wide = sales.groupby(["region", "item"])["units"].sum().unstack()
    assert wide.loc["n"].tolist() == [1, 2]
    assert wide.to_numpy().sum() == 15


@check("pandas", "numpy", valid={"pandas": ">=1.5"})
def check_datetime_resample_rolling() -> None:
    """date_range, resample, rolling/expanding/ewm windows, time zones, dt accessor."""
    np = mod("numpy")
    pd = mod("pandas")
    hours = pd.date_range("2024-01-01", periods=48, freq="60min")
    series = pd.Series(np.arange(48.0), index=hours)
    daily = series.resample("D").sum()
    assert daily.tolist() == [276.0, 852.0]
    assert daily.index[1] == pd.Timestamp("2024-01-02")
    spans = series.resample("D").agg(["min", "max"])
    assert spans.loc["2024-01-02", "min"] == 24.0
    assert series.resample("360min").mean().shape == (8,)
    assert close(series.rolling(3).mean().to_numpy()[2:5], [1.0, 2.0, 3.0])
    assert close(series.rolling("180min").sum().iloc[3], 1.0 + 2.0 + 3.0)
    assert close(series.rolling(4, min_periods=1).apply(np.median, raw=True).iloc[1], 0.5)
    assert series.expanding().sum().iloc[-1] == 1128.0
    assert close(series.ewm(alpha=0.5, adjust=False).mean().iloc[1], 0.5)
    assert series.diff().iloc[1] == 1.0
    assert series.shift(1).isna().sum() == 1

    utc = series.tz_localize("UTC")
    plus_one = utc.tz_convert(datetime.timezone(datetime.timedelta(hours=1)))
    assert plus_one.index[0].hour == 1
    assert (plus_one.index == utc.index).all()
    frame = pd.DataFrame({"when": pd.to_datetime(["2024-03-01 10:30", "2024-03-03 23:59"])})
    assert frame["when"].dt.dayofweek.tolist() == [4, 6]
    assert frame["when"].dt.strftime("%d/%m").tolist() == ["01/03", "03/03"]
    assert frame["when"].dt.floor("D").iloc[1] == pd.Timestamp("2024-03-03")
    gap = frame["when"].iloc[1] - frame["when"].iloc[0]
    assert gap == pd.Timedelta(days=2, hours=13, minutes=29)
    assert gap.total_seconds() > 0
    parsed = pd.to_datetime(pd.Series(["05/01/2024", "06/01/2024"]), format="%d/%m/%Y")
    assert parsed.dt.month.tolist() == [1, 1]
    assert pd.Timestamp("2024-01-31") + pd.offsets.MonthEnd(1) == pd.Timestamp("2024-02-29")


@check("pandas", "numpy", valid={"pandas": ">=1.5"})
def check_categorical_strings() -> None:
    """Ordered categoricals, cut, get_dummies, and the .str methods (nullable strings too)."""
    np = mod("numpy")
    pd = mod("pandas")
    levels = pd.Series(
        pd.Categorical(["lo", "hi", "mid", "lo"], categories=["lo", "mid", "hi"], ordered=True)
    )
    assert levels.cat.codes.tolist() == [0, 2, 1, 0]
    assert levels.max() == "hi"
    assert levels.sort_values().tolist() == ["lo", "lo", "mid", "hi"]
    assert levels.value_counts().loc["lo"] == 2
    binned = pd.cut(np.arange(10), bins=[-1, 3, 6, 9], labels=["low", "mid", "high"])
    assert list(binned.value_counts().sort_index()) == [4, 3, 3]
    dummies = pd.get_dummies(levels)
    assert dummies.shape == (4, 3)
    assert dummies.astype(int).to_numpy().sum() == 4

    names = pd.Series(["  Alpha 1", "beta 22 ", None, "Gamma 333"])
    cleaned = names.str.strip().str.upper()
    assert cleaned.iloc[0] == "ALPHA 1"
    assert cleaned.isna().iloc[2]
    assert names.str.contains("a", case=False, na=False).tolist() == [True, True, False, True]
    digits = names.str.extract(r"(\d+)", expand=False)
    assert digits.iloc[3] == "333"
    parts = names.str.strip().str.split(" ", expand=True)
    assert parts.shape == (4, 2)
    assert parts.iloc[1, 1] == "22"
    assert names.str.len().iloc[3] == 9
    typed = pd.Series(["x", None, "zz"], dtype="string")
    assert typed.str.len().tolist()[::2] == [1, 2]
    assert typed.isna().tolist() == [False, True, False]
    assert (typed + "!").iloc[2] == "zz!"
    assert typed.str.upper().iloc[0] == "X"


@check("pandas", "numpy", valid={"pandas": ">=1.3", "numpy": ">=1.20"})
def check_numpy_ufuncs() -> None:
    """Every numpy ufunc (those that take floats) over a Series and a DataFrame: the
    pandas type comes back, index and columns kept, values as on the bare array."""
    np = mod("numpy")
    pd = mod("pandas")
    index = pd.Index([10, 20, 30, 40, 50], name="k")
    left = np.array([0.5, 1.5, 2.0, 3.0, 0.25])
    right = np.array([2.0, 0.5, 1.0, 4.0, 3.0])
    series = pd.Series(left, index=index, name="x")
    frame = pd.DataFrame({"x": left, "y": right}, index=index)
    ufuncs = sorted(
        (name, getattr(np, name))
        for name in dir(np)
        if isinstance(getattr(np, name, None), np.ufunc) and not name.startswith("_")
    )
    broken: list[str] = []
    tried = 0
    for name, ufunc in ufuncs:
        if ufunc.nin > 2 or ufunc.nout != 1 or ufunc.signature is not None:
            continue  # generalized ufuncs (matmul, vecdot...) take other shapes
        arguments = (left,) if ufunc.nin == 1 else (left, right)
        try:
            with np.errstate(all="ignore"):
                expected = ufunc(*arguments)
        except (TypeError, ValueError):
            continue  # not defined for floats (bitwise operations, gcd...)
        if expected.dtype.kind not in "fbiuc":
            continue
        tried += 1
        try:
            with np.errstate(all="ignore"):
                on_series = ufunc(series) if ufunc.nin == 1 else ufunc(series, right)
                on_frame = ufunc(frame) if ufunc.nin == 1 else ufunc(frame, 2.0)
            assert isinstance(on_series, pd.Series), type(on_series)
            assert on_series.index.equals(index)
            assert np.allclose(on_series.to_numpy(), expected, equal_nan=True)
            assert isinstance(on_frame, pd.DataFrame), type(on_frame)
            assert list(on_frame.columns) == ["x", "y"]
            assert on_frame.index.equals(index)
        except Exception as exc:
            if breaks_stack(exc, partners=("numpy",)):
                print(f"--- np.{name} ---")
                traceback.print_exception(type(exc), exc, exc.__traceback__)
                broken.append(f"np.{name}: {traceback.format_exception_only(type(exc), exc)[-1]}")
    print(f"{tried} ufuncs over pandas objects; {len(broken)} broken")
    if broken:
        raise AssertionError(f"{len(broken)} of {tried} ufuncs broke: " + "; ".join(broken))
    assert tried >= 30, tried
