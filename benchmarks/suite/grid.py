"""The grid-search runner: GridSearchCV serial (grid-nj1) and threaded (grid-thr2)."""

import statistics
import time
import warnings

import joblib
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.utils.validation import validate_data

from .floors import GemmFloor, StepFloor, count_params
from .libs import CYMLP_ERROR, CyMLP, SkMLP
from .measure import fixed_epochs, interleaved
from .report import plural
from .rows import Row


class NoTrainingClassifier(ClassifierMixin, BaseEstimator):
    """A classifier that validates its input as any scikit-learn estimator
    must, and does nothing else: GridSearchCV around it measures the search's
    own cost (cloning, splitting, scoring with accuracy_score), which any
    estimator pays, whatever its speed."""

    def __init__(self, hidden_layer_sizes=(100,), batch_size=200, max_iter=200,
                 tol=1e-4, n_iter_no_change=10, random_state=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state

    def fit(self, X, y):
        X, y = validate_data(self, X, y)
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        X = validate_data(self, X, reset=False)
        return np.full(X.shape[0], self.classes_[0])


def run_grid(spec, data, quick, repeats, others):
    X, y = data.get("digits")
    epochs = 5 if quick else 20
    grid = {"hidden_layer_sizes": [(50,), (100,)], "batch_size": [32, 200]}

    def search(cls, n_jobs):
        def run():
            gs = GridSearchCV(cls(**fixed_epochs(epochs)), grid, cv=3, refit=False,
                              n_jobs=n_jobs)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                with joblib.parallel_config(backend="threading"):
                    cpu = time.process_time()
                    start = time.perf_counter()
                    gs.fit(X, y)
                    elapsed = time.perf_counter() - start
                    cpu = time.process_time() - cpu
            run.scores = gs.cv_results_["mean_test_score"]
            run.cpu_per_wall.append(cpu / elapsed)
            return elapsed
        run.cpu_per_wall = []
        return run

    runs = {
        "sklearn": search(SkMLP, 1),
        "cymlp": search(CyMLP, 1),
        "cymlp-thr2": search(CyMLP, 2),
        "sklearn-thr2": search(SkMLP, 2),
    }
    # The bound for an exact implementation: every fit's GEMMs and optimizer
    # steps, and nothing else (no validation, scoring or GridSearchCV
    # bookkeeping). One epoch of each grid point is timed on a training fold's
    # shapes and scaled to 3 folds x `epochs`.
    n_train = len(X) - len(X) // 3
    exact_parts = []
    if CYMLP_ERROR is None:
        for hidden in grid["hidden_layer_sizes"]:
            for batch in grid["batch_size"]:
                units = [X.shape[1], *hidden, len(np.unique(y))]
                exact_parts.append(GemmFloor(X[:n_train], units, batch).epoch)
                exact_parts.append(StepFloor(count_params(units), X.dtype, "adam",
                                             -(-n_train // batch)).epoch)
        # each part the best of three passes: all of them take a few
        # milliseconds of small products, and the threaded search that runs
        # before them in every repeat (interleaved's rotation) can leave
        # BLAS threads spinning for that long (run H, benchmarks/RESULTS.md:
        # every repeat 8x slow)
        runs["exact"] = lambda: 3 * epochs * sum(min(part() for _ in range(3))
                                                 for part in exact_parts)
        runs["search-only"] = search(NoTrainingClassifier, 1)
    search(CyMLP, 1)()  # warm-up (imports, first calls)
    times = interleaved(runs, repeats)
    exact = times.pop("exact", None)
    search_only = times.pop("search-only", None)
    if exact:
        # the search's own cost comes on top of the fits' products and steps
        exact = [e + s for e, s in zip(exact, search_only)]
    score_diff = float(np.max(np.abs(runs["sklearn"].scores - runs["cymlp"].scores)))
    serial = Row("grid-nj1", "s/search", {"sklearn": times["sklearn"],
                                          "cymlp": times["cymlp"]}, spec,
                 sk_target=spec.sk_target, exact_floor=exact,
                 notes=[f"12 fits of {epochs} epochs (grid {grid}, cv=3, refit=False), "
                        f"{plural(repeats, 'repeat')}; max |mean_test_score| difference "
                        f"sklearn vs cymlp {score_diff:.1e}"])
    if exact:
        serial.notes.append(
            f"the fits' GEMMs and optimizer steps alone, plus the search's own cost "
            f"(GridSearchCV of a classifier that only validates: "
            f"{min(search_only):.3g} s): {min(exact):.3g} s; sklearn / that = "
            f"{serial.exact_bound():.2f}x (cymlp's search: "
            f"{min(times['cymlp']) / min(exact):.2f}x that time)")
    threads = Row("grid-thr2", "s/search",
                  {"sklearn": times["sklearn-thr2"], "cymlp": times["cymlp-thr2"],
                   "cymlp n_jobs=1": times["cymlp"]}, spec,
                  baseline="cymlp n_jobs=1", sk_target=spec.extra["threads_target"],
                  notes=["n_jobs=2 with joblib's threading backend; the ratio is cymlp "
                         "n_jobs=1 / cymlp n_jobs=2 (sklearn column: sklearn, threading, "
                         "n_jobs=2, for reference: "
                         f"{min(times['sklearn']) / min(times['sklearn-thr2']):.2f}x "
                         "its own n_jobs=1)",
                         "process CPU time / wall time (median; 2.0 = both threads busy "
                         "all the time): cymlp n_jobs=2 "
                         f"{statistics.median(runs['cymlp-thr2'].cpu_per_wall):.2f}, "
                         f"n_jobs=1 {statistics.median(runs['cymlp'].cpu_per_wall):.2f}; "
                         "sklearn n_jobs=2 "
                         f"{statistics.median(runs['sklearn-thr2'].cpu_per_wall):.2f}"])
    return [serial, threads]
