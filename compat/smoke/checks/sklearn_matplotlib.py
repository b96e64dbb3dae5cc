"""scikit-learn's plotting on matplotlib (Agg): every ``*Display`` class the
installed scikit-learn lists (``sklearn.utils.discovery.all_displays()`` from
1.3, the known ones before), built ``from_estimator`` on small data and
rendered to PNG and SVG; ``sklearn.tree.plot_tree``.

A ValueError raised by scikit-learn itself (a display that needs another kind
of estimator or target) is a documented requirement, not a break; see
:func:`breaks_stack`.
"""

from __future__ import annotations

import inspect
import time
import traceback
import warnings
from typing import Any

from . import breaks_stack, check, mod, render, sweep_deadline

VALID = {"scikit-learn": ">=1.0", "matplotlib": ">=3.3"}

# Where the displays lived before scikit-learn listed them (attribute, module).
KNOWN_DISPLAYS = (
    ("ConfusionMatrixDisplay", "sklearn.metrics"),
    ("RocCurveDisplay", "sklearn.metrics"),
    ("PrecisionRecallDisplay", "sklearn.metrics"),
    ("DetCurveDisplay", "sklearn.metrics"),
    ("PredictionErrorDisplay", "sklearn.metrics"),
    ("CalibrationDisplay", "sklearn.calibration"),
    ("PartialDependenceDisplay", "sklearn.inspection"),
    ("DecisionBoundaryDisplay", "sklearn.inspection"),
    ("LearningCurveDisplay", "sklearn.model_selection"),
    ("ValidationCurveDisplay", "sklearn.model_selection"),
)


def displays() -> list[tuple[str, Any]]:
    try:
        discovery = mod("sklearn.utils.discovery")
    except ImportError:  # before 1.3
        found = []
        for name, module in KNOWN_DISPLAYS:
            cls = getattr(mod(module), name, None)
            if cls is not None:
                found.append((name, cls))
        return found
    return list(discovery.all_displays())


def _arguments(method: Any, estimator: Any, x: Any, y: Any) -> dict[str, Any] | None:
    values = {
        "estimator": estimator,
        "X": x,
        "y": y,
        "features": [0],
        "param_name": "alpha" if "alpha" in estimator.get_params() else "C",
        "param_range": [0.1, 1.0],
    }
    arguments: dict[str, Any] = {}
    parameters = inspect.signature(method).parameters
    for parameter in parameters.values():
        if parameter.default is parameter.empty and parameter.kind in (
            parameter.POSITIONAL_OR_KEYWORD,
            parameter.KEYWORD_ONLY,
        ):
            if parameter.name not in values:
                return None
            arguments[parameter.name] = values[parameter.name]
    if "cv" in parameters:
        arguments["cv"] = 2
    return arguments


@check("scikit-learn", "matplotlib", valid=VALID)
def check_displays() -> None:
    """Every *Display scikit-learn lists, from_estimator on a classifier or regressor, PNG+SVG."""
    np = mod("numpy")
    plt = mod("matplotlib.pyplot")
    linear = mod("sklearn.linear_model")
    rng = np.random.RandomState(0)
    x = rng.normal(0, 1, (60, 2))
    y_cls = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(0, 0.3, 60) > 0).astype(int)
    y_reg = x @ np.array([1.5, -1.0]) + rng.normal(0, 0.1, 60)
    models = (
        (linear.LogisticRegression().fit(x, y_cls), y_cls),
        (linear.Ridge().fit(x, y_reg), y_reg),
    )
    broken: list[str] = []
    drawn = []
    deadline = sweep_deadline()
    late = False
    for name, cls in displays():
        method = getattr(cls, "from_estimator", None)
        if method is None:
            continue
        if time.monotonic() > deadline:
            print(f"time budget spent before {name}: not drawn (a miss, not a failure)")
            late = True
            continue
        for estimator, y in models:
            arguments = _arguments(method, estimator, x, y)
            if arguments is None:
                break
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    display = method(**arguments)
                    render(display.figure_)
                drawn.append(f"{name}({type(estimator).__name__})")
                break  # one kind of estimator per display is enough
            except Exception as exc:
                if breaks_stack(exc, partners=("matplotlib", "numpy", "scipy")):
                    print(f"--- {name} with {type(estimator).__name__} ---")
                    traceback.print_exception(type(exc), exc, exc.__traceback__)
                    broken.append(
                        f"{name}: {traceback.format_exception_only(type(exc), exc)[-1].strip()}"
                    )
                    break
            finally:
                plt.close("all")
    print("drawn: " + ", ".join(drawn))
    if broken:
        raise AssertionError(f"{len(broken)} displays broke: " + "; ".join(broken))
    assert late or len(drawn) >= 4, drawn


@check("scikit-learn", "matplotlib", valid=VALID)
def check_plot_tree() -> None:
    """sklearn.tree.plot_tree of a fitted tree: annotations as matplotlib text, PNG+SVG."""
    np = mod("numpy")
    plt = mod("matplotlib.pyplot")
    tree = mod("sklearn.tree")
    rng = np.random.RandomState(1)
    x = rng.normal(0, 1, (80, 3))
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 1).astype(int)
    model = tree.DecisionTreeClassifier(max_depth=3, random_state=0).fit(x, y)
    fig, ax = plt.subplots(figsize=(6, 4))
    try:
        annotations = tree.plot_tree(
            model, feature_names=["a", "b", "c"], filled=True, rounded=True, ax=ax
        )
        assert len(annotations) >= model.tree_.node_count
        assert any("a <=" in a.get_text() for a in annotations)
        render(fig)
    finally:
        plt.close(fig)
