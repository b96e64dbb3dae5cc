"""matplotlib with the libraries it hands work to: Pillow (raster formats),
pyparsing (mathtext and fontconfig patterns), fontTools (fonts embedded in PDF
and PostScript), kiwisolver (constrained layout), contourpy (contouring), and
pandas' time-zone-aware dates on a matplotlib axis.

What is exercised comes from the packages themselves where they enumerate it:
the formats the Agg canvas saves that Pillow registers, the symbols, accents,
functions, fonts, spaces and delimiters the mathtext parser knows, the
fontconfig constants, the contouring algorithms both contourpy and matplotlib
name. Written for matplotlib 3.6 and later (the first to contour with contourpy),
the pyparsing checks for 3.4 and later (where the pyparsing 3.0 break shows).
"""

from __future__ import annotations

import io
import itertools
import re
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from . import check, installed, mod
from .shims import constrained_layout

# The Agg canvas's dumps of its own buffer: no Pillow involved.
RAW_BUFFERS = ("raw", "rgba")
# Formats whose pixels must come back exactly; the others are lossy.
LOSSLESS = ("PNG", "TIFF")
LOSSY_MEAN_ERROR = 8.0  # per channel, of 255: JPEG on thin lines stays near 5


def _close(figure: Any) -> None:
    mod("matplotlib.pyplot").close(figure)


def _agg_figure(**kwargs: Any) -> Any:
    """A figure on the Agg canvas without pyplot's figure manager."""
    figure = mod("matplotlib.figure").Figure(**kwargs)
    mod("matplotlib.backends.backend_agg").FigureCanvasAgg(figure)
    return figure


def _pillow_formats(canvas: Any) -> list[tuple[str, str]]:
    """(extension, Pillow format) of each raster format the Agg canvas saves
    that Pillow can write here (a Pillow built without a codec leaves it out)."""
    image = mod("PIL.Image")
    image.init()
    registered = image.registered_extensions()
    found = []
    for ext in sorted(canvas.get_supported_filetypes()):
        if ext in RAW_BUFFERS or not hasattr(canvas, f"print_{ext}"):
            continue  # a vector backend, or matplotlib's raw buffer
        pil = registered.get(f".{ext}")
        if pil is None or pil not in image.SAVE or not _pillow_writes(pil):
            print(f"{ext}: matplotlib lists it, this Pillow cannot write it")
            continue
        found.append((ext, pil))
    return found


def _pillow_writes(pil: str) -> bool:
    """Whether Pillow by itself writes ``pil`` here (a build without a codec
    has the plugin but no encoder)."""
    try:
        mod("PIL.Image").new("RGB", (2, 2)).save(io.BytesIO(), format=pil)
    except (OSError, KeyError, ValueError) as exc:
        print(f"Pillow cannot write {pil} here: {exc}")
        return False
    return True


@check("matplotlib", "pillow", valid={"matplotlib": ">=3.6"})
def check_raster_formats() -> None:
    """Every raster format the Agg canvas saves through Pillow: savefig, imsave, imread."""
    np = mod("numpy")
    image = mod("PIL.Image")
    mimage = mod("matplotlib.image")
    plt = mod("matplotlib.pyplot")

    dpi, size = 50, (80, 60)
    fig = _agg_figure(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi)
    ax = fig.add_axes((0.1, 0.1, 0.8, 0.8))
    ax.imshow(np.outer(np.linspace(0, 1, 8), np.linspace(0, 1, 10)))
    ax.plot([0, 9], [0, 7], "r")
    ax.set_axis_off()
    raw = io.BytesIO()
    fig.savefig(raw, format="rgba", dpi=dpi)
    reference = np.frombuffer(raw.getvalue(), np.uint8).reshape(size[1], size[0], 4).astype(int)

    formats = _pillow_formats(fig.canvas)
    assert "PNG" in {pil for _, pil in formats}, formats
    for ext, pil in formats:
        out = io.BytesIO()
        fig.savefig(out, format=ext, dpi=dpi)
        data = out.getvalue()
        with image.open(io.BytesIO(data)) as opened:
            assert opened.format == pil, (ext, opened.format)
            assert opened.size == size, (ext, opened.size)
            assert opened.mode in ("RGB", "RGBA", "P"), (ext, opened.mode)
            if "dpi" in opened.info:
                assert round(float(opened.info["dpi"][0])) == dpi, (ext, opened.info["dpi"])
            if pil == "PNG":
                software = getattr(opened, "text", {}).get("Software", "")
                assert "atplotlib" in software, f"PNG metadata not written: {software!r}"
            pixels = np.asarray(opened.convert("RGBA")).astype(int)
        error = np.abs(pixels[..., :3] - reference[..., :3]).mean()
        limit = 0.0 if pil in LOSSLESS else LOSSY_MEAN_ERROR
        assert error <= limit, f"{ext}: pixels off by {error:.2f} on average"
        array = mimage.imread(io.BytesIO(data), format=ext)
        assert array.shape[:2] == (size[1], size[0]), (ext, array.shape)
        assert array.shape[2] in (3, 4), (ext, array.shape)
        if pil == "PNG":
            assert array.dtype == np.float32, array.dtype
            assert np.array_equal((array * 255).round().astype(int), reference)
        else:
            assert array.dtype == np.uint8, (ext, array.dtype)

    # imsave: a colour-mapped field and an RGBA array, through Pillow's own
    # format names (imsave hands its format to Pillow as given)
    field = np.add.outer(np.linspace(0, 0.5, 12), np.linspace(0, 0.5, 18))
    expected = mod("matplotlib").colormaps["viridis"](field)
    for pil in sorted({pil for _, pil in formats}):
        name = pil.lower()
        for given in (field, expected):
            out = io.BytesIO()
            plt.imsave(out, given, cmap="viridis", vmin=0, vmax=1, format=name)
            back = mimage.imread(io.BytesIO(out.getvalue()), format=name)
            assert back.shape[:2] == field.shape, (name, back.shape)
            scaled = back.astype(float) / (255.0 if back.dtype == np.uint8 else 1.0)
            error = np.abs(scaled[..., :3] - expected[..., :3]).mean()
            limit = 1 / 255 if pil in LOSSLESS else LOSSY_MEAN_ERROR / 255
            assert error <= limit, f"imsave {name}: colours off by {error:.3f} on average"


@check("matplotlib", "pillow", valid={"matplotlib": ">=3.6"})
def check_gif_animation() -> None:
    """An animation written as GIF by matplotlib's PillowWriter and read back frame by frame."""
    animation = mod("matplotlib.animation")
    image = mod("PIL.Image")
    plt = mod("matplotlib.pyplot")
    assert "pillow" in animation.writers.list(), animation.writers.list()

    fig, ax = plt.subplots(figsize=(1, 0.8), dpi=40)
    try:
        (line,) = ax.plot([], [], "k-")
        ax.set_xlim(0, 3)
        ax.set_ylim(0, 3)

        def frame(i: int) -> tuple[Any, ...]:
            line.set_data(range(i + 2), range(i + 2))
            return (line,)

        movie = animation.FuncAnimation(fig, frame, frames=3, blit=False)
        with tempfile.TemporaryDirectory() as directory:
            path = str(Path(directory) / "smoke.gif")
            movie.save(path, writer=animation.PillowWriter(fps=5), dpi=40)
            with image.open(path) as gif:
                assert gif.format == "GIF", gif.format
                assert gif.size == (40, 32), gif.size
                assert getattr(gif, "n_frames", 1) == 3, gif.n_frames
                frames = []
                for i in range(3):
                    gif.seek(i)
                    frames.append(gif.convert("RGB").tobytes())
        assert len(set(frames)) == 3, "the frames are not distinct"
    finally:
        _close(fig)


def _mathtext_parser() -> Any:
    return mod("matplotlib._mathtext").Parser


def _spread(names: Iterable[str], count: int) -> list[str]:
    ordered = sorted(names)
    return ordered[:: max(1, len(ordered) // count)]


def _parse(parser: Any, text: str) -> tuple[float, float, float, list[tuple[int, float, float]]]:
    """Width, height, depth and (code point, x, y) of each glyph of ``$text$``."""
    try:
        result = parser.parse(f"${text}$", dpi=72)
    except ValueError as exc:
        raise AssertionError(f"mathtext {text!r} does not parse: {exc}") from exc
    width, height, depth, glyphs = result[0], result[1], result[2], result[3]
    return (
        float(width),
        float(height),
        float(depth),
        [(int(g[2]), float(g[-2]), float(g[-1])) for g in glyphs],
    )


def _mathtext_cases() -> Iterator[str]:
    """The constructs the parser enumerates, each in a small expression."""
    grammar = _mathtext_parser()
    data = mod("matplotlib._mathtext_data")
    commands = set(grammar._accent_map) | set(grammar._wide_accents)
    for name in _spread(data.tex2uni, 60):
        if (
            name not in commands
            and not name.startswith("_")
            and f"\\{name}" not in (grammar._space_widths)
        ):
            yield f"\\{name}"
    for name in sorted(grammar._function_names):
        yield f"\\{name}(x)"
    for font in sorted(grammar._fontnames):
        yield f"\\math{font}{{Ab}}" if font != "default" else "\\mathdefault{Ab}"
        yield f"{{\\{font} Ab}}"
    # matplotlib 3.6 lists \bigsqcup among them without a glyph for it
    known = {f"\\{name}" for name in data.tex2uni}
    # the delimiters are listed apart from matplotlib 3.6
    for left in sorted(getattr(grammar, "_left_delims", ())):
        if len(left) == 1 or left in known:
            yield f"\\left{left} \\frac{{a}}{{b}} \\right."
    for right in sorted(getattr(grammar, "_right_delims", ())):
        if len(right) == 1 or right in known:
            yield f"\\left. \\frac{{a}}{{b}} \\right{right}"
    for symbol in sorted(grammar._overunder_symbols):
        if symbol in known:
            yield f"{symbol}_{{i=0}}^{{n}} x_i"
    yield from (
        r"x^2_1 + y'",
        r"\sqrt{x} \sqrt[3]{y}",
        r"\frac{a}{b} \dfrac{c}{d} \binom{n}{k}",
        r"\genfrac{(}{)}{0}{}{a}{b}",
        r"\overline{xy} \overset{a}{b} \underset{c}{d}",
        r"\operatorname{sn}(u)",
        r"\alpha\beta\Gamma\Delta \cdot \infty \leq \rightarrow",
    )


@check("matplotlib", "pyparsing", valid={"matplotlib": ">=3.4"})
def check_mathtext() -> None:
    """mathtext: the symbols, accents, functions, fonts, spaces and delimiters its parser knows."""
    grammar = _mathtext_parser()
    data = mod("matplotlib._mathtext_data")
    parser = mod("matplotlib.mathtext").MathTextParser("path")

    for case in _mathtext_cases():
        width, _, _, glyphs = _parse(parser, case)
        assert width > 0 or glyphs, f"{case!r} came out empty"  # combining marks have no width
        name = case[1:]
        if name in data.tex2uni and name != "prime":  # \prime is drawn as a superscript
            codes = [code for code, _, _ in glyphs]
            expected = data.tex2uni[name]
            assert codes in ([expected], []), f"{case!r} drawn as {codes}, not {expected}"
        if case.endswith("(x)"):  # a function name is set upright, letter for letter
            drawn = "".join(chr(code) for code, _, _ in glyphs)
            assert name[: -len("(x)")] in drawn, f"{case!r} drawn as {drawn!r}"

    base_width, base_height, _, _ = _parse(parser, "M")
    for accent in sorted(grammar._accent_map):
        width, height, _, glyphs = _parse(parser, f"\\{accent}{{M}}")
        assert height > base_height, f"accent {accent!r} is not above its letter"
        assert width < 2 * base_width, f"accent {accent!r} set beside its letter"
        assert len(glyphs) == 2, (accent, glyphs)
    plain, _, _, _ = _parse(parser, "ab")
    for space, em in sorted(grammar._space_widths.items()):
        width, _, _, _ = _parse(parser, f"a{space}b")
        assert (width - plain) * em > 0, f"space {space!r} widened ab by {width - plain}"

    # placement: numerator over denominator, exponents up, subscripts down
    _, _, _, glyphs = _parse(parser, r"\frac{a}{b}")
    heights = {chr(code): y for code, _, y in glyphs}
    assert heights["a"] > heights["b"], glyphs
    _, _, _, glyphs = _parse(parser, r"x^2 y_1")
    heights = {chr(code): y for code, _, y in glyphs}
    assert heights["2"] > heights["x"] > heights["1"], glyphs

    for wrong in (r"\frac{a}", r"a^", r"\left(", r"\sqrt[", r"x^2^3", r"{a", r"\nosuchsymbol"):
        try:
            parser.parse(f"${wrong}$", dpi=72)
        except ValueError:
            continue
        raise AssertionError(f"mathtext {wrong!r} parsed without error")

    fig = _agg_figure(figsize=(3, 2), dpi=30)
    texts = [
        fig.text(0.02, 0.1 + 0.3 * i, f"${expression}$", fontsize=10)
        for i, expression in enumerate(
            (r"\sum_{i=0}^n \frac{a}{b}", r"\sqrt{x} \hat{y} \mathcal{C}", r"\left( \int f \right)")
        )
    ]
    fig.canvas.draw()
    for text in texts:
        extent = text.get_window_extent()
        assert extent.width > 5, text.get_text()
        assert extent.height > 3, text.get_text()


@check("matplotlib", "pyparsing", valid={"matplotlib": ">=3.4"})
def check_fontconfig_patterns() -> None:
    """Fontconfig patterns: each constant the parser knows, families, sizes, escapes, round trip."""
    font_manager = mod("matplotlib.font_manager")
    # private from matplotlib 3.6, which deprecates the public module
    private = installed("matplotlib", ">=3.6")
    patterns = mod("matplotlib._fontconfig_pattern" if private else "matplotlib.fontconfig_pattern")
    parse = patterns.parse_fontconfig_pattern
    constants = getattr(patterns, "_CONSTANTS", None) or patterns.FontconfigPatternParser._constants
    assert len(constants) > 10, constants

    for word, (key, value) in sorted(constants.items()):
        parsed = parse(f"DejaVu Sans-11:{word}")
        families = [f for f in parsed["family"] if f != ","]  # 3.6 keeps the separators
        assert families == ["DejaVu Sans"], (word, parsed)
        assert [float(s) for s in parsed["size"] if s != ","] == [11.0], (word, parsed)
        assert parsed[key] == [value], (word, parsed)

    parsed = parse(r"Foo\-Bar,serif-10,12:weight=bold:slant=italic:file=a\:b\=c")
    assert [f for f in parsed["family"] if f != ","] == ["Foo-Bar", "serif"], parsed
    assert [float(s) for s in parsed["size"] if s != ","] == [10.0, 12.0], parsed
    assert parsed["weight"] == ["bold"], parsed
    assert parsed["slant"] == ["italic"], parsed
    assert parsed["file"] == ["a:b=c"], parsed
    try:
        parse("serif:=bold")
    except ValueError:
        pass
    else:
        raise AssertionError("a malformed pattern parsed without error")

    styles = ("normal", "italic", "oblique")
    weights = ("light", "normal", "bold", "heavy")
    stretches = ("condensed", "normal", "expanded")
    for style, weight, stretch in itertools.product(styles, weights, stretches):
        prop = font_manager.FontProperties(
            family="DejaVu Sans", style=style, weight=weight, stretch=stretch, size=9
        )
        again = font_manager.FontProperties(prop.get_fontconfig_pattern())
        assert again.get_family() == ["DejaVu Sans"], prop.get_fontconfig_pattern()
        assert again.get_style() == style, prop.get_fontconfig_pattern()
        assert again.get_weight() == weight, prop.get_fontconfig_pattern()
        assert again.get_stretch() == stretch, prop.get_fontconfig_pattern()
        assert again.get_size() == 9, prop.get_fontconfig_pattern()


# Non-ASCII text in DejaVu Sans (matplotlib's default font), and in cmr10: the
# PostScript Type 42 writer of recent matplotlib bounds every glyph of the
# whole font, which costs a second for DejaVu Sans and little for cmr10.
TEXT = "Ünïcødé ß € ∑ ą"


def _glyph_names(path: str, text: str) -> set[str]:
    font = mod("matplotlib.ft2font").FT2Font(path)
    return {font.get_glyph_name(font.get_char_index(ord(c))) for c in set(text) if c != " "}


def _font_file(name: str) -> str:
    return str(Path(mod("matplotlib").get_data_path()) / "fonts" / "ttf" / name)


def _save_text(fmt: str, fonttype: Any, path: str, text: str) -> bytes:
    matplotlib = mod("matplotlib")
    font_manager = mod("matplotlib.font_manager")
    with matplotlib.rc_context({f"{fmt}.fonttype": fonttype}):
        fig = _agg_figure(figsize=(2, 1))
        fig.text(0.05, 0.5, text, fontproperties=font_manager.FontProperties(fname=path))
        out = io.BytesIO()
        fig.savefig(out, format=fmt)
    return out.getvalue()


def _pdf_fonts(data: bytes) -> list[Any]:
    """The TrueType fonts embedded in a PDF (its FontFile2 streams), read by fontTools."""
    ttlib = mod("fontTools.ttLib")
    fonts = []
    for number in re.findall(rb"/FontFile2 (\d+) 0 R", data):
        start = re.search(rb"(?:^|[\r\n])%s 0 obj\s*<<(.*?)>>\s*stream\r?\n" % number, data, re.S)
        assert start is not None, f"FontFile2 object {number!r} is missing"
        stream = data[start.end() :]
        if b"/FlateDecode" in start.group(1):
            stream = zlib.decompressobj().decompress(stream)
        fonts.append(ttlib.TTFont(io.BytesIO(stream)))
    return fonts


def _ps_type42_font(data: bytes) -> Any:
    """The Type 42 font of a PostScript file (its sfnts strings), read by fontTools."""
    ttlib = mod("fontTools.ttLib")
    found = re.search(rb"/sfnts\s*\[(.*?)\]", data, re.S)
    assert found is not None, "a Type 42 font without sfnts"
    strings = re.findall(rb"<([0-9A-Fa-f\s]*)>", found.group(1))
    font = b"".join(bytes.fromhex(re.sub(rb"\s", b"", s).decode()) for s in strings)
    return ttlib.TTFont(io.BytesIO(font))


@check("matplotlib", "fonttools", valid={"matplotlib": ">=3.6"})
def check_embedded_fonts() -> None:
    """Non-ASCII text in PDF and PostScript (Type 3 and subset Type 42 fonts) and SVG."""
    dejavu = _font_file("DejaVuSans.ttf")
    small = _font_file("cmr10.ttf")
    small_text = "Smoke ¡£§"

    pdf3 = _save_text("pdf", 3, dejavu, TEXT)
    assert pdf3.startswith(b"%PDF-"), pdf3[:20]
    assert pdf3.rstrip().endswith(b"%%EOF"), pdf3[-20:]
    assert b"/Type3" in pdf3, "no Type 3 font in the PDF"
    assert b"DejaVuSans" in pdf3

    pdf42 = _save_text("pdf", 42, dejavu, TEXT)
    assert pdf42.startswith(b"%PDF-"), pdf42[:20]
    assert pdf42.rstrip().endswith(b"%%EOF"), pdf42[-20:]
    fonts = _pdf_fonts(pdf42)
    assert fonts, "no embedded TrueType font in the PDF"
    covered: set[int] = set()
    for font in fonts:
        assert len(font.getGlyphOrder()) < 200, "the embedded font is not a subset"
        covered.update(font.getBestCmap() or {})
    missing = {c for c in TEXT if c != " " and ord(c) not in covered}
    assert not missing, f"the embedded subsets lack {sorted(missing)}"

    for fonttype in (3, 42):
        ps = _save_text("ps", fonttype, small, small_text)
        assert ps.startswith(b"%!PS-Adobe-3.0"), ps[:20]
        assert ps.rstrip().endswith(b"%%EOF"), ps[-20:]
        assert b"/FontType %d" % fonttype in ps, f"no Type {fonttype} font in the PostScript"
        names = _glyph_names(small, small_text)
        absent = {n for n in names if f"/{n}".encode() not in ps}
        assert not absent, f"Type {fonttype} PostScript lacks glyphs {sorted(absent)}"
        if fonttype == 42:  # the subset fontTools made, whole (its glyph names may be dropped)
            glyphs = len(_ps_type42_font(ps).getGlyphOrder())
            assert len(names) <= glyphs < 100, f"a Type 42 font of {glyphs} glyphs"

    svg = _save_text("svg", "path", dejavu, TEXT).decode("utf-8")
    assert svg.rstrip().endswith("</svg>")
    ids = set(re.findall(r'<path id="(DejaVuSans-[0-9a-f]+)"', svg))
    assert len(ids) == len(set(TEXT)), f"{len(ids)} glyph outlines for {len(set(TEXT))} characters"
    svg_text = _save_text("svg", "none", dejavu, TEXT).decode("utf-8")
    assert TEXT in svg_text, "SVG text is not kept as text"


def _overlap(a: Any, b: Any) -> float:
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return float(max(0.0, width) * max(0.0, height))


def _assert_apart(fig: Any, label: str, count: int) -> None:
    """No two axes (colour bars included) of ``fig`` and its subfigures overlap,
    nor their labels; all of them inside the figure (in pixels: the positions of
    a subfigure's axes are relative to it)."""
    renderer = fig.canvas.get_renderer()
    every = fig.findobj(mod("matplotlib.axes").Axes)
    assert len(every) == count, f"{label}: found {len(every)} axes, made {count}"
    page = fig.bbox
    boxes = [(ax.get_window_extent(renderer), ax.get_tightbbox(renderer)) for ax in every]
    for box, _ in boxes:
        assert page.x0 - 1 <= box.x0 < box.x1 <= page.x1 + 1, f"{label}: axes outside {box}"
        assert page.y0 - 1 <= box.y0 < box.y1 <= page.y1 + 1, f"{label}: axes outside {box}"
    for (box_a, tight_a), (box_b, tight_b) in itertools.combinations(boxes, 2):
        assert _overlap(box_a, box_b) < 1.0, f"{label}: axes overlap: {box_a}, {box_b}"
        shared = _overlap(tight_a, tight_b)
        assert shared < 1.0, f"{label}: axes decorations overlap by {shared:.1f} px²"


@check("matplotlib", "kiwisolver", valid={"matplotlib": ">=3.6"})
def check_constrained_layout() -> None:
    """Constrained and compressed layout: colour bars, titles, nested subfigures, no overlaps."""
    np = mod("numpy")
    layout_engine = mod("matplotlib.layout_engine")
    field = np.outer(np.arange(6.0), np.arange(8.0))

    fig = _agg_figure(figsize=(6, 3), dpi=30, **constrained_layout())
    assert isinstance(fig.get_layout_engine(), layout_engine.ConstrainedLayoutEngine)
    left, right = fig.subfigures(1, 2)
    for i, ax in enumerate(left.subplots(2, 1)):
        left.colorbar(ax.imshow(field * (i + 1)), ax=ax)
        ax.set_ylabel("a long label\non two lines")
        ax.set_title(f"panel {i}")
    left.suptitle("left")
    top, bottom = right.subfigures(2, 1)
    top.subplots().plot([1, 2, 3], [3e6, 1e6, 2e6])
    ax = bottom.subplots()
    bottom.colorbar(ax.pcolormesh(field), ax=ax, orientation="horizontal")
    ax.set_xlabel("x")
    title = fig.suptitle("constrained")
    fig.canvas.draw()
    _assert_apart(fig, "constrained", 7)
    top_edge = title.get_window_extent().y0
    for ax in fig.findobj(mod("matplotlib.axes").Axes):
        assert ax.get_window_extent().y1 <= top_edge + 1, "the suptitle overlaps an axes"

    squeezed = _agg_figure(figsize=(4, 2), dpi=30, layout="compressed")
    pair = squeezed.subplots(1, 2)
    for ax in pair:
        shown = ax.imshow(field)
    squeezed.colorbar(shown, ax=pair)
    squeezed.suptitle("compressed")
    squeezed.canvas.draw()
    _assert_apart(squeezed, "compressed", 3)


def _contour_algorithms() -> list[str]:
    """The algorithms contourpy offers that this matplotlib accepts."""
    contourpy = mod("contourpy")
    matplotlib = mod("matplotlib")
    offered = sorted(
        name[: -len("ContourGenerator")].lower()
        for name in dir(contourpy)
        if name.endswith("ContourGenerator")
        and name != "ContourGenerator"
        and issubclass(getattr(contourpy, name), contourpy.ContourGenerator)
    )
    validator = matplotlib.rcParams.validate["contour.algorithm"]
    accepted = getattr(validator, "valid", None)
    if accepted is not None:
        skipped = [a for a in offered if a not in accepted]
        if skipped:
            print(f"this matplotlib does not take {skipped}")
        offered = [a for a in offered if a in accepted]
    return offered


def _subpaths(paths: Iterable[Any]) -> list[tuple[Any, bool]]:
    """Each piece (vertices, closed) of compound paths, split at MOVETO."""
    np = mod("numpy")
    path_class = mod("matplotlib.path").Path
    pieces = []
    for path in paths:
        vertices = np.asarray(path.vertices)
        codes = path.codes
        if codes is None:
            pieces.append((vertices, bool(np.allclose(vertices[0], vertices[-1]))))
            continue
        starts = [*np.flatnonzero(codes == path_class.MOVETO), len(codes)]
        for i in range(len(starts) - 1):
            piece = vertices[starts[i] : starts[i + 1]]
            closed = codes[starts[i + 1] - 1] == path_class.CLOSEPOLY
            pieces.append((piece, bool(closed or np.allclose(piece[0], piece[-1]))))
    return pieces


def _level_paths(contours: Any) -> list[list[Any]]:
    """The paths of each level: one compound path per level from matplotlib 3.8,
    a collection per level before."""
    if installed("matplotlib", ">=3.8"):
        return [[path] for path in contours.get_paths()]
    return [list(collection.get_paths()) for collection in contours.collections]


def _area(vertices: Any) -> float:
    x, y = vertices[:, 0], vertices[:, 1]
    return 0.5 * float((x * mod("numpy").roll(y, -1) - mod("numpy").roll(x, -1) * y).sum())


@check("matplotlib", "contourpy", valid={"matplotlib": ">=3.6"})
def check_contour_algorithms() -> None:
    """contour and contourf on every contourpy algorithm: circles on their radii, areas agreeing."""
    np = mod("numpy")
    algorithms = _contour_algorithms()
    assert "serial" in algorithms, algorithms
    x = np.linspace(-1, 1, 41)
    xx, yy = np.meshgrid(x, x)
    zz = xx**2 + yy**2
    line_levels = [0.1, 0.3, 0.5, 0.7]
    fill_levels = [0.0, 0.25, 0.5, 0.75, 1.0, 2.01]
    # a band between squared radii r0 and r1 inside the square: pi (r1 - r0), the corners outside 1
    expected = [np.pi * (fill_levels[i + 1] - fill_levels[i]) for i in range(len(fill_levels) - 2)]
    expected.append(4 - np.pi)

    fig = _agg_figure(figsize=(2, 2), dpi=20)
    ax = fig.add_subplot()
    areas: dict[str, list[float]] = {}
    for algorithm in algorithms:
        lines = ax.contour(xx, yy, zz, levels=line_levels, algorithm=algorithm)
        assert list(lines.levels) == line_levels, (algorithm, lines.levels)
        for i, paths in enumerate(_level_paths(lines)):
            level = line_levels[i]
            pieces = _subpaths(paths)
            assert len(pieces) == 1, f"{algorithm}: level {level} in {len(pieces)} pieces"
            radii = np.hypot(pieces[0][0][:, 0], pieces[0][0][:, 1])
            assert np.abs(radii - np.sqrt(level)).max() < 0.01, (algorithm, level)

        filled = ax.contourf(xx, yy, zz, levels=fill_levels, algorithm=algorithm)
        assert list(filled.levels) == fill_levels, (algorithm, filled.levels)
        bands = _level_paths(filled)
        assert len(bands) == len(fill_levels) - 1, (algorithm, len(bands))
        areas[algorithm] = []
        for i, paths in enumerate(bands):
            pieces = _subpaths(paths)
            assert pieces, f"{algorithm}: band {i} is empty"
            assert all(closed for _, closed in pieces), f"{algorithm}: band {i} not closed"
            areas[algorithm].append(abs(sum(_area(v) for v, _ in pieces)))
        assert np.allclose(areas[algorithm], expected, rtol=0.02), (algorithm, areas[algorithm])
        ax.cla()
    first = areas[algorithms[0]]
    for algorithm in algorithms[1:]:
        assert np.allclose(areas[algorithm], first, rtol=1e-3), (algorithm, areas)
    mod("matplotlib.backends.backend_agg").FigureCanvasAgg(fig).draw()


# A half-hour, a quarter-hour and a whole-hour zone with DST, and UTC; each
# hourly series starts at a local midnight away from a DST switch (where
# matplotlib's HourLocator repeats an hour whatever the partners).
PLOT_ZONES = ("Asia/Kolkata", "Pacific/Chatham", "America/New_York")


@check("pandas", "matplotlib", valid={"pandas": ">=1.5", "matplotlib": ">=3.6"})
def check_tz_aware_plots() -> None:
    """Time-zone-aware series plotted by pandas and matplotlib: x values and ticks in the zone."""
    np = mod("numpy")
    pd = mod("pandas")
    plt = mod("matplotlib.pyplot")
    mdates = mod("matplotlib.dates")

    for zone in PLOT_ZONES:
        index = pd.date_range("2024-07-01", periods=7, freq="h", tz=zone)
        series = pd.Series(np.arange(7.0), index=index)
        local = [(t.hour, t.minute) for t in index]
        utc = mdates.date2num(index.tz_convert("UTC").tz_localize(None).to_pydatetime())
        irregular = series.drop(series.index[3])

        fig, (direct, regular, gappy) = plt.subplots(1, 3, figsize=(6, 2), dpi=30)
        try:
            # matplotlib itself: instants in UTC, located and labelled in the zone
            (line,) = direct.plot(series.index, series.values)
            assert np.allclose(line.get_xdata(orig=False), utc, rtol=0, atol=1e-8), zone
            direct.xaxis.set_major_locator(mdates.HourLocator(tz=index.tz))
            direct.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=index.tz))
            # pandas, a regular series: periods of the wall-clock times
            series.plot(ax=regular)
            periods = regular.get_lines()[0].get_xdata()
            if not isinstance(periods[0], pd.Period):  # pandas 3 plots the ordinals
                periods = pd.PeriodIndex.from_ordinals(np.asarray(periods), freq=index.freq)
            assert [(p.hour, p.minute) for p in periods] == local, (zone, list(periods))
            # pandas, an irregular one: through its date converter, in UTC
            irregular.plot(ax=gappy)
            xdata = gappy.get_lines()[0].get_xdata(orig=False)
            assert np.allclose(xdata, np.delete(utc, 3), rtol=0, atol=1e-8), zone

            fig.canvas.draw()
            labels = [t.get_text() for t in direct.get_xticklabels() if t.get_text()]
            assert labels == [f"{h:02d}:{m:02d}" for h, m in local], (zone, labels)
            labels = [t.get_text() for t in regular.get_xticklabels() if t.get_text()]
            assert labels, f"{zone}: no tick labels"
            assert labels[0].startswith("00:00"), f"{zone}: the day starts at {labels[0]!r}"
            for tick in gappy.get_xticks():
                when = mdates.num2date(tick, tz=index.tz)
                assert when.minute == 0, f"{zone}: a tick at {when}, not on a local hour"
        finally:
            plt.close(fig)
