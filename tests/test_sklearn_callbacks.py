"""scikit-learn's callback protocol (sklearn.callback, scikit-learn >= 1.9).

A fit is a task with one subtask per epoch (or lbfgs iteration); each
subtask's ``fitted_estimator`` predicts as if training had stopped there, so
its scores are checked against fits that really stopped there (the same seed
visits the same minibatches, so the first k epochs of a long fit are a fit
with max_iter=k). Auto-propagated callbacks reach the estimators inside
Pipeline and GridSearchCV.
"""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import cymlp

callback = pytest.importorskip("sklearn.callback")
# InvalidParameterError: scikit-learn's class for bad parameters (no public path)
from sklearn.utils._param_validation import InvalidParameterError  # noqa: E402


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


@pytest.fixture
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


class Recorder:
    """A callback that records every task it sees (and can ask to stop)."""

    def __init__(self, stop_at=None):
        self.ends = []
        self.stop_at = stop_at

    def setup(self, estimator, context):
        pass

    def teardown(self, estimator, context):
        pass

    def on_fit_task_begin(self, estimator, context):
        pass

    def on_fit_task_end(self, estimator, context, *, fitted_estimator=None):
        coefs = getattr(fitted_estimator, "coefs_", None)
        self.ends.append((type(estimator).__name__, context.task_name,
                          None if coefs is None else [c.copy() for c in coefs]))
        epochs = sum(1 for e in self.ends if e[1] in ("epoch", "lbfgs-iteration"))
        return self.stop_at is not None and epochs >= self.stop_at


class PropagatedRecorder(Recorder):
    max_propagation_depth = None


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
@pytest.mark.parametrize("cls", [cymlp.MLPClassifier, cymlp.MLPRegressor])
def test_scoring_monitor_scores_every_epoch_as_if_stopped_there(cls, solver, iris,
                                                                global_random_seed):
    X, y = iris
    if cls is cymlp.MLPRegressor:
        X, y = X[:, 1:], X[:, 0]
    params = dict(hidden_layer_sizes=(6,), solver=solver, max_iter=4,
                  random_state=global_random_seed)
    # the estimators' own scores (ScoringMonitor's scoring=None does not
    # return a named score in scikit-learn 1.9)
    name = "accuracy" if cls is cymlp.MLPClassifier else "r2"
    monitor = callback.ScoringMonitor(scoring=name)
    cls(**params).set_callbacks(monitor).fit(X, y)
    log = monitor.get_logs().data_as_pandas
    epochs = log[log.task_name != "fit"]
    assert list(epochs.task_id) == [0, 1, 2, 3]
    for k, score in enumerate(epochs[name], start=1):
        stopped = cls(**{**params, "max_iter": k}).fit(X, y)
        assert score == pytest.approx(stopped.score(X, y), rel=1e-12, abs=1e-12)


def test_a_callback_can_stop_training(iris):
    X, y = iris
    for solver in ("adam", "lbfgs"):
        clf = cymlp.MLPClassifier(solver=solver, max_iter=50, random_state=0)
        clf.set_callbacks(Recorder(stop_at=3)).fit(X, y)
        assert clf.n_iter_ == 3


def test_fitted_estimator_is_a_snapshot(iris):
    X, y = iris
    recorder = Recorder()
    clf = cymlp.MLPClassifier(max_iter=3, random_state=0).set_callbacks(recorder).fit(X, y)
    snapshots = [coefs for _, name, coefs in recorder.ends if name == "epoch"]
    assert len(snapshots) == 3
    # each epoch's weights, not the final ones seen three times
    assert not np.array_equal(snapshots[0][0], snapshots[2][0])
    np.testing.assert_array_equal(snapshots[2][0], clf.coefs_[0])


def test_auto_propagated_callback_sees_every_epoch_of_every_fit(iris):
    X, y = iris
    recorder = PropagatedRecorder()
    search = GridSearchCV(
        make_pipeline(StandardScaler(), cymlp.MLPClassifier(max_iter=3, random_state=0,
                                                            n_iter_no_change=100)),
        {"mlpclassifier__alpha": [1e-4, 1e-2]}, cv=2)
    search.set_callbacks(recorder).fit(X, y)
    epochs = [e for e in recorder.ends if e[:2] == ("MLPClassifier", "epoch")]
    fits = [e for e in recorder.ends if e[:2] == ("MLPClassifier", "fit")]
    # 2 candidates x 2 splits + the refit, 3 epochs each
    assert len(fits) == 5
    assert len(epochs) == 5 * 3


def test_progress_bar_runs_everywhere(iris):
    pytest.importorskip("rich")
    X, y = iris
    clf = cymlp.MLPClassifier(max_iter=3, random_state=0)
    clf.set_callbacks(callback.ProgressBar()).fit(X, y)
    pipe = make_pipeline(StandardScaler(), cymlp.MLPRegressor(max_iter=3, solver="lbfgs"))
    pipe.set_callbacks(callback.ProgressBar()).fit(X[:, 1:], X[:, 0])
    search = GridSearchCV(cymlp.MLPClassifier(max_iter=2), {"alpha": [1e-4, 1e-3]}, cv=2)
    search.set_callbacks(callback.ProgressBar()).fit(X, y)
    assert search.best_estimator_.n_iter_ == 2


def test_sklearn_callback_in_callbacks_parameter_says_what_to_do(iris):
    X, y = iris
    for value in (Recorder(), [Recorder()]):
        with pytest.raises(InvalidParameterError, match="set_callbacks"):
            cymlp.MLPClassifier(callbacks=value).fit(X, y)
    with pytest.raises(InvalidParameterError, match="callbacks"):
        cymlp.MLPClassifier(callbacks=[1]).fit(X, y)


def test_no_subtask_without_callbacks(iris, monkeypatch):
    # without a callback an epoch opens no subtask: no per-epoch cost
    X, y = iris
    opened = []
    original = callback.CallbackContext.subcontext

    def counting(self, *args, **kwargs):
        opened.append(kwargs.get("task_name"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(callback.CallbackContext, "subcontext", counting)
    cymlp.MLPClassifier(max_iter=3, random_state=0).fit(X, y)
    cymlp.MLPClassifier(solver="lbfgs", max_iter=3, random_state=0).fit(X, y)
    assert opened == []
    cymlp.MLPClassifier(max_iter=3, random_state=0).set_callbacks(Recorder()).fit(X, y)
    assert opened == ["epoch"] * 3


def test_function_callbacks_still_work_beside_sklearn_ones(iris):
    X, y = iris
    seen = []
    recorder = Recorder()
    clf = cymlp.MLPClassifier(max_iter=3, random_state=0,
                              callbacks=lambda info: seen.append(info["epoch"]))
    clf.set_callbacks(recorder).fit(X, y)
    assert seen == [1, 2, 3]
    assert sum(1 for e in recorder.ends if e[1] == "epoch") == 3
