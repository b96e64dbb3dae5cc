"""Every spelling the checks need that changed between releases, in one place.

A check calls these instead of branching on versions itself, so that the
releases a check supports are visible here and in its ``valid`` range, and a
new rename is fixed once. Each shim names the release that changed the API.

Runs inside the environment under test: standard library only, Python 3.9+.
"""

from __future__ import annotations

from typing import Any

from . import installed, mod


def one_hot_encoder(**kwargs: Any) -> Any:
    """OneHotEncoder with sparse (or, with ``dense=True``, dense) output:
    ``sparse`` became ``sparse_output`` in scikit-learn 1.2."""
    dense = kwargs.pop("dense", False)
    keyword = "sparse_output" if installed("scikit-learn", ">=1.2") else "sparse"
    return mod("sklearn.preprocessing").OneHotEncoder(**{keyword: not dense}, **kwargs)


def constrained_layout() -> dict[str, Any]:
    """Figure keywords for the constrained layout engine: ``layout=`` is new in
    matplotlib 3.5 (``constrained_layout=True`` before)."""
    if installed("matplotlib", ">=3.5"):
        return {"layout": "constrained"}
    return {"constrained_layout": True}


def lgb_early_stopping_fit(rounds: int) -> dict[str, Any]:
    """Keywords for ``LGBM*.fit`` that stop early on its ``eval_set``: before 3.3
    the wrapper sets ``best_iteration_`` only from ``early_stopping_rounds`` given
    to fit; 3.3 reads it from the booster whatever stopped it, so the
    ``early_stopping`` callback serves (and 4.0 removed the keyword)."""
    lgb = mod("lightgbm")
    if installed("lightgbm", "<3.3"):
        return {"early_stopping_rounds": rounds, "verbose": False}
    return {"callbacks": [lgb.early_stopping(rounds, verbose=False)]}


def lgb_early_stopping_train(rounds: int, history: dict[str, Any]) -> dict[str, Any]:
    """Keywords for ``lightgbm.train`` that stop early and record the evaluation
    into ``history``: keywords in lightgbm 2.x, callbacks from 3.0 (the keywords
    were removed in 4.0)."""
    lgb = mod("lightgbm")
    if installed("lightgbm", "<3"):
        return {"early_stopping_rounds": rounds, "evals_result": history, "verbose_eval": False}
    return {
        "callbacks": [lgb.early_stopping(rounds, verbose=False), lgb.record_evaluation(history)]
    }


def lgb_quiet_train() -> dict[str, Any]:
    """Keywords for ``lightgbm.train`` without evaluation logging: ``verbose_eval``
    before 4.0 (where its default logged every round with a validation set)."""
    if installed("lightgbm", "<4"):
        return {"verbose_eval": False}
    return {}


def sparse_matrix(dense: Any, fmt: str = "csr") -> Any:
    """A scipy sparse matrix of ``dense`` (the ``*_matrix`` classes every scipy has,
    not the ``*_array`` ones new in 1.8)."""
    sparse = mod("scipy.sparse")
    return getattr(sparse, f"{fmt}_matrix")(dense)


def pandas_has_copy_on_write() -> bool:
    """Copy-on-write is an option from pandas 1.5 and always on from 3.0."""
    return installed("pandas", ">=1.5")


def enable_copy_on_write() -> None:
    """Turn copy-on-write on where it is an option (pandas 1.5 to 2.x)."""
    pd = mod("pandas")
    if installed("pandas", ">=1.5,<3"):
        pd.set_option("mode.copy_on_write", True)


def estimator_requirements(estimator: Any) -> dict[str, Any]:
    """What a scikit-learn estimator declares about its input, from its own tags:
    ``get_tags()`` (a dataclass) from 1.6, the ``_get_tags()`` dict before.

    Keys: ``x_kinds`` (set of "2darray", "1darray", "string", "dict",
    "categorical", "1dlabels", "2dlabels"), ``positive_x``, ``positive_y``,
    ``requires_y``, ``multioutput_only``, ``pairwise``, ``skip`` (the estimator
    asks sklearn's own common tests to leave it out), ``sparse`` (True/False;
    None where the release does not say).
    """
    utils = mod("sklearn.utils")
    if hasattr(utils, "get_tags"):  # 1.6+
        tags = utils.get_tags(estimator)
        inputs, target = tags.input_tags, tags.target_tags
        kinds = {
            kind
            for kind, present in (
                ("2darray", inputs.two_d_array),
                ("1darray", inputs.one_d_array),
                ("string", inputs.string),
                ("dict", inputs.dict),
                ("categorical", inputs.categorical),
                ("1dlabels", target.one_d_labels),
                ("2dlabels", target.two_d_labels),
            )
            if present
        }
        return {
            "x_kinds": kinds,
            "positive_x": inputs.positive_only,
            "positive_y": target.positive_only,
            "requires_y": target.required,
            "multioutput_only": target.multi_output and not target.single_output,
            "pairwise": inputs.pairwise,
            "skip": tags._skip_test,
            "sparse": inputs.sparse,
        }
    tags = estimator._get_tags()
    return {
        "x_kinds": set(tags.get("X_types", ["2darray"])),
        "positive_x": tags.get("requires_positive_X", False),
        "positive_y": tags.get("requires_positive_y", False),
        "requires_y": tags.get("requires_y", False),
        "multioutput_only": tags.get("multioutput_only", False),
        "pairwise": tags.get("pairwise", False),
        "skip": tags.get("_skip_test", False),
        "sparse": None,
    }


def is_outlier_detector(estimator: Any) -> bool:
    """``sklearn.base.is_outlier_detector`` (1.6+), the estimator type before."""
    base = mod("sklearn.base")
    if hasattr(base, "is_outlier_detector"):
        return bool(base.is_outlier_detector(estimator))
    return getattr(estimator, "_estimator_type", None) == "outlier_detector"
