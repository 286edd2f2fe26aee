"""Parity with sklearn for partial_fit and warm_start.

What sklearn does, and cymlp must reproduce:
- partial_fit runs exactly one epoch over the data it is given, keeps the
  optimizer (adam moments, sgd velocities, the adaptive learning rate) between
  calls, re-seeds its shuffling RandomState from random_state on every call,
  sets n_iter_ to 1 each time, accumulates t_ and loss_curve_, and never warns
  about max_iter.
- fit with warm_start=True starts from the current weights with a *new*
  optimizer, resets n_iter_, keeps accumulating t_ and loss_curve_.
- partial_fit exists only for the stochastic solvers (available_if).
"""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor

import cymlp
from _parity import (
    assert_fit_equal,
    assert_predictions_equal,
    call_recording_warnings,
    make_data,
    make_regression_data,
    normalize_message,
)

SOLVERS = ["adam", "sgd"]


def _pair(name="MLPClassifier", **params):
    sk_cls = {"MLPClassifier": SkMLPClassifier, "MLPRegressor": SkMLPRegressor}[name]
    return sk_cls(**params), getattr(cymlp, name)(**params)


def _both(ref, est, method, *args, **kwargs):
    """Call ``method`` on both; warnings must match."""
    _, w_ref = call_recording_warnings(getattr(ref, method), *args, **kwargs)
    _, w_est = call_recording_warnings(getattr(est, method), *args, **kwargs)
    assert w_est == w_ref
    return w_ref


def _outcome(func):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            func()
        except Exception as exc:  # noqa: BLE001
            return type(exc), normalize_message(str(exc))
    return None


# ---------------------------------------------------------------------------
# partial_fit
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("kind", ["binary", "multiclass", "strings"])
def test_partial_fit_classifier(global_random_seed, kind, solver):
    X, y, X_test, y_test = make_data(kind, global_random_seed, n_samples=60)
    params = dict(hidden_layer_sizes=(5,), solver=solver, batch_size=10,
                  learning_rate_init=0.05, random_state=global_random_seed)
    ref, est = _pair(**params)
    classes = np.unique(y)
    # Chunks of the data, as in out-of-core learning; the first call names
    # all classes.
    for i, chunk in enumerate(np.array_split(np.arange(len(y)), 4)):
        kwargs = {"classes": classes} if i == 0 else {}
        w = _both(ref, est, "partial_fit", X[chunk], y[chunk], **kwargs)
        assert not any(issubclass(c, ConvergenceWarning) for c, _ in w)
        assert est.n_iter_ == ref.n_iter_ == 1
        assert_fit_equal(ref, est)
    assert est.t_ == len(y)
    assert len(est.loss_curve_) == 4
    assert_predictions_equal(ref, est, X_test, y_test)


def test_partial_fit_multilabel(global_random_seed):
    # Multilabel y: classes is still required on the first call, but the
    # label binarizer is fit on the indicator matrix itself.
    X, Y, X_test, Y_test = make_data("multilabel", global_random_seed)
    ref, est = _pair(hidden_layer_sizes=(5,), random_state=global_random_seed,
                     learning_rate_init=0.05)
    for i in range(3):
        kwargs = {"classes": np.arange(Y.shape[1])} if i == 0 else {}
        _both(ref, est, "partial_fit", X, Y, **kwargs)
        assert_fit_equal(ref, est)
    assert_predictions_equal(ref, est, X_test, Y_test)


@pytest.mark.parametrize("solver", SOLVERS)
def test_partial_fit_regressor(global_random_seed, solver):
    X, y, X_test, y_test = make_regression_data(global_random_seed)
    ref, est = _pair("MLPRegressor", hidden_layer_sizes=(5,), solver=solver,
                     learning_rate_init=0.01, batch_size=16,
                     random_state=global_random_seed)
    for _ in range(4):
        _both(ref, est, "partial_fit", X, y)
        assert_fit_equal(ref, est)
    assert_predictions_equal(ref, est, X_test, y_test)


def test_partial_fit_after_fit(global_random_seed):
    # partial_fit after fit continues with fit's optimizer state.
    X, y, X_test, y_test = make_data("multiclass", global_random_seed)
    ref, est = _pair(hidden_layer_sizes=(5,), max_iter=4, learning_rate_init=0.05,
                     random_state=global_random_seed)
    _both(ref, est, "fit", X, y)
    for _ in range(2):
        _both(ref, est, "partial_fit", X, y)
        assert_fit_equal(ref, est)
    assert_predictions_equal(ref, est, X_test, y_test)


def test_partial_fit_adaptive_learning_rate(global_random_seed, capsys):
    # The no-improvement counter and the adaptive learning rate survive
    # between partial_fit calls: with tol=10 the rate is divided every
    # n_iter_no_change + 1 calls, as the verbose output shows.
    X, y, _, _ = make_data("binary", global_random_seed)
    params = dict(hidden_layer_sizes=(4,), solver="sgd", learning_rate="adaptive",
                  learning_rate_init=0.1, tol=10.0, n_iter_no_change=1,
                  verbose=True, random_state=global_random_seed)
    ref, est = _pair(**params)
    capsys.readouterr()
    for i in range(8):
        call_recording_warnings(ref.partial_fit, X, y,
                                **({"classes": [0, 1]} if i == 0 else {}))
    ref_out = capsys.readouterr().out
    for i in range(8):
        call_recording_warnings(est.partial_fit, X, y,
                                **({"classes": [0, 1]} if i == 0 else {}))
    est_out = capsys.readouterr().out
    assert est_out == ref_out
    assert "Setting learning rate to" in ref_out
    assert_fit_equal(ref, est)


@pytest.mark.parametrize("solver", SOLVERS)
def test_pickle_then_partial_fit(global_random_seed, solver):
    # The optimizer state (adam's t, m, v; sgd's velocities) is part of the
    # pickled estimator: unpickled models continue exactly like sklearn's.
    X, y, X_test, y_test = make_data("multiclass", global_random_seed)
    ref, est = _pair(hidden_layer_sizes=(5,), solver=solver, max_iter=3,
                     learning_rate_init=0.05, random_state=global_random_seed)
    _both(ref, est, "fit", X, y)
    ref, est = pickle.loads(pickle.dumps(ref)), pickle.loads(pickle.dumps(est))
    for _ in range(2):
        _both(ref, est, "partial_fit", X, y)
        assert_fit_equal(ref, est)
    assert_predictions_equal(ref, est, X_test, y_test)


@pytest.mark.parametrize("solver", SOLVERS)
def test_pickle_then_warm_start(global_random_seed, solver):
    X, y, X_test, y_test = make_data("multiclass", global_random_seed)
    ref, est = _pair(hidden_layer_sizes=(5,), solver=solver, max_iter=3,
                     warm_start=True, learning_rate_init=0.05,
                     random_state=global_random_seed)
    _both(ref, est, "fit", X, y)
    ref, est = pickle.loads(pickle.dumps(ref)), pickle.loads(pickle.dumps(est))
    _both(ref, est, "fit", X, y)
    assert_fit_equal(ref, est)
    assert_predictions_equal(ref, est, X_test, y_test)


def test_partial_fit_requires_classes_first():
    X, y, _, _ = make_data("multiclass", 0)
    outcomes = [_outcome(lambda: cls().partial_fit(X, y))
                for cls in (SkMLPClassifier, cymlp.MLPClassifier)]
    assert outcomes[0] is not None
    assert outcomes[1] == outcomes[0]


def test_partial_fit_unseen_class():
    X, y, _, _ = make_data("multiclass", 0)

    def run(cls):
        est = cls(max_iter=2)
        est.partial_fit(X, y, classes=[0, 1, 2])
        est.partial_fit(X, np.where(y == 0, 7, y))

    outcomes = [_outcome(lambda: run(cls)) for cls in (SkMLPClassifier,
                                                       cymlp.MLPClassifier)]
    assert outcomes[0] is not None and outcomes[0][0] is ValueError
    assert outcomes[1] == outcomes[0]


def test_partial_fit_classes_changed():
    X, y, _, _ = make_data("multiclass", 0)

    def run(cls):
        est = cls(max_iter=2)
        est.partial_fit(X, y, classes=[0, 1, 2])
        est.partial_fit(X, y, classes=[0, 1, 2, 3])

    outcomes = [_outcome(lambda: run(cls)) for cls in (SkMLPClassifier,
                                                       cymlp.MLPClassifier)]
    assert outcomes[0] is not None
    assert outcomes[1] == outcomes[0]


def test_partial_fit_with_early_stopping_raises():
    X, y, _, _ = make_data("multiclass", 0)
    outcomes = [
        _outcome(lambda: cls(early_stopping=True).partial_fit(X, y, classes=[0, 1, 2]))
        for cls in (SkMLPClassifier, cymlp.MLPClassifier)
    ]
    assert outcomes[0] == (ValueError, "partial_fit does not support early_stopping=True")
    assert outcomes[1] == outcomes[0]


@pytest.mark.parametrize("name", ["MLPClassifier", "MLPRegressor"])
def test_partial_fit_not_available_for_lbfgs(name):
    # available_if: with solver='lbfgs' the attribute does not exist, and
    # accessing it raises the same AttributeError as sklearn's classifier.
    #
    # For the regressor this is a deliberate difference (README): sklearn's
    # MLPRegressor gives available_if the *method* ``est._check_solver``
    # (always truthy) instead of calling it, so there partial_fit exists with
    # lbfgs and runs a whole lbfgs fit.  cymlp follows the classifier.
    ref, est = _pair(name, solver="lbfgs")
    assert hasattr(ref, "partial_fit") == (name == "MLPRegressor")  # sklearn
    assert not hasattr(est, "partial_fit")
    with pytest.raises(AttributeError) as exc_est:
        est.partial_fit  # noqa: B018 - the access itself raises
    with pytest.raises(AttributeError) as exc_ref:
        SkMLPClassifier(solver="lbfgs").partial_fit  # noqa: B018
    assert (str(exc_est.value)
            == str(exc_ref.value).replace("MLPClassifier", name))


def test_partial_fit_feature_count_mismatch():
    X, y, _, _ = make_data("multiclass", 0)

    def run(cls):
        est = cls()
        est.partial_fit(X, y, classes=[0, 1, 2])
        est.partial_fit(X[:, :-1], y)

    outcomes = [_outcome(lambda: run(cls)) for cls in (SkMLPClassifier,
                                                       cymlp.MLPClassifier)]
    assert outcomes[0] is not None
    assert outcomes[1] == outcomes[0]


# ---------------------------------------------------------------------------
# warm_start
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("solver", SOLVERS + ["lbfgs"])
def test_warm_start(global_random_seed, solver):
    X, y, X_test, y_test = make_data("multiclass", global_random_seed)
    ref, est = _pair(hidden_layer_sizes=(5,), solver=solver, max_iter=4,
                     warm_start=True, learning_rate_init=0.05,
                     random_state=global_random_seed)
    for _ in range(3):
        _both(ref, est, "fit", X, y)
        assert_fit_equal(ref, est)
    if solver != "lbfgs":
        assert est.n_iter_ == 4 and est.t_ == 3 * 4 * len(y)
        assert len(est.loss_curve_) == 12
    assert_predictions_equal(ref, est, X_test, y_test)


def test_warm_start_false_restarts(global_random_seed):
    X, y, _, _ = make_data("multiclass", global_random_seed)
    ref, est = _pair(hidden_layer_sizes=(5,), max_iter=3, random_state=global_random_seed)
    _both(ref, est, "fit", X, y)
    _both(ref, est, "fit", X, y)
    assert len(est.loss_curve_) == 3 and est.t_ == 3 * len(y)
    assert_fit_equal(ref, est)


def test_warm_start_regressor(global_random_seed):
    X, y, X_test, y_test = make_regression_data(global_random_seed)
    ref, est = _pair("MLPRegressor", hidden_layer_sizes=(5,), max_iter=3,
                     warm_start=True, learning_rate_init=0.01,
                     random_state=global_random_seed)
    for _ in range(3):
        _both(ref, est, "fit", X, y)
        assert_fit_equal(ref, est)
    assert_predictions_equal(ref, est, X_test, y_test)


def test_warm_start_sgd_invscaling(global_random_seed):
    # invscaling uses t_, which keeps growing across warm-started fits.
    X, y, _, _ = make_data("binary", global_random_seed)
    ref, est = _pair(hidden_layer_sizes=(4,), solver="sgd", learning_rate="invscaling",
                     learning_rate_init=0.5, max_iter=3, warm_start=True,
                     random_state=global_random_seed)
    for _ in range(3):
        _both(ref, est, "fit", X, y)
        assert_fit_equal(ref, est)


def test_warm_start_with_early_stopping(global_random_seed):
    # validation_scores_ and best_validation_score_ carry over between fits.
    # A deliberate difference: at the end of a fit with early stopping sklearn
    # does ``coefs_ = _best_coefs`` (the same arrays, no copy), and a
    # warm-started fit then trains those arrays in place; if that fit never
    # beats the carried-over best score, the "restored best weights" are the
    # *last* epoch's. cymlp restores the best weights, as documented: then
    # the ones the second fit started from.
    X, y, _, _ = make_data("multiclass", global_random_seed, n_samples=80)
    ref, est = _pair(hidden_layer_sizes=(5,), max_iter=4, warm_start=True,
                     early_stopping=True, validation_fraction=0.25,
                     learning_rate_init=0.05, random_state=global_random_seed)
    _both(ref, est, "fit", X, y)
    assert_fit_equal(ref, est)
    first_best = ref.best_validation_score_
    start = [c.copy() for c in est.coefs_ + est.intercepts_]
    _both(ref, est, "fit", X, y)
    assert len(est.validation_scores_) == len(ref.validation_scores_)
    np.testing.assert_allclose(est.validation_scores_, ref.validation_scores_)
    if max(ref.validation_scores_[-ref.n_iter_:]) > first_best:
        assert_fit_equal(ref, est)  # a new best: both keep it
    else:
        for kept, began in zip(est.coefs_ + est.intercepts_, start):
            np.testing.assert_array_equal(kept, began)


def test_warm_start_switch_solver(global_random_seed):
    # Changing the solver between warm-started fits is allowed in sklearn.
    X, y, _, _ = make_data("multiclass", global_random_seed)
    ref, est = _pair(hidden_layer_sizes=(4,), max_iter=3, warm_start=True,
                     learning_rate_init=0.05, random_state=global_random_seed)
    for solver in ("adam", "sgd", "lbfgs", "adam"):
        ref.set_params(solver=solver)
        est.set_params(solver=solver)
        _both(ref, est, "fit", X, y)
        assert_fit_equal(ref, est)


def test_warm_start_different_classes():
    X, y, _, _ = make_data("multiclass", 0)

    def run(cls):
        est = cls(max_iter=2, warm_start=True)
        est.fit(X, y)
        est.fit(X[y != 2], y[y != 2])

    outcomes = [_outcome(lambda: run(cls)) for cls in (SkMLPClassifier,
                                                       cymlp.MLPClassifier)]
    assert outcomes[0] is not None and outcomes[0][0] is ValueError
    assert outcomes[1] == outcomes[0]


def test_warm_start_feature_count_mismatch():
    X, y, _, _ = make_data("multiclass", 0)

    def run(cls):
        est = cls(max_iter=2, warm_start=True)
        est.fit(X, y)
        est.fit(X[:, :-1], y)

    outcomes = [_outcome(lambda: run(cls)) for cls in (SkMLPClassifier,
                                                       cymlp.MLPClassifier)]
    assert outcomes[0] is not None
    assert outcomes[1] == outcomes[0]


@pytest.mark.parametrize("new_sizes", [(6,), (6, 2)], ids=str)
@pytest.mark.parametrize("solver", SOLVERS + ["lbfgs"])
def test_warm_start_changed_architecture_is_safe(global_random_seed, solver,
                                                 new_sizes):
    # Changing hidden_layer_sizes between warm-started fits is not supported,
    # and sklearn's reaction is an accident of its code: with the same number
    # of layers its stochastic solvers silently keep training the *old*
    # network (coefs_ keep their shapes); otherwise it fails somewhere inside
    # (AttributeError, or a numpy broadcasting ValueError for lbfgs).  cymlp
    # sizes its workspace from the parameters, so this is where a kernel that
    # trusts shapes could read out of bounds.  Required: where sklearn
    # succeeds, cymlp gives the same weights; where sklearn fails, cymlp
    # raises an exception (any class -- a clear ValueError is better than
    # sklearn's accident) instead of crashing or training garbage. Where
    # sklearn silently ignores the new sizes, cymlp deliberately raises a
    # ValueError that says so (a parameter must not be ignored silently).
    X, y, _, _ = make_data("multiclass", global_random_seed)
    ref, est = _pair(hidden_layer_sizes=(4,), solver=solver, max_iter=3,
                     warm_start=True, learning_rate_init=0.05,
                     random_state=global_random_seed)
    _both(ref, est, "fit", X, y)
    ref.set_params(hidden_layer_sizes=new_sizes)
    est.set_params(hidden_layer_sizes=new_sizes)
    outcomes = [_outcome(lambda: m.fit(X, y)) for m in (ref, est)]
    if outcomes[0] is None:
        # sklearn kept training the old network
        assert [c.shape for c in ref.coefs_][0][1] != new_sizes[0]
        assert outcomes[1][0] is ValueError
        assert "hidden_layer_sizes" in outcomes[1][1]
    else:
        assert outcomes[1] is not None


@pytest.mark.parametrize("solver", SOLVERS)
def test_warm_start_convergence_warning_each_fit(global_random_seed, solver):
    X, y, _, _ = make_data("multiclass", global_random_seed)
    ref, est = _pair(hidden_layer_sizes=(4,), solver=solver, max_iter=2,
                     warm_start=True, random_state=global_random_seed)
    for _ in range(2):
        w = _both(ref, est, "fit", X, y)
        assert sum(issubclass(c, ConvergenceWarning) for c, _ in w) == 1
