"""Parity with sklearn for solver='lbfgs' (MLPClassifier; the regressor's lbfgs
cases are in test_regressor.py).

sklearn runs scipy.optimize.minimize(method="L-BFGS-B") on the packed
parameter vector with maxiter=max_iter, maxfun=max_fun, gtol=tol.  Same
objective and gradient up to rounding means the same L-BFGS path, so weights,
n_iter_ and loss_ must agree.  Runs stay short (<= 30 iterations): line-search
decisions are discrete and a long run could in principle branch on an ulp.
"""

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkMLPClassifier

import cymlp
from _parity import (
    assert_fit_equal,
    assert_predictions_equal,
    call_recording_warnings,
    check_parity,
    fit_both,
    make_data,
)

ACTIVATIONS = ["identity", "logistic", "tanh", "relu"]


def _params(seed, **kwargs):
    return {"solver": "lbfgs", "hidden_layer_sizes": (5,), "max_iter": 15,
            "random_state": seed, **kwargs}


@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel", "strings"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_lbfgs_parity(global_random_seed, activation, kind):
    check_parity(_params(global_random_seed, activation=activation),
                 make_data(kind, global_random_seed))


@pytest.mark.parametrize("hidden_layer_sizes", [(7, 4), 3, []], ids=str)
@pytest.mark.parametrize("alpha", [0.0, 1e-4, 1.0])
def test_lbfgs_architecture_and_alpha(global_random_seed, hidden_layer_sizes, alpha):
    check_parity(_params(global_random_seed, hidden_layer_sizes=hidden_layer_sizes,
                         alpha=alpha), make_data("multiclass", global_random_seed))


def test_lbfgs_attributes(global_random_seed):
    # lbfgs leaves t_ at 0 and never defines loss_curve_, best_loss_,
    # validation_scores_ or best_validation_score_ (hasattr is False, they
    # are not None); n_iter_ is scipy's nit.
    X, y, _, _ = make_data("multiclass", global_random_seed)
    ref, est, _ = fit_both(_params(global_random_seed), X, y)
    assert est.t_ == 0
    for attr in ("loss_curve_", "best_loss_", "validation_scores_",
                 "best_validation_score_"):
        assert not hasattr(ref, attr) and not hasattr(est, attr), attr
    assert type(est.loss_) is type(ref.loss_)
    assert type(est.n_iter_) is type(ref.n_iter_)


def test_lbfgs_float32_gives_float64_weights(global_random_seed):
    # A quirk to reproduce: scipy's L-BFGS-B works in float64 and sklearn
    # unpacks its float64 result into coefs_, so float32 input ends with
    # float64 weights (unlike adam/sgd, which keep float32).  The first
    # iterations run the forward pass in float32, hence float32 tolerances.
    X, y, X_test, y_test = make_data("multiclass", global_random_seed)
    X, X_test = X.astype(np.float32), X_test.astype(np.float32)
    # Few iterations: float32 rounding in the loss and gradient feeds L-BFGS's
    # line search, which amplifies it more than adam/sgd steps do.
    ref, est, _ = fit_both(_params(global_random_seed, max_iter=5), X, y)
    assert ref.coefs_[0].dtype == np.float64
    assert_fit_equal(ref, est, dtype=np.float32)
    assert_predictions_equal(ref, est, X_test, y_test, dtype=np.float32)


def test_lbfgs_int_input(global_random_seed):
    X, y, X_test, y_test = make_data("multiclass", global_random_seed)
    X, X_test = np.round(X * 4).astype(np.int64), np.round(X_test * 4).astype(np.int64)
    ref, est, _ = fit_both(_params(global_random_seed), X, y)
    assert_fit_equal(ref, est)
    assert_predictions_equal(ref, est, X_test, y_test)


def test_lbfgs_max_iter_convergence_warning(global_random_seed):
    # sklearn's warning text comes from its _check_optimize_result (scipy's
    # status message, plus advice); fit_both requires the same text.
    X, y, _, _ = make_data("multiclass", global_random_seed)
    ref, est, w = fit_both(_params(global_random_seed, max_iter=3), X, y)
    assert any(issubclass(c, ConvergenceWarning) for c, _ in w)
    assert ref.n_iter_ == 3
    assert_fit_equal(ref, est)


def test_lbfgs_max_fun(global_random_seed):
    # max_fun caps the number of loss evaluations, also with a ConvergenceWarning.
    X, y, _, _ = make_data("multiclass", global_random_seed)
    ref, est, w = fit_both(_params(global_random_seed, max_iter=100, max_fun=6),
                           X, y)
    assert any(issubclass(c, ConvergenceWarning) for c, _ in w)
    assert ref.n_iter_ < 100
    assert_fit_equal(ref, est)


def test_lbfgs_converges_by_tol(global_random_seed):
    # A loose tol (scipy's gtol) stops the run early, without warning.  tanh
    # and a strong alpha make the objective smooth and well conditioned, so
    # L-BFGS converges in a few dozen iterations; with relu's kinks a run can
    # crawl for hundreds of iterations, and then an ulp can change where it
    # stops.
    X, y, X_test, y_test = make_data("binary", global_random_seed)
    ref, est, w = fit_both(_params(global_random_seed, activation="tanh",
                                   max_iter=200, tol=1e-3, alpha=1.0), X, y)
    assert ref.n_iter_ < 200
    assert not any(issubclass(c, ConvergenceWarning) for c, _ in w)
    assert_fit_equal(ref, est)
    assert_predictions_equal(ref, est, X_test, y_test)


def test_lbfgs_ignores_stochastic_parameters(global_random_seed):
    # batch_size, shuffle, learning rates, momentum, early_stopping... do not
    # affect lbfgs; the batch_size warning is not emitted either.
    X, y, _, _ = make_data("multiclass", global_random_seed, n_samples=30)
    ref, est, w = fit_both(
        _params(global_random_seed, batch_size=1000, shuffle=False,
                learning_rate="adaptive", learning_rate_init=0.5, momentum=0.1,
                early_stopping=True, n_iter_no_change=1), X, y)
    assert not any(c is UserWarning for c, _ in w)
    assert_fit_equal(ref, est)


def test_lbfgs_verbose(global_random_seed, capfd):
    # A deliberate difference: sklearn's lbfgs prints nothing with current
    # scipy (its iprint option is gone). cymlp prints one line per
    # iteration, in the format of the stochastic solvers, and the last
    # line's loss is the final loss_.
    X, y, _, _ = make_data("multiclass", global_random_seed)
    params = _params(global_random_seed, verbose=True, max_iter=5)
    capfd.readouterr()
    call_recording_warnings(SkMLPClassifier(**params).fit, X, y)
    assert capfd.readouterr().out == ""  # what sklearn does
    est = cymlp.MLPClassifier(**params)
    call_recording_warnings(est.fit, X, y)
    lines = capfd.readouterr().out.splitlines()
    assert len(lines) == est.n_iter_
    for k, line in enumerate(lines, start=1):
        assert line.startswith("Iteration %d, loss = " % k)
    assert float(lines[-1].split("= ")[1]) == pytest.approx(est.loss_, abs=1e-8)
