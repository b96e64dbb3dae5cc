"""Distribution names, the modules they install, and what importing one means.

Runs inside the environment under test: standard library only, Python 3.9+.
"""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Iterable

# Base libraries first, so that a broken numpy is reported on numpy and not on
# the first package that happens to import it.
KNOWN_ORDER = ("numpy", "scipy", "pandas", "matplotlib", "scikit-learn", "lightgbm")

# Distributions whose import name is not their distribution name, for when the
# metadata cannot tell (or tells more than we want, e.g. matplotlib's pylab).
IMPORT_NAMES = {
    "scikit-learn": ("sklearn",),
    "pillow": ("PIL",),
    "python-dateutil": ("dateutil",),
    "pyyaml": ("yaml",),
    "beautifulsoup4": ("bs4",),
    "opencv-python": ("cv2",),
    "opencv-python-headless": ("cv2",),
    "opencv-contrib-python": ("cv2",),
    "scikit-image": ("skimage",),
    "protobuf": ("google.protobuf",),
    "attrs": ("attr", "attrs"),
    "msgpack-python": ("msgpack",),
    "pyzmq": ("zmq",),
    "pytorch": ("torch",),
    "tensorflow-cpu": ("tensorflow",),
    "matplotlib": ("matplotlib",),  # not pylab nor mpl_toolkits
    "fonttools": ("fontTools",),
    "imbalanced-learn": ("imblearn",),
    "scikit-optimize": ("skopt",),
}

# Submodules imported as part of a package's import check: a bare `import
# scipy` or `import sklearn` loads almost none of the compiled code where
# binary incompatibilities show up; the zygotes import them too, so the checks
# forked below them find them loaded.
DEEP_MODULES = {
    "numpy": ("numpy.linalg", "numpy.fft", "numpy.random"),
    "scipy": (
        "scipy.special",
        "scipy.linalg",
        "scipy.sparse",
        "scipy.sparse.linalg",
        "scipy.optimize",
        "scipy.stats",
        "scipy.interpolate",
        "scipy.signal",
        "scipy.ndimage",
        "scipy.spatial",
    ),
    "pandas": (),
    "matplotlib": (
        "matplotlib.pyplot",
        "matplotlib.backends.backend_agg",  # its C++ renderer loads here, not with pyplot
        "matplotlib.backends.backend_svg",
    ),
    "scikit-learn": (
        "sklearn.base",
        "sklearn.linear_model",
        "sklearn.decomposition",
        "sklearn.preprocessing",
        "sklearn.pipeline",
        "sklearn.compose",
        "sklearn.model_selection",
        "sklearn.manifold",
        "sklearn.neighbors",
        "sklearn.isotonic",
        "sklearn.metrics",
        "sklearn.datasets",
        # Every estimator module (all present since 0.22): their compiled parts
        # load here, once, rather than in each check of the estimator sweep.
        "sklearn.calibration",
        "sklearn.cluster",
        "sklearn.covariance",
        "sklearn.cross_decomposition",
        "sklearn.discriminant_analysis",
        "sklearn.dummy",
        "sklearn.ensemble",
        "sklearn.feature_extraction",
        "sklearn.feature_selection",
        "sklearn.gaussian_process",
        "sklearn.impute",
        "sklearn.inspection",
        "sklearn.kernel_approximation",
        "sklearn.kernel_ridge",
        "sklearn.mixture",
        "sklearn.multiclass",
        "sklearn.multioutput",
        "sklearn.naive_bayes",
        "sklearn.neural_network",
        "sklearn.random_projection",
        "sklearn.semi_supervised",
        "sklearn.svm",
        "sklearn.tree",
    ),
    "lightgbm": (),
}

_SEPARATORS = re.compile(r"[-_.]+")
_SPEC_START = re.compile(r"[\s\[=<>!~;@(]")


def canonical(name: str) -> str:
    """PEP 503 normalised distribution name; a version or extras suffix is dropped."""
    bare = _SPEC_START.split(name.strip(), maxsplit=1)[0]
    return _SEPARATORS.sub("-", bare).lower()


def find_distribution(name: str) -> importlib.metadata.Distribution | None:
    """The installed distribution of that name, wherever on sys.path it is."""
    wanted = canonical(name)
    try:
        return importlib.metadata.distribution(wanted)
    except importlib.metadata.PackageNotFoundError:
        pass
    # Older Pythons do not normalise names when looking dist-info folders up.
    for dist in importlib.metadata.distributions():
        try:
            found = dist.metadata["Name"]
        except KeyError:  # Python 3.14+, a dist-info without a Name
            continue
        if found and canonical(str(found)) == wanted:
            return dist
    return None


def import_names(name: str, dist: importlib.metadata.Distribution | None = None) -> list[str]:
    """The top-level modules to import to check distribution ``name``."""
    canon = canonical(name)
    if canon in IMPORT_NAMES:
        return list(IMPORT_NAMES[canon])
    guess = canon.replace("-", "_")
    found = _top_levels(dist) if dist is not None else []
    if not found:
        return [guess]
    if guess in found:
        return [guess]
    if guess.lower() in (n.lower() for n in found):
        return [n for n in found if n.lower() == guess.lower()]
    public = [n for n in found if not n.startswith("_")]
    return public or found


def _top_levels(dist: importlib.metadata.Distribution) -> list[str]:
    text = dist.read_text("top_level.txt")
    if text:
        names = [line.strip().replace("/", ".") for line in text.splitlines()]
        return _unique(n for n in names if n)
    names = []
    for file in dist.files or ():
        parts = file.parts
        if (
            not parts
            or parts[0] in ("..", "__pycache__")
            or parts[0].endswith((".dist-info", ".data", ".egg-info"))
        ):
            continue
        if len(parts) > 1:
            names.append(parts[0])
        elif parts[0].endswith(".py"):
            names.append(parts[0][:-3])
        elif ".cpython-" in parts[0] or parts[0].endswith((".so", ".pyd", ".abi3.so")):
            names.append(parts[0].split(".", 1)[0])
    return _unique(n for n in names if n.isidentifier())


def _unique(names: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for n in names:
        if n not in seen:
            seen.append(n)
    return seen


def modules_to_import(name: str, dist: importlib.metadata.Distribution | None) -> list[str]:
    """Top-level modules, then the deep submodules, for the import check of ``name``."""
    canon = canonical(name)
    return import_names(canon, dist) + list(DEEP_MODULES.get(canon, ()))


def ordered(names: list[str]) -> list[str]:
    """Canonical names, duplicates dropped, known base libraries first."""
    canon = []
    for name in names:
        c = canonical(name)
        if c and c not in canon:
            canon.append(c)
    known = [n for n in KNOWN_ORDER if n in canon]
    return known + [n for n in canon if n not in KNOWN_ORDER]


def with_dependencies(names: Iterable[str]) -> list[str]:
    """``names`` and every installed distribution they require, transitively
    (requirements of extras left out): the combination, where no site directory
    tells it apart from the rest of the environment."""
    found: list[str] = []
    todo = [canonical(n) for n in names]
    while todo:
        name = todo.pop(0)
        dist = find_distribution(name) if name not in found else None
        if dist is None:
            continue
        found.append(name)
        for requirement in dist.requires or ():
            if "extra" not in requirement.partition(";")[2]:
                todo.append(canonical(requirement))
    return found


def installed_known() -> list[str]:
    """The known distributions installed here: the default combination."""
    return [n for n in KNOWN_ORDER if find_distribution(n) is not None]
