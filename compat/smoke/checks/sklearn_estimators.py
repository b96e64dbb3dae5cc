"""scikit-learn's whole registry on numpy and scipy: every estimator that
``sklearn.utils.all_estimators()`` lists, by kind, constructed with its default
parameters (a simple inner estimator for meta-estimators; only iteration and
ensemble sizes lowered, which cost time but pick no other code path), fitted
and used on small positive dense arrays and, where the estimator's tags accept
it, on scipy sparse CSR input. Default solvers are where scipy is reached.

Conservative by design (a false "incompatible" is worse than a miss): an
estimator whose tags say it takes other input (text, dicts, 1-d labels,
precomputed kernels) is left out, and a ValueError raised by scikit-learn's
own code is the estimator stating a documented requirement (too few samples,
components, a kind of target), not a break. What counts: any other exception,
a ValueError raised inside numpy/scipy/pandas (a partner rejecting what
scikit-learn handed it) or naming SciPy, and wrong shapes or labels out.
"""

from __future__ import annotations

import inspect
import time
import traceback
import warnings
from collections.abc import Callable, Iterable
from typing import Any

from .. import isolate
from . import breaks_stack, check, mod, sweep_deadline
from .shims import estimator_requirements, is_outlier_detector

VALID = {"scikit-learn": ">=1.0", "scipy": ">=1.6"}

# Parameters that only set how much work is done; lowered when their default is
# larger, so that every estimator fits in milliseconds on the small data.
COST_CAPS = {
    "n_estimators": 5,
    "max_iter": 30,
    "n_iter": 30,
    "n_init": 1,
    "Cs": 2,
    "n_alphas": 3,
    "cv": 2,
    "max_trials": 10,
    "n_resampling": 10,
    "n_restarts_optimizer": 0,
    "max_no_improvement": 3,
    "thresholds": 10,
}

# Packages whose own ValueError, raised on what scikit-learn handed them, is a
# break of the pair rather than a requirement of the estimator.
PARTNERS = ("numpy", "scipy", "pandas")

N_SAMPLES = 40
N_FEATURES = 4


def data() -> dict[str, Any]:
    np = mod("numpy")
    rng = np.random.RandomState(0)
    x = rng.uniform(0.5, 1.5, (N_SAMPLES, N_FEATURES))
    y_reg = x @ np.array([1.0, 2.0, 0.5, 1.0]) + rng.uniform(0, 0.1, N_SAMPLES)
    y_cls = (x[:, 0] + x[:, 1] > np.median(x[:, 0] + x[:, 1])).astype(np.int64)
    return {
        "x": x,
        "y_cls": y_cls,
        "y_reg": y_reg,
        "y_multi": np.column_stack([y_reg, 0.5 * y_reg + 1]),
    }


def counts_as_break(exc: BaseException, *, sparse_input: bool) -> bool:
    """Whether an estimator's exception is a break of the stack (see the module
    docstring) rather than the estimator refusing input it documents it refuses."""
    return breaks_stack(exc, partners=PARTNERS, named=("scipy",), sparse_input=sparse_input)


INNER = ("estimator", "base_estimator", "regressor", "classifier")


def inner_estimator(kind: str) -> Any:
    linear = mod("sklearn.linear_model")
    return linear.LogisticRegression() if kind == "classifier" else linear.Ridge()


def required_arguments(cls: type, kind: str) -> dict[str, Any] | None:
    """Values for the constructor parameters without a default (meta-estimators),
    or None when one is of a kind this sweep has no value for."""
    np = mod("numpy")
    preprocessing = mod("sklearn.preprocessing")
    tree = mod("sklearn.tree")
    second = (
        tree.DecisionTreeClassifier(max_depth=2)
        if kind == "classifier"
        else tree.DecisionTreeRegressor(max_depth=2)
    )
    values: dict[str, Callable[[], Any]] = {
        "estimator": lambda: inner_estimator(kind),
        "base_estimator": lambda: inner_estimator(kind),
        "estimators": lambda: [("a", inner_estimator(kind)), ("b", second)],
        "regressor": lambda: inner_estimator("regressor"),
        "classifier": lambda: inner_estimator("classifier"),
        "steps": lambda: [("scale", preprocessing.StandardScaler()), ("m", inner_estimator(kind))],
        "transformer_list": lambda: [("scale", preprocessing.StandardScaler())],
        "transformers": lambda: [("scale", preprocessing.StandardScaler(), [0, 1])],
        "dictionary": lambda: np.random.RandomState(1).uniform(0, 1, (3, N_FEATURES)),
    }
    arguments: dict[str, Any] = {}
    for parameter in inspect.signature(cls).parameters.values():
        if parameter.name == "self" or parameter.kind in (
            parameter.VAR_POSITIONAL,
            parameter.VAR_KEYWORD,
        ):
            continue
        if parameter.default is parameter.empty:
            if parameter.name not in values:
                return None
            arguments[parameter.name] = values[parameter.name]()
        elif parameter.default is None and parameter.name in INNER:
            # A meta-estimator whose inner estimator defaults to None: some build
            # their own (AdaBoost), others require one (RegressorChain in 1.7).
            arguments[parameter.name] = values[parameter.name]()
    return arguments


def construct(cls: type, kind: str) -> Any | None:
    """The estimator with default parameters, cost parameters lowered."""
    arguments = required_arguments(cls, kind)
    if arguments is None:
        return None
    estimator = cls(**arguments)
    params = estimator.get_params(deep=False)
    lowered = {
        name: cap
        for name, cap in COST_CAPS.items()
        if isinstance(params.get(name), int)
        and not isinstance(params.get(name), bool)
        and params[name] > cap
    }
    if params.get("cv", 0) is None:
        lowered["cv"] = COST_CAPS["cv"]
    if lowered:
        estimator.set_params(**lowered)
    return estimator


def applicable(estimator: Any) -> dict[str, Any] | None:
    """The estimator's requirements, or None when it takes other input than a
    2-d numeric array (text, dicts, labels, precomputed kernels) or asks
    scikit-learn's own tests to leave it out."""
    needs = estimator_requirements(estimator)
    if "2darray" not in needs["x_kinds"] or needs["x_kinds"] & {"string", "dict"}:
        return None
    if needs["x_kinds"] & {"1dlabels", "2dlabels", "categorical"}:
        return None
    if needs["pairwise"] or needs["skip"]:
        return None
    return needs


def exercise(
    estimator: Any, kind: str, x: Any, sets: dict[str, Any], needs: dict[str, Any]
) -> None:
    """Fit and use one estimator of ``kind``; assert what comes out has the right shape."""
    np = mod("numpy")
    base = mod("sklearn.base")
    n = x.shape[0]
    if kind == "classifier" or base.is_classifier(estimator):
        y = sets["y_cls"]
    elif needs["multioutput_only"]:
        y = sets["y_multi"]
    else:
        y = sets["y_reg"]
    if kind == "classifier":
        predicted = estimator.fit(x, y).predict(x)
        assert np.shape(predicted) == (n,), np.shape(predicted)
        assert set(np.unique(predicted)) <= set(estimator.classes_), np.unique(predicted)
    elif kind == "regressor":
        predicted = estimator.fit(x, y).predict(x)
        assert np.shape(predicted)[0] == n, np.shape(predicted)
    elif kind == "transformer":
        out = estimator.fit_transform(x, y)
        if isinstance(out, tuple):  # cross-decomposition: (x scores, y scores)
            out = out[0]
        assert out.shape[0] == n, out.shape
    elif kind == "cluster":
        estimator.fit(x)
        labels = getattr(estimator, "labels_", None)
        if labels is not None:  # FeatureAgglomeration labels the features
            assert len(labels) in (n, x.shape[1]), len(labels)
    else:  # outlier detectors
        flags = estimator.fit_predict(x) if hasattr(estimator, "fit_predict") else None
        if flags is None:
            flags = estimator.fit(x).predict(x)
        assert set(np.unique(flags)) <= {-1, 1}, np.unique(flags)


def estimators_of(kind: str) -> list[tuple[str, type]]:
    utils = mod("sklearn.utils")
    if kind != "outlier":
        return list(utils.all_estimators(type_filter=kind))
    found = []
    for name, cls in utils.all_estimators():
        try:
            instance = construct(cls, "outlier")
            detector = instance is not None and is_outlier_detector(instance)
        except Exception:
            continue
        if detector:
            found.append((name, cls))
    return found


class Findings:
    """What a sweep found: breaks (with their logs printed) and check defects."""

    def __init__(self) -> None:
        self.broken: list[str] = []
        self.defects: list[BaseException] = []
        self.timings: list[tuple[float, str]] = []
        self.tried = 0
        self.deadline = sweep_deadline()
        self.left_out = 0

    def out_of_time(self) -> bool:
        """Past the sweep's share of the time limit: count what is left out."""
        if time.monotonic() < self.deadline:
            return False
        self.left_out += 1
        return True

    def judge(self, what: str, exc: BaseException, *, sparse_input: bool) -> None:
        if isinstance(exc, AssertionError) or (
            not isolate.is_check_defect(exc) and counts_as_break(exc, sparse_input=sparse_input)
        ):
            print(f"--- {what} ---")
            traceback.print_exception(type(exc), exc, exc.__traceback__)
            self.broken.append(f"{what}: {isolate.describe_exception(exc)}")
        elif isolate.is_check_defect(exc):
            self.defects.append(exc)

    def conclude(self, kind: str) -> None:
        slowest = sorted(self.timings)[-5:]
        if self.left_out:
            print(f"time budget spent: {self.left_out} estimators not run (a miss, not a failure)")
        print(
            f"{self.tried} fits of {kind}s; {len(self.broken)} broken; slowest: "
            + ", ".join(f"{what} {seconds:.2f} s" for seconds, what in slowest)
        )
        if self.broken:
            raise AssertionError(f"{len(self.broken)} {kind} fits broke: " + "; ".join(self.broken))
        if self.defects:
            raise self.defects[0]
        assert self.left_out or self.tried >= 3, f"only {self.tried} {kind} fits ran"


def sweep(kind: str) -> None:
    """Run every estimator of ``kind`` on dense and, where accepted, sparse input;
    raise with every break found (the first line counts them and names them)."""
    sparse = mod("scipy.sparse")
    base = mod("sklearn.base")
    sets = data()
    dense = sets["x"]
    inputs = {"dense": dense, "sparse": sparse.csr_matrix(dense * (dense > 0.8))}
    findings = Findings()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, cls in estimators_of(kind):
            try:
                template = construct(cls, kind)
                needs = None if template is None else applicable(template)
            except Exception as exc:
                # Not built with defaults, or its tags unreadable without a
                # parameter set: not ours to judge.
                print(f"--- {name}: left out: {isolate.describe_exception(exc)}")
                continue
            if needs is None:
                continue
            for label, x in inputs.items():
                if label == "sparse" and needs["sparse"] is False:
                    continue
                if findings.out_of_time():
                    continue
                findings.tried += 1
                started = time.monotonic()
                try:
                    exercise(base.clone(template), kind, x, sets, needs)
                except Exception as exc:
                    findings.judge(f"{name} ({label})", exc, sparse_input=label == "sparse")
                finally:
                    findings.timings.append((time.monotonic() - started, f"{name} ({label})"))
    findings.conclude(kind)


def _register(kinds: Iterable[tuple[str, str]]) -> None:
    for kind, plural in kinds:

        def body(kind: str = kind) -> None:
            sweep(kind)

        body.__name__ = f"check_{plural}"
        body.__doc__ = (
            f"Every {kind} all_estimators() lists: default parameters, dense and sparse input."
        )
        check("scikit-learn", "scipy", valid=VALID)(body)


_register(
    (
        ("classifier", "classifiers"),
        ("regressor", "regressors"),
        ("transformer", "transformers"),
        ("cluster", "clusterers"),
        ("outlier", "outlier_detectors"),
    )
)
