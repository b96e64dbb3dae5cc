"""pandas' plotting layer on matplotlib (Agg): the pandas.plotting code written
against matplotlib internals that break when the two drift apart."""

from __future__ import annotations

import io
from typing import Any

from . import check, close, mod

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png(figure: Any) -> bytes:
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=40)
    data = out.getvalue()
    assert data.startswith(PNG_MAGIC)
    assert len(data) > 1000, len(data)
    return data


def _frame() -> Any:
    np = mod("numpy")
    pd = mod("pandas")
    x = np.arange(10.0)
    return pd.DataFrame({"a": x, "b": x**2, "c": -x})


@check("pandas", "matplotlib", valid={"pandas": ">=1.5", "matplotlib": ">=3.3"})
def check_line_plots() -> None:
    """DataFrame.plot: several lines and a legend, secondary_y, subplots=True; PNG output."""
    np = mod("numpy")
    plt = mod("matplotlib.pyplot")
    df = _frame()
    try:
        ax = df.plot(figsize=(4, 3), title="lines")
        lines = ax.get_lines()
        assert len(lines) == 3
        assert close(lines[1].get_ydata(), np.arange(10.0) ** 2)
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b", "c"]
        assert ax.get_title() == "lines"

        left = df.plot(secondary_y=["b"], figsize=(4, 3))
        assert len(left.get_lines()) == 2
        assert len(left.right_ax.get_lines()) == 1
        assert close(left.right_ax.get_lines()[0].get_ydata(), np.arange(10.0) ** 2)
        _png(left.figure)

        axes = df.plot(subplots=True, figsize=(4, 6), sharex=True)
        assert len(axes) == 3
        assert all(len(a.get_lines()) == 1 for a in axes)
        assert axes[0].figure is axes[2].figure
        _png(axes[0].figure)
    finally:
        plt.close("all")


@check("pandas", "matplotlib", valid={"pandas": ">=1.5", "matplotlib": ">=3.3"})
def check_bar_hist_scatter_box() -> None:
    """bar/barh (stacked), hist (Series and DataFrame.hist), scatter with colour column, box."""
    np = mod("numpy")
    plt = mod("matplotlib.pyplot")
    pd = mod("pandas")
    small = pd.DataFrame({"x": [1, 3, 2, 4], "y": [2, 1, 2, 1]}, index=list("pqrs"))
    try:
        bars = small.plot.bar()
        assert len(bars.patches) == 8
        assert bars.patches[1].get_height() == 3
        assert [t.get_text() for t in bars.get_xticklabels()] == list("pqrs")
        stacked = small.plot.barh(stacked=True)
        assert len(stacked.patches) == 8

        df = _frame()
        _, hist_axes = plt.subplots()
        hist = df["a"].plot.hist(bins=5, ax=hist_axes)
        assert [p.get_height() for p in hist.patches] == [2, 2, 2, 2, 2]
        grid = df.hist(bins=2)
        assert np.asarray(grid).size >= 3

        scatter = df.plot.scatter(x="a", y="b", c="c", colormap="viridis")
        points = scatter.collections[0].get_offsets()
        assert points.shape == (10, 2)
        assert close(points[3], [3.0, 9.0])
        assert len(scatter.figure.axes) == 2  # the colour bar
        _png(scatter.figure)

        box = df.plot.box()
        assert [t.get_text() for t in box.get_xticklabels()] == ["a", "b", "c"]
    finally:
        plt.close("all")


@check("pandas", "matplotlib", valid={"pandas": ">=1.5", "matplotlib": ">=3.3"})
def check_time_series_plots() -> None:
    """Date-indexed plots through pandas' converters, mixed frequencies on one axes, area."""
    np = mod("numpy")
    plt = mod("matplotlib.pyplot")
    pd = mod("pandas")
    daily = pd.Series(np.arange(60.0), index=pd.date_range("2024-01-01", periods=60, freq="D"))
    try:
        ax = daily.plot(figsize=(5, 3))
        daily.resample("7D").mean().plot(ax=ax, style="o")
        _png(ax.figure)  # draws: the tick labels exist from here on
        assert len(ax.get_lines()) == 2
        labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
        assert labels, "no tick labels on a date axis"

        pd.plotting.register_matplotlib_converters()
        _, plain = plt.subplots(figsize=(4, 3))
        plain.plot(daily.index, daily.to_numpy())
        low, high = plain.get_xlim()
        assert high - low >= 59  # in days: matplotlib understood the datetimes

        area = pd.DataFrame({"u": daily, "v": daily / 2}).plot.area()
        assert len(area.collections) == 2
    finally:
        plt.close("all")
