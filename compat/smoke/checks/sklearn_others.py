"""scikit-learn's estimator protocol on the estimators of every other installed
distribution that declares scikit-learn among its requirements, in any extra
(lightgbm, xgboost, imbalanced-learn...): each public class of its top-level
modules that subclasses ``sklearn.base.BaseEstimator`` is built with its
defaults (cost parameters lowered), cloned, asked its kind and tags the way
scikit-learn asks, fitted inside scikit-learn's own machinery (a Pipeline under
``cross_val_score``, ``GridSearchCV``; a transformer before a model), used to
predict, and pickled and loaded again with the same predictions.

These packages subclass scikit-learn's bases and are called back by its model
selection, so that is where a new scikit-learn release breaks them (estimator
tags in 1.6, ``_estimator_type`` in 1.8). Judged like the registry sweeps
(:func:`breaks_stack`): the estimator's own ValueError (a ranker without
groups), or any error of its own raised in its own code that is not a sign of
drift (lightgbm 2.0 finding too few rows to bin), is a requirement, not a break.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import pickle
import traceback
import warnings
from pathlib import Path
from typing import Any

from .. import dists, isolate
from . import OutOfTime, Skip, breaks_stack, check, mod, sweep_deadline, until
from .sklearn_estimators import PARTNERS, construct, data


def dependents() -> list[importlib.metadata.Distribution]:
    """Every installed distribution but scikit-learn that requires it, extras too."""
    found: dict[str, importlib.metadata.Distribution] = {}
    for dist in importlib.metadata.distributions():
        name = dists.canonical(str(dist.metadata["Name"] or ""))
        requires = {dists.canonical(r) for r in dist.requires or ()}
        if name and name != "scikit-learn" and "scikit-learn" in requires:
            found.setdefault(name, dist)
    return [found[n] for n in sorted(found)]


def estimators_of(dist: importlib.metadata.Distribution) -> list[tuple[str, type]]:
    """The public estimator classes a distribution's top-level modules offer,
    defined in the distribution itself (not one it re-exports)."""
    base = mod("sklearn.base")
    found: dict[str, type] = {}
    for top in dists._top_levels(dist):
        try:
            module = mod(top)
        except Exception as exc:  # its import check judges that
            print(f"--- {top}: not imported: {isolate.describe_exception(exc)}")
            continue
        for name in sorted(getattr(module, "__all__", None) or dir(module)):
            try:
                obj = getattr(module, name, None)
            except Exception as exc:  # a lazy attribute needing what is not installed
                print(f"--- {top}.{name}: not available: {isolate.describe_exception(exc)}")
                continue
            if (
                isinstance(obj, type)
                and issubclass(obj, base.BaseEstimator)
                and not inspect.isabstract(obj)
                and not name.startswith("_")
                and str(obj.__module__).split(".")[0] == top
            ):
                found.setdefault(f"{obj.__module__}.{obj.__qualname__}", obj)
    return sorted(found.items())


def exercise(estimator: Any, sets: dict[str, Any]) -> str:
    """Take one estimator through scikit-learn's protocol; what kind it said it is."""
    np = mod("numpy")
    base = mod("sklearn.base")
    selection = mod("sklearn.model_selection")
    pipeline = mod("sklearn.pipeline")
    preprocessing = mod("sklearn.preprocessing")
    utils = mod("sklearn.utils")
    x = sets["x"]
    params = estimator.get_params()
    assert base.clone(estimator).get_params().keys() == params.keys()
    if hasattr(utils, "get_tags"):  # 1.6+: what every meta-estimator asks
        utils.get_tags(estimator)
    if base.is_classifier(estimator):
        kind, y = "classifier", sets["y_cls"]
    elif base.is_regressor(estimator):
        kind, y = "regressor", sets["y_reg"]
    else:
        if hasattr(estimator, "transform"):  # before a model, as in a Pipeline
            steps = pipeline.make_pipeline(
                base.clone(estimator), mod("sklearn.linear_model").Ridge()
            )
            selection.cross_val_score(steps, x, sets["y_reg"], cv=2, error_score="raise")
        fitted = base.clone(estimator).fit(x, sets["y_reg"])
        assert pickle.loads(pickle.dumps(fitted)) is not None
        return "transformer" if hasattr(estimator, "transform") else "estimator"
    steps = pipeline.make_pipeline(preprocessing.StandardScaler(), base.clone(estimator))
    scores = selection.cross_val_score(steps, x, y, cv=2, error_score="raise")
    assert np.shape(scores) == (2,), scores
    search = selection.GridSearchCV(base.clone(estimator), {}, cv=2, error_score="raise")
    predicted = search.fit(x, y).predict(x)
    assert np.shape(predicted)[0] == x.shape[0], np.shape(predicted)
    if kind == "classifier":
        assert set(np.unique(predicted)) <= set(search.best_estimator_.classes_)
    again = pickle.loads(pickle.dumps(search.best_estimator_)).predict(x)
    assert np.array_equal(np.asarray(again), np.asarray(predicted)), "predictions changed"
    return kind


# What a package calling a partner that changed raises, wherever it is raised.
DRIFT = (AssertionError, AttributeError, ImportError, NameError, TypeError, KeyError, IndexError)


def refused(exc: BaseException, dist: importlib.metadata.Distribution) -> bool:
    """The package's own error about the input, raised in its own code: lightgbm
    2.0 finding too few rows to bin, an XGBoostError. Not a sign of drift."""
    frames = traceback.extract_tb(exc.__traceback__)
    if isinstance(exc, DRIFT) or not frames:
        return False
    innermost = Path(frames[-1].filename).resolve()
    for top in dists._top_levels(dist):
        root = Path(str(dist.locate_file(top))).resolve()
        if innermost == root.with_name(f"{top}.py") or root in innermost.parents:
            return True
    return False


@check("scikit-learn", valid={"scikit-learn": ">=1.0"})
def check_estimators_of_other_packages() -> None:
    """Every estimator of every distribution requiring scikit-learn, through clone,
    tags, a Pipeline under cross_val_score, GridSearchCV, predict and pickle."""
    deadline = sweep_deadline()
    found: list[tuple[importlib.metadata.Distribution, tuple[str, type]]] = []
    for dist in dependents():
        try:
            with until(deadline):
                found += [(dist, e) for e in estimators_of(dist)]
        except OutOfTime:
            print(f"time budget spent importing {dist.metadata['Name']} (a miss, not a failure)")
    if not found:
        raise Skip("no installed distribution offers scikit-learn estimators")
    broken: list[str] = []
    done: list[str] = []
    sets = data()
    for dist, (name, cls) in found:
        what = f"{dist.metadata['Name']} {dist.version} {name}"
        try:
            with until(deadline), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                estimator = construct(cls, "classifier")
                if estimator is None:
                    continue  # a constructor argument this check has no value for
                done.append(f"{name} ({exercise(estimator, sets)})")
        except OutOfTime:
            print(f"time budget spent in or before {what}: not run (a miss, not a failure)")
        except Exception as exc:
            if isolate.is_check_defect(exc):
                raise
            if not refused(exc, dist) and breaks_stack(exc, partners=PARTNERS):
                print(f"--- {what} ---")
                traceback.print_exception(type(exc), exc, exc.__traceback__)
                broken.append(f"{what}: {isolate.describe_exception(exc)}")
            else:
                print(f"--- {what}: its own refusal: {isolate.describe_exception(exc)}")
    print(f"{len(done)} estimators of other packages: " + ", ".join(done))
    if broken:
        raise AssertionError(f"{len(broken)} estimators broke: " + "; ".join(broken))
    if not done:  # never exercised: no pass
        raise Skip(f"none of {len(found)} estimators of other packages took the check's data")
