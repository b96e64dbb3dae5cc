"""scikit-learn with the two libraries it parallelises through: joblib (every
backend joblib's own registry offers on this release, with ``n_jobs=2``, for
functions and estimators defined in ``__main__`` as a script's are, results
equal to the sequential ones) and threadpoolctl (the BLAS and OpenMP libraries
numpy, scipy and scikit-learn load, listed and limited, and the limits
scikit-learn sets inside KMeans). Tiny tasks: the process-based backends start
two workers per check. Written for scikit-learn 1.1 to 1.9, joblib 1.1 on and
threadpoolctl 2.2 to 3.x.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from . import Skip, check, close, installed, mod

N_JOBS = 2

# What a script defines at its top level: joblib must ship these to its workers
# by value (cloudpickle) or, where workers are forked, by their __main__ name.
MAIN_SOURCE = '''
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin


def weighted_square(i, weights):
    """A plain function of __main__."""
    return float(np.sum((np.asarray(weights) * i) ** 2))


class NearestCentroidByHand(ClassifierMixin, BaseEstimator):
    """An estimator of __main__: each class's mean, shrunk toward the overall mean."""

    def __init__(self, shrink=0.0):
        self.shrink = shrink

    def fit(self, X, y):
        X = np.asarray(X, dtype=float)
        self.classes_ = np.unique(y)
        overall = X.mean(axis=0)
        means = np.array([X[np.asarray(y) == c].mean(axis=0) for c in self.classes_])
        self.centroids_ = overall + (1.0 - self.shrink) * (means - overall)
        return self

    def predict(self, X):
        X = np.asarray(X, dtype=float)
        distances = ((X[:, None, :] - self.centroids_[None, :, :]) ** 2).sum(axis=2)
        return self.classes_[distances.argmin(axis=1)]
'''


@contextlib.contextmanager
def defined_in_main() -> Iterator[types.SimpleNamespace]:
    """MAIN_SOURCE run as ``__main__`` code, its names also set on the real
    ``__main__`` module (where a forked worker finds them by name), removed after."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(MAIN_SOURCE, "<__main__ of the check>", "exec"), namespace)
    main = sys.modules["__main__"]
    names = [n for n in ("weighted_square", "NearestCentroidByHand") if not hasattr(main, n)]
    for name in names:
        setattr(main, name, namespace[name])
    try:
        yield types.SimpleNamespace(**{n: namespace[n] for n in names})
    finally:
        for name in names:
            delattr(main, name)


@contextlib.contextmanager
def workers_see_this_path() -> Iterator[None]:
    """Interpreters the check starts (loky's workers, the resource trackers) get
    this process's ``sys.path``: the runner composes the combination from site
    directories, under ``-I -S``, which a fresh interpreter would not see. They
    get it as PYTHONPATH, which ``-I`` would make them ignore: ``-E -s`` instead."""
    util = mod("multiprocessing.util")
    flags = util._args_from_interpreter_flags
    before = os.environ.get("PYTHONPATH")

    def honouring_pythonpath() -> list[str]:
        args: list[str] = flags()
        if "-I" not in args:
            return args
        return [a for a in args if a not in ("-I", "-E")] + ["-s"]

    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    util._args_from_interpreter_flags = honouring_pythonpath
    try:
        yield
    finally:
        util._args_from_interpreter_flags = flags
        if before is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = before


def backends() -> list[str]:
    """The backends joblib registers itself, those whose extras are installed
    included; an external one (dask, ray) needs its cluster: left out."""
    parallel = mod("joblib.parallel")
    external = set(getattr(parallel, "EXTERNAL_BACKENDS", {}))
    found = []
    for name, backend in sorted(parallel.BACKENDS.items()):
        module = getattr(backend, "__module__", "") or ""
        if name in external or not module.startswith("joblib"):
            print(f"backend {name}: left out (an external backend, {module})")
            continue
        found.append(name)
    # loky and multiprocessing need semaphores; joblib leaves them out without
    assert "threading" in found, f"joblib registers only {found}"
    # the one that forks first, while this process runs no threads (loky's
    # executor and the thread pools leave some running)
    return sorted(found, key=lambda name: (name != "multiprocessing", name))


def by_name_only(backend: str) -> bool:
    """Whether the backend's workers get functions by their module's name (plain
    pickle) from a process that did not fork: then __main__ code cannot reach
    them, as joblib documents; a script's functions must be importable there."""
    if backend != "multiprocessing":
        return False
    multiprocessing = mod("multiprocessing")
    method = os.environ.get("JOBLIB_START_METHOD") or multiprocessing.get_start_method()
    return method != "fork"


def stopwatch() -> Callable[[], str]:
    """A function saying the seconds since its last call (or since this call)."""
    last = [time.monotonic()]

    def elapsed() -> str:
        now = time.monotonic()
        seconds, last[0] = now - last[0], now
        return f"{seconds:.2f} s"

    return elapsed


def backend_context(backend: str) -> Any:
    """``parallel_config`` (joblib 1.3+) or ``parallel_backend`` before it."""
    joblib = mod("joblib")
    if hasattr(joblib, "parallel_config"):
        return joblib.parallel_config(backend=backend, n_jobs=N_JOBS)
    return joblib.parallel_backend(backend, n_jobs=N_JOBS)


def sklearn_parallel() -> tuple[Any, Any]:
    """scikit-learn's own Parallel/delayed (they carry its configuration to the
    workers): ``sklearn.utils.parallel`` from 1.3, ``utils.fixes.delayed`` before."""
    if installed("scikit-learn", ">=1.3"):
        parallel = mod("sklearn.utils.parallel")
        return parallel.Parallel, parallel.delayed
    return mod("joblib").Parallel, mod("sklearn.utils.fixes").delayed


def _classification() -> tuple[Any, Any]:
    np = mod("numpy")
    rng = np.random.RandomState(0)
    x = rng.normal(0, 1, (60, 3))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64)
    return x, y


def _forest(x: Any, y: Any, n_jobs: int) -> Any:
    ensemble = mod("sklearn.ensemble")
    return ensemble.RandomForestClassifier(
        n_estimators=4, max_depth=3, random_state=0, n_jobs=n_jobs
    ).fit(x, y)


@check("scikit-learn", "joblib", valid={"scikit-learn": ">=1.1", "joblib": ">=1.1"})
def check_parallel_backends() -> None:
    """Every backend joblib registers, n_jobs=2: __main__ functions and estimators, forest, CV."""
    np = mod("numpy")
    joblib = mod("joblib")
    selection = mod("sklearn.model_selection")
    sk_parallel, sk_delayed = sklearn_parallel()
    weights = np.array([0.5, 1.0, 2.0])
    x, y = _classification()
    with defined_in_main() as main, workers_see_this_path():
        expected = [main.weighted_square(i, weights) for i in range(4)]
        reference = _forest(x, y, 1).predict_proba(x)
        forest_scores = selection.cross_val_score(_forest(x, y, 1), x, y, cv=3)
        own = main.NearestCentroidByHand(shrink=0.1)
        own_scores = selection.cross_val_score(own, x, y, cv=3)
        assert own_scores.mean() > 0.6, own_scores
        elapsed = stopwatch()
        for backend in backends():
            func: Any = main.weighted_square
            arguments: list[tuple[Any, ...]] = [(i, weights) for i in range(4)]
            wanted = expected
            forked = not by_name_only(backend)
            if not forked:
                print(f"backend {backend}: workers not forked, no __main__ code")
                func, arguments = np.hypot, [(float(i), 2.0) for i in range(4)]
                wanted = [float(np.hypot(*a)) for a in arguments]
            with backend_context(backend):  # one pool of workers for all
                got = joblib.Parallel()(joblib.delayed(func)(*a) for a in arguments)
                assert close(got, wanted, 1e-12), f"{backend}: {got} != {wanted}"
                again = sk_parallel()(sk_delayed(func)(*a) for a in arguments)
                assert close(again, wanted, 1e-12), f"{backend} (scikit-learn's Parallel)"
                fitted = _forest(x, y, N_JOBS)
                assert close(fitted.predict_proba(x), reference, 1e-12), (
                    f"{backend}: a forest fitted on {N_JOBS} jobs predicts otherwise"
                )
                scores = selection.cross_val_score(_forest(x, y, 1), x, y, cv=3, n_jobs=N_JOBS)
                assert close(scores, forest_scores, 1e-12), (backend, scores, forest_scores)
                if forked:
                    scores = selection.cross_val_score(own, x, y, cv=3, n_jobs=N_JOBS)
                    assert close(scores, own_scores, 1e-12), (backend, scores, own_scores)
            print(f"backend {backend}: functions, forest, cross_val_score equal ({elapsed()})")


# Shared objects that are a BLAS threadpoolctl exists to control, by file name.
BLAS_FILES = re.compile(r"^lib(scipy_)?openblas|^libmkl_rt|^libblis|^libflexiblas")


def loaded_blas() -> set[str]:
    """The real paths of the BLAS libraries mapped into this process (Linux)."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split(None, 5)[-1].strip() for line in maps if "/" in line}
    except OSError:
        return set()
    return {
        os.path.realpath(p)
        for p in paths
        if p.startswith("/") and BLAS_FILES.search(Path(p).name.lower())
    }


def thread_counts(info: list[dict[str, Any]]) -> dict[str, int]:
    return {os.path.realpath(lib["filepath"]): lib["num_threads"] for lib in info}


def pool_info() -> list[dict[str, Any]]:
    """threadpoolctl's list of libraries: ``ThreadpoolController().info()`` in 3.x
    (checked against ``threadpool_info()``), ``threadpool_info()`` in 2.x."""
    threadpoolctl = mod("threadpoolctl")
    info: list[dict[str, Any]] = threadpoolctl.threadpool_info()
    if installed("threadpoolctl", ">=3"):
        controller_info = threadpoolctl.ThreadpoolController().info()
        assert thread_counts(controller_info) == thread_counts(info), (controller_info, info)
    return info


def fixed_threads(lib: dict[str, Any]) -> bool:
    """An OpenBLAS built without threads reports one whatever it is told."""
    return lib.get("threading_layer") == "disabled"


@check(
    "scikit-learn",
    "threadpoolctl",
    valid={"scikit-learn": ">=1.1", "threadpoolctl": ">=2.2"},
)
def check_blas_openmp_limits() -> None:
    """threadpool_info lists the BLAS numpy and scipy load; threadpool_limits sets and restores."""
    mod("numpy.linalg")
    mod("scipy.linalg")
    mod("sklearn.cluster")  # scikit-learn's OpenMP runtime
    threadpoolctl = mod("threadpoolctl")
    info = pool_info()
    for lib in info:
        print({k: lib.get(k) for k in ("user_api", "internal_api", "version", "num_threads")})
    listed = thread_counts(info)
    unlisted = sorted(loaded_blas() - set(listed))
    assert not unlisted, (
        f"threadpoolctl {threadpoolctl.__version__} does not list the BLAS loaded from "
        + ", ".join(unlisted)
    )
    apis = {lib["user_api"] for lib in info}
    if "blas" not in apis:
        raise Skip("numpy and scipy load no BLAS that threadpoolctl knows here")

    original = thread_counts(info)
    changeable = {os.path.realpath(lib["filepath"]) for lib in info if not fixed_threads(lib)}
    for limit in (1, 2):
        with threadpoolctl.threadpool_limits(limits=limit):
            inside = thread_counts(threadpoolctl.threadpool_info())
            wrong = {p: n for p, n in inside.items() if p in changeable and n != limit}
            assert not wrong, f"limits={limit} left {wrong}"
        assert thread_counts(threadpoolctl.threadpool_info()) == original, "not restored"
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        inside = threadpoolctl.threadpool_info()
        for lib in inside:
            path = os.path.realpath(lib["filepath"])
            want = 2 if lib["user_api"] == "blas" and path in changeable else original[path]
            assert lib["num_threads"] == want, (lib, want)
    assert thread_counts(threadpoolctl.threadpool_info()) == original, "not restored"

    if installed("threadpoolctl", ">=3"):
        controller = threadpoolctl.ThreadpoolController()
        blas = controller.select(user_api="blas")
        assert len(blas.lib_controllers) == sum(1 for lib in info if lib["user_api"] == "blas")
        with blas.limit(limits=2):
            counts = thread_counts(controller.info())
            assert all(counts[p] == 2 for p in counts if p in changeable and p in blas_paths(blas))
        assert thread_counts(controller.info()) == original, "the controller did not restore"


def blas_paths(selection: Any) -> set[str]:
    return {os.path.realpath(lib["filepath"]) for lib in selection.info()}


@check(
    "scikit-learn",
    "threadpoolctl",
    valid={"scikit-learn": ">=1.1", "threadpoolctl": ">=2.2"},
)
def check_kmeans_thread_limits() -> None:
    """KMeans (lloyd, elkan) under thread limits 1 and 2: equal fits, limits as they were after."""
    np = mod("numpy")
    cluster = mod("sklearn.cluster")
    threadpoolctl = mod("threadpoolctl")
    fixes = mod("sklearn.utils.fixes")
    # scikit-learn's own wrappers (1.1 and 1.2) where it has them
    limits = getattr(fixes, "threadpool_limits", threadpoolctl.threadpool_limits)
    info = getattr(fixes, "threadpool_info", threadpoolctl.threadpool_info)
    rng = np.random.RandomState(0)
    centres = np.array([[0.0, 0.0, 0.0], [5.0, 5.0, 0.0], [0.0, 5.0, 5.0]])
    x = np.concatenate([c + rng.normal(0, 0.5, (300, 3)) for c in centres])  # a few chunks
    for algorithm in ("lloyd", "elkan"):
        fits = []
        for limit in (1, 2):
            with limits(limits=limit):
                before = thread_counts(info())
                model = cluster.KMeans(n_clusters=3, n_init=2, random_state=0, algorithm=algorithm)
                model.fit(x)
                after = thread_counts(info())
                assert after == before, f"KMeans({algorithm}) left the limits at {after}"
            fits.append(model)
        first, second = fits
        assert (first.labels_ == second.labels_).all(), f"{algorithm}: labels differ by threads"
        assert close(first.cluster_centers_, second.cluster_centers_, 1e-9), algorithm
        assert close(first.inertia_, second.inertia_, 1e-9), algorithm
        assert sorted(np.bincount(first.labels_)) == [300, 300, 300], np.bincount(first.labels_)
        assert len(set(first.predict(centres).tolist())) == 3, algorithm
