"""matplotlib on its own, on the Agg backend: text (FreeType), images (Pillow),
layout (kiwisolver), PNG and SVG output."""

from __future__ import annotations

import datetime
import io

from . import check, mod
from .shims import constrained_layout

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@check("matplotlib", valid={"matplotlib": ">=3.3"})
def check_figure_formats() -> None:
    """Text, imshow, colorbar and contour on a Figure, saved as PNG (read back) and SVG."""
    np = mod("numpy")
    matplotlib = mod("matplotlib")
    figure = mod("matplotlib.figure")
    image = mod("matplotlib.image")
    assert matplotlib.get_backend().lower() == "agg", matplotlib.get_backend()

    fig = figure.Figure(figsize=(4, 3), dpi=50, **constrained_layout())
    ax = fig.add_subplot(1, 1, 1)
    field = np.outer(np.linspace(0, 1, 20), np.linspace(0, 1, 30))
    shown = ax.imshow(field, cmap="viridis", origin="lower")
    fig.colorbar(shown, ax=ax)
    ax.contour(field, levels=4, colors="white")
    title = ax.set_title("smoke — ünïcode")
    ax.text(2, 2, "text", fontsize=12)

    png = io.BytesIO()
    fig.savefig(png, format="png")
    assert png.getvalue().startswith(PNG_MAGIC)
    pixels = image.imread(io.BytesIO(png.getvalue()))
    assert pixels.shape == (150, 200, 4), pixels.shape
    assert pixels[..., :3].std() > 0.05  # something was drawn, not a blank canvas
    extent = title.get_window_extent()
    assert extent.width > 10
    assert extent.height > 3

    svg = io.BytesIO()
    fig.savefig(svg, format="svg")
    text = svg.getvalue().decode("utf-8")
    assert "<svg" in text
    assert text.rstrip().endswith("</svg>")
    assert "<image" in text


@check("matplotlib", valid={"matplotlib": ">=3.3"})
def check_pyplot_artists() -> None:
    """pyplot on Agg: lines, scatter, bars, histogram, errorbars, log and date axes, legend."""
    np = mod("numpy")
    plt = mod("matplotlib.pyplot")
    mdates = mod("matplotlib.dates")

    fig, axes = plt.subplots(2, 2, figsize=(6, 4), dpi=40)
    try:
        x = np.linspace(0.1, 10, 50)
        axes[0, 0].plot(x, np.sin(x), label="sin")
        axes[0, 0].plot(x, np.cos(x), "--", label="cos")
        legend = axes[0, 0].legend()
        assert [t.get_text() for t in legend.get_texts()] == ["sin", "cos"]
        axes[0, 1].scatter(x, x**2, c=x, s=10)
        axes[0, 1].set_yscale("log")
        assert axes[0, 1].get_yscale() == "log"
        bars = axes[1, 0].bar(["a", "b", "c"], [3, 1, 2])
        assert len(bars) == 3
        assert bars[0].get_height() == 3
        counts, _, _ = axes[1, 0].hist(np.arange(20), bins=4)
        assert list(counts) == [5, 5, 5, 5]
        axes[1, 0].errorbar([0, 1], [1, 2], yerr=[0.1, 0.2])
        axes[1, 0].fill_between(range(3), [0, 1, 0], alpha=0.3)
        days = [datetime.date(2024, 1, 1) + datetime.timedelta(days=i) for i in range(10)]
        axes[1, 1].plot(days, range(10))
        axes[1, 1].xaxis.set_major_formatter(mdates.DateFormatter("%m-%d"))
        out = io.BytesIO()
        fig.savefig(out, format="png")  # draws: the tick labels exist from here on
        assert out.getvalue().startswith(PNG_MAGIC)
        assert len(out.getvalue()) > 2000
        labels = [t.get_text() for t in axes[1, 1].get_xticklabels() if t.get_text()]
        assert labels, "no tick labels on the date axis"
        assert all(len(label) == 5 and label[2] == "-" for label in labels), labels
    finally:
        plt.close(fig)
