"""pandas' plotting layer on matplotlib (Agg): the pandas.plotting code written
against matplotlib internals that break when the two drift apart."""

from __future__ import annotations

import functools
import io
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from .. import isolate
from . import check, close, mod, optional_dependency_missing, raised_in, sweep_deadline

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

        logged = df.set_index(df.index + 1).plot(logx=True, logy=True, figsize=(3, 2))
        assert logged.get_xscale() == "log"
        assert logged.get_yscale() == "log"
        _png(logged.figure)

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

        # Mixed frequencies on a primary and a secondary axis.
        monthly = daily.resample("MS").sum()
        mixed = daily.plot(figsize=(4, 3))
        monthly.plot(ax=mixed, secondary_y=True, style="s-")
        _png(mixed.figure)
        assert len(mixed.right_ax.get_lines()) == 1

        area = pd.DataFrame({"u": daily, "v": daily / 2}).plot.area()
        assert len(area.collections) == 2
    finally:
        plt.close("all")


# What pandas enumerates as plot kinds (PlotAccessor._all_kinds), for releases
# that predate the attribute.
PLOT_KINDS = ("line", "bar", "barh", "kde", "density", "area", "hist", "box", "pie")
PLOT_KINDS_XY = ("scatter", "hexbin")


def plot_kinds() -> tuple[str, ...]:
    core = mod("pandas.plotting._core")
    accessor = getattr(core, "PlotAccessor", None)
    return tuple(getattr(accessor, "_all_kinds", PLOT_KINDS + PLOT_KINDS_XY))


def plot_breaks(exc: BaseException) -> bool:
    """A plotting failure that is a break of pandas with matplotlib: a wrong result,
    anything raised inside matplotlib, or pandas calling it with what it no
    longer has (a missing attribute or import, arguments that do not bind).
    pandas refusing an option for a kind (its own ValueError/TypeError) is not."""
    if optional_dependency_missing(exc):
        return False  # kde without scipy installed: the kind needs it
    if isinstance(exc, AssertionError) or raised_in(exc) == "matplotlib":
        return True
    if isinstance(exc, (AttributeError, ImportError, KeyError, IndexError, NameError)):
        return True
    if isinstance(exc, TypeError):
        return bool(isolate.SIGNATURE_MISMATCH.search(str(exc)))
    return False


def _kind_arguments(kind: str) -> dict[str, Any]:
    if kind in ("scatter", "hexbin"):
        return {"x": "a", "y": "b", "gridsize": 4} if kind == "hexbin" else {"x": "a", "y": "b"}
    if kind == "pie":
        return {"y": "a"}
    return {}


# What pandas draws with scipy (``scipy.stats.gaussian_kde``): checked on their own,
# so that the outcome of the other kinds does not depend on scipy's release.
DENSITY_KINDS = ("kde", "density")
VALID_KINDS = {"pandas": ">=1.3", "matplotlib": ">=3.3"}


@check("pandas", "matplotlib", valid=VALID_KINDS)
def check_plot_kinds_options() -> None:
    """Every DataFrame.plot kind pandas lists but the density ones, crossed with the
    options that reach into matplotlib (legend onto existing axes, colormap, log axes,
    secondary_y, subplots with a layout, table), Series.plot too; rendered to PNG and SVG."""
    _plot_kinds([k for k in plot_kinds() if k not in DENSITY_KINDS], table=True, at_least=20)


@check("pandas", "matplotlib", "scipy", valid=VALID_KINDS)
def check_density_plot_options() -> None:
    """The density kinds pandas lists (drawn with scipy), with the same options."""
    _plot_kinds([k for k in plot_kinds() if k in DENSITY_KINDS], table=False, at_least=3)


def _plot_kinds(kinds: Sequence[str], *, table: bool, at_least: int) -> None:
    np = mod("numpy")
    pd = mod("pandas")
    plt = mod("matplotlib.pyplot")
    frame = pd.DataFrame(
        {
            "a": np.arange(1.0, 9.0),
            "b": np.arange(8.0, 0.0, -1) ** 1.5,
            "c": np.array([2.0, 3.0, 1.0, 4.0, 2.5, 3.5, 1.5, 2.0]),
        },
        index=pd.RangeIndex(1, 9),
    )
    # Options combined onto two axes per kind (and the twin secondary_y adds):
    # drawing axes, not plotting, is what costs time.
    options: dict[str, dict[str, Any]] = {
        "legend onto existing axes, colormap, logy": {
            "legend": True,
            "colormap": "viridis",
            "logy": True,
        },
        "secondary_y": {"secondary_y": ["b"]},
    }
    broken: list[str] = []
    drawn = 0

    def attempt(what: str, action: Callable[[], None]) -> None:
        nonlocal drawn
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                action()
            drawn += 1
        except Exception as exc:
            if plot_breaks(exc):
                print(f"--- {what} ---")
                traceback.print_exception(type(exc), exc, exc.__traceback__)
                broken.append(f"{what}: {isolate.describe_exception(exc)}")

    def save(figure: Any, fmt: str, dpi: int = 20) -> None:
        out = io.BytesIO()
        figure.savefig(out, format=fmt, dpi=dpi)
        assert len(out.getvalue()) > 500, fmt

    aliases = getattr(mod("pandas.plotting._core").PlotAccessor, "_kind_aliases", {})
    deadline = sweep_deadline()
    late = False
    for kind in kinds:
        if kind in aliases:
            continue  # "density" is drawn as "kde": once is enough
        if time.monotonic() > deadline:
            print(f"time budget spent before kind={kind!r}: not drawn (a miss, not a failure)")
            late = True
            continue
        fig, axes = plt.subplots(1, len(options), figsize=(4, 2))
        try:
            axes[0].plot([1, 8], [1, 8], label="already there")
            axes[0].legend()
            for at, (option, extra) in enumerate(options.items()):  # zip(strict=) is 3.10+
                ax = axes[at]

                def plot_on(ax: Any = ax, extra: dict[str, Any] = extra, kind: str = kind) -> None:
                    arguments = _kind_arguments(kind)
                    assert frame.plot(kind=kind, ax=ax, **arguments, **extra) is not None

                attempt(f"DataFrame.plot(kind={kind!r}, {option})", plot_on)
            attempt(f"PNG of kind={kind!r}", functools.partial(save, fig, "png"))
        finally:
            plt.close(fig)

        def subplots(kind: str = kind) -> None:
            if kind in PLOT_KINDS_XY:  # one pair of columns: nothing to lay out
                ax = frame.plot(kind=kind, figsize=(2, 2), **_kind_arguments(kind))
                save(ax.figure, "svg")
                return
            pair = frame[["a", "b"]]
            grid = np.asarray(pair.plot(kind=kind, subplots=True, layout=(2, 2), figsize=(3, 3)))
            assert grid.size >= 2, grid.shape  # a (2, 2) grid; box plots give one per column
            save(grid.ravel()[0].figure, "svg")

        attempt(f"DataFrame.plot(kind={kind!r}, subplots=True, layout=(2, 2)), SVG", subplots)
        if kind not in PLOT_KINDS_XY:
            attempt(f"Series.plot(kind={kind!r})", functools.partial(frame["a"].plot, kind=kind))
        plt.close("all")

    def with_table() -> None:
        ax = frame.plot(table=True, figsize=(4, 4))
        assert ax.tables, "no table"
        save(ax.figure, "png", dpi=50)  # a table's fonts shrink to fit: too few dots fail

    if table:
        attempt("DataFrame.plot(table=True)", with_table)
    plt.close("all")
    print(f"{drawn} plots and renders done; {len(broken)} broken")
    if broken:
        raise AssertionError(f"{len(broken)} plots broke: " + "; ".join(broken))
    assert late or drawn >= at_least, drawn
