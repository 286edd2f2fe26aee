"""Parity of cymlp.MLPClassifier with sklearn.neural_network.MLPClassifier.

Every test fits both estimators with the same parameters, data and
``random_state`` and requires the same trained weights, loss curve, counters,
warnings and predictions (see ``_parity.py`` for the tolerances and why).

Runs are short (a handful of epochs): parity is a statement about doing the
same arithmetic, and over hundreds of epochs any training run amplifies
rounding differences until the comparison says nothing.  Solvers covered here
are the stochastic ones ('adam', 'sgd'); lbfgs is in test_lbfgs.py.
"""

import re

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkMLPClassifier

import cymlp
from _parity import (
    assert_close,
    assert_fit_equal,
    assert_predictions_equal,
    call_recording_warnings,
    check_parity,
    fit_both,
    make_data,
    raw_digits,
)

ACTIVATIONS = ["identity", "logistic", "tanh", "relu"]
SOLVERS = ["adam", "sgd"]

# A learning rate per solver that moves the weights visibly within a few
# epochs (the defaults, 1e-3, barely leave the initialisation).
LR = {"adam": 0.01, "sgd": 0.1}


def _params(seed, **kwargs):
    """Short runs by default: max_iter small and a stopping rule that cannot
    fire before max_iter (n_iter_no_change > max_iter), unless overridden."""
    params = dict(
        hidden_layer_sizes=(5,),
        max_iter=8,
        n_iter_no_change=100,
        random_state=seed,
    )
    params.update(kwargs)
    if "learning_rate_init" not in kwargs:
        params["learning_rate_init"] = LR[params.get("solver", "adam")]
    return params


# ---------------------------------------------------------------------------
# Activations x solvers
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activation_solver(global_random_seed, activation, solver):
    params = _params(global_random_seed, activation=activation, solver=solver)
    check_parity(params, make_data("multiclass", global_random_seed))


@pytest.mark.parametrize("solver", SOLVERS)
def test_default_parameters(global_random_seed, solver):
    # The defaults as a user would write them, only shortened: 100 hidden
    # units, relu, lr 1e-3, tol 1e-4, n_iter_no_change 10.
    params = dict(solver=solver, max_iter=5, random_state=global_random_seed)
    check_parity(params, make_data("iris", global_random_seed))


# ---------------------------------------------------------------------------
# SGD learning-rate schedules and momentum
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("nesterovs_momentum", [True, False])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("learning_rate", ["constant", "invscaling", "adaptive"])
def test_sgd_schedules(global_random_seed, learning_rate, momentum,
                       nesterovs_momentum):
    params = _params(
        global_random_seed,
        solver="sgd",
        learning_rate=learning_rate,
        momentum=momentum,
        nesterovs_momentum=nesterovs_momentum,
        batch_size=16,
    )
    if learning_rate == "invscaling":
        # invscaling divides by (t + 1) ** power_t with t counted in samples;
        # a larger initial rate keeps the steps from vanishing.
        params["learning_rate_init"] = 0.5
    check_parity(params, make_data("binary", global_random_seed))


@pytest.mark.parametrize("power_t", [0.0, 0.25, 1.0])
def test_sgd_invscaling_power_t(global_random_seed, power_t):
    params = _params(global_random_seed, solver="sgd", learning_rate="invscaling",
                     power_t=power_t, learning_rate_init=0.3, batch_size=10)
    check_parity(params, make_data("multiclass", global_random_seed))


@pytest.mark.parametrize(
    "beta_1, beta_2, epsilon",
    [(0.9, 0.999, 1e-8), (0.0, 0.5, 1e-8), (0.5, 0.9, 1e-3), (0.99, 0.9, 1e-6)],
)
def test_adam_hyperparameters(global_random_seed, beta_1, beta_2, epsilon):
    # beta_2 = 0 is valid but left out on purpose: the step becomes
    # lr * m / (|g| + eps), so a gradient component passing near zero turns an
    # ulp of difference into a step of any size -- parity is then luck.
    params = _params(global_random_seed, solver="adam", beta_1=beta_1,
                     beta_2=beta_2, epsilon=epsilon, batch_size=20)
    check_parity(params, make_data("multiclass", global_random_seed))


# ---------------------------------------------------------------------------
# Targets
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel", "strings"])
def test_targets(global_random_seed, kind, solver):
    params = _params(global_random_seed, solver=solver, hidden_layer_sizes=(6,))
    ref, est, _ = check_parity(params, make_data(kind, global_random_seed))
    # The output layer is chosen from the target type.
    expected = {"binary": "logistic", "multiclass": "softmax",
                "multilabel": "logistic", "strings": "softmax"}[kind]
    assert est.out_activation_ == expected


def test_many_classes(global_random_seed):
    # 10 classes, 64 features: wider matrices than the other tests.
    params = _params(global_random_seed, hidden_layer_sizes=(7, 4), max_iter=5)
    check_parity(params, make_data("digits", global_random_seed, n_samples=120))


@pytest.mark.parametrize(
    "transform",
    [
        pytest.param(lambda y: np.array([-7, 3, 10])[y], id="noncontiguous-int"),
        pytest.param(lambda y: y.astype(np.float64), id="float-labels"),
        pytest.param(lambda y: y.tolist(), id="list"),
        pytest.param(lambda y: np.array(["b", "a", "c"], dtype=object)[y],
                     id="object-strings"),
    ],
)
def test_label_encodings(global_random_seed, transform):
    X, y, X_test, y_test = make_data("multiclass", global_random_seed)
    params = _params(global_random_seed)
    ref, est, _ = fit_both(params, X, transform(y))
    assert_fit_equal(ref, est)
    assert_predictions_equal(ref, est, X_test, transform(y_test))


def test_bool_labels(global_random_seed):
    X, y, X_test, y_test = make_data("binary", global_random_seed)
    params = _params(global_random_seed)
    ref, est, _ = fit_both(params, X, y.astype(bool))
    assert_fit_equal(ref, est)
    assert_predictions_equal(ref, est, X_test, y_test.astype(bool))


def test_column_vector_y_warns(global_random_seed):
    # y of shape (n, 1) is raveled with a DataConversionWarning; fit_both
    # requires the same warning from both.
    X, y, X_test, _ = make_data("multiclass", global_random_seed)
    params = _params(global_random_seed)
    ref, est, w = fit_both(params, X, y.reshape(-1, 1))
    assert any("column-vector y" in msg for _, msg in w)
    assert_fit_equal(ref, est)
    assert_predictions_equal(ref, est, X_test)


def test_multilabel_all_outputs(global_random_seed):
    # Multilabel predictions are indicator matrices; predict_proba gives one
    # independent probability per label (not a distribution).
    X, Y, X_test, Y_test = make_data("multilabel", global_random_seed)
    params = _params(global_random_seed, solver="adam", hidden_layer_sizes=(8,))
    ref, est, _ = fit_both(params, X, Y)
    assert_fit_equal(ref, est)
    assert_predictions_equal(ref, est, X_test, Y_test)
    assert est.predict(X_test).shape == Y_test.shape


# ---------------------------------------------------------------------------
# Architecture
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "hidden_layer_sizes",
    [(5,), (7, 4), 3, [4, 3], np.array([6]), (3, 3, 3), (1,), []],
    ids=["(5,)", "(7,4)", "3", "[4,3]", "array([6])", "(3,3,3)", "(1,)", "[]"],
)
@pytest.mark.parametrize("solver", SOLVERS)
def test_hidden_layer_sizes(global_random_seed, hidden_layer_sizes, solver):
    # [] is accepted by sklearn and gives a network without hidden layer
    # (multinomial logistic regression): n_layers_ == 2.
    params = _params(global_random_seed, solver=solver,
                     hidden_layer_sizes=hidden_layer_sizes)
    ref, est, _ = check_parity(params, make_data("multiclass", global_random_seed))
    assert est.n_layers_ == ref.n_layers_


# ---------------------------------------------------------------------------
# Minibatches and shuffling
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("batch_size", ["auto", 1, 7, 60])
@pytest.mark.parametrize("solver", SOLVERS)
def test_batch_size(global_random_seed, batch_size, solver):
    # 60 samples: 7 leaves a short last batch of 4; 60 is exactly one batch.
    max_iter = 3 if batch_size == 1 else 8
    params = _params(global_random_seed, solver=solver, batch_size=batch_size,
                     max_iter=max_iter)
    if batch_size == 1 and solver == "sgd":
        params["learning_rate_init"] = 0.01
    check_parity(params, make_data("multiclass", global_random_seed, n_samples=60))


def test_batch_size_auto_caps_at_200(global_random_seed):
    # 'auto' means min(200, n_samples): 250 samples give a batch of 200 and a
    # last batch of 50.
    params = _params(global_random_seed, batch_size="auto", max_iter=4)
    check_parity(params, make_data("digits", global_random_seed, n_samples=250))


@pytest.mark.parametrize("solver", SOLVERS)
def test_batch_size_larger_than_n_samples_warns(global_random_seed, solver):
    X, y, X_test, y_test = make_data("multiclass", global_random_seed, n_samples=30)
    params = _params(global_random_seed, solver=solver, batch_size=45)
    ref, est, w = fit_both(params, X, y)
    # sklearn warns (UserWarning, exactly this text) and clips to n_samples.
    msg = ("Got `batch_size` less than 1 or larger than sample size. "
           "It is going to be clipped")
    assert (UserWarning, msg) in w
    assert_fit_equal(ref, est)
    assert_predictions_equal(ref, est, X_test, y_test)


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("solver", SOLVERS)
def test_shuffle(global_random_seed, shuffle, solver):
    params = _params(global_random_seed, solver=solver, shuffle=shuffle,
                     batch_size=13)
    check_parity(params, make_data("multiclass", global_random_seed))


def test_shuffle_changes_result(global_random_seed):
    # Guards the parity tests above against a vacuous pass: with minibatches
    # smaller than the data, shuffling must change sklearn's result, and
    # cymlp's must follow.
    X, y, _, _ = make_data("multiclass", global_random_seed)
    params = _params(global_random_seed, batch_size=13)
    a = cymlp.MLPClassifier(**params, shuffle=True)
    b = cymlp.MLPClassifier(**params, shuffle=False)
    call_recording_warnings(a.fit, X, y)
    call_recording_warnings(b.fit, X, y)
    assert not np.allclose(a.coefs_[0], b.coefs_[0])


# ---------------------------------------------------------------------------
# Input dtypes
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize(
    "dtype", [np.float64, np.float32, np.int64, np.int32, np.float16, np.uint8]
)
def test_input_dtype(global_random_seed, dtype, solver):
    # sklearn keeps float32 (weights, activations and predict_proba become
    # float32) and converts every other dtype to float64.  Integer data are
    # the raw digits pixels (0..16); float16 goes through standardized data.
    if np.issubdtype(dtype, np.integer):
        X, y, X_test, y_test = raw_digits(global_random_seed, n_samples=80)
        X, X_test = X.astype(dtype), X_test.astype(dtype)
    else:
        X, y, X_test, y_test = make_data("multiclass", global_random_seed)
        X, X_test = X.astype(dtype), X_test.astype(dtype)
    # Raw pixels (0..16) give large gradients: a smaller sgd step keeps the
    # run far from divergence.
    lr = {"adam": 0.01, "sgd": 0.001 if np.issubdtype(dtype, np.integer) else 0.1}
    params = _params(global_random_seed, solver=solver,
                     learning_rate_init=lr[solver], hidden_layer_sizes=(6,))
    ref, est, _ = fit_both(params, X, y)

    expected = np.float32 if dtype == np.float32 else np.float64
    assert ref.coefs_[0].dtype == expected  # what sklearn does
    for arr in est.coefs_ + est.intercepts_:
        assert arr.dtype == expected
    assert_fit_equal(ref, est, dtype=expected)
    assert_predictions_equal(ref, est, X_test, y_test, dtype=expected)


@pytest.mark.parametrize(
    "predict_dtype", [np.float32, np.float64, np.int64],
)
@pytest.mark.parametrize("fit_dtype", [np.float32, np.float64])
def test_predict_dtype_mixing(global_random_seed, fit_dtype, predict_dtype):
    # sklearn's forward pass at predict time is numpy's ``X @ coef`` with X
    # validated but not cast: a float32 model applied to float64 or int64 data
    # returns float64 probabilities computed in float64 (with the float32
    # weights), and a float64 model applied to float32 data returns float64.
    X, y, X_test, y_test = make_data("multiclass", global_random_seed)
    params = _params(global_random_seed)
    ref, est, _ = fit_both(params, X.astype(fit_dtype), y)
    if np.issubdtype(predict_dtype, np.integer):
        X_test = np.round(X_test * 3)
    X_test = X_test.astype(predict_dtype)
    ref_proba, est_proba = ref.predict_proba(X_test), est.predict_proba(X_test)
    assert est_proba.dtype == ref_proba.dtype
    # The weights agree to float32 precision if either side is float32.
    tol_dtype = np.float32 if np.float32 in (fit_dtype, predict_dtype) else np.float64
    assert_close(est_proba, ref_proba, tol_dtype)
    assert_predictions_equal(ref, est, X_test, y_test, dtype=tol_dtype)


def test_non_contiguous_and_fortran_input(global_random_seed):
    X, y, X_test, y_test = make_data("multiclass", global_random_seed, n_features=8)
    params = _params(global_random_seed)
    X_f = np.asfortranarray(X)
    X_strided = X[:, ::2]  # a non-contiguous view
    for data in (X_f, X_strided):
        ref, est, _ = fit_both(params, data, y)
        assert_fit_equal(ref, est)
    assert_predictions_equal(ref, est, np.asfortranarray(X_test[:, ::2]), y_test)


# ---------------------------------------------------------------------------
# Regularisation
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("alpha", [0.0, 1e-4, 0.5])
@pytest.mark.parametrize("solver", SOLVERS)
def test_alpha(global_random_seed, alpha, solver):
    params = _params(global_random_seed, solver=solver, alpha=alpha,
                     hidden_layer_sizes=(7, 4), batch_size=25)
    check_parity(params, make_data("multiclass", global_random_seed))


@pytest.mark.parametrize("partial", [False, True])
@pytest.mark.parametrize("solver", SOLVERS)
def test_alpha_loss_curve_tight(global_random_seed, solver, partial):
    # The L2 penalty of each minibatch's loss comes from the previous step's
    # pass over the weights (the first one of each epoch from a separate
    # sum): the reported loss must still be sklearn's within 1e-12 relative,
    # with a penalty large enough to matter, across epochs and partial_fit
    # calls (each call starts its own epoch).
    X, y, _, _ = make_data("multiclass", global_random_seed)
    params = _params(global_random_seed, solver=solver, alpha=2.0,
                     hidden_layer_sizes=(11, 6), batch_size=13)
    if partial:
        ref = SkMLPClassifier(**params)
        est = cymlp.MLPClassifier(**params)
        for _ in range(4):
            call_recording_warnings(ref.partial_fit, X, y, classes=np.unique(y))
            call_recording_warnings(est.partial_fit, X, y, classes=np.unique(y))
    else:
        ref, est, _ = fit_both(params, X, y)
    np.testing.assert_allclose(est.loss_curve_, ref.loss_curve_, rtol=1e-12, atol=0)


def test_alpha_changes_result(global_random_seed):
    # Guards test_alpha against a vacuous pass: alpha must change both the
    # weights and the reported loss (sklearn adds 0.5 * alpha * ||W||^2 / n
    # per batch to the loss).
    X, y, _, _ = make_data("multiclass", global_random_seed)
    a = cymlp.MLPClassifier(**_params(global_random_seed, alpha=0.0))
    b = cymlp.MLPClassifier(**_params(global_random_seed, alpha=1.0))
    call_recording_warnings(a.fit, X, y)
    call_recording_warnings(b.fit, X, y)
    assert b.loss_curve_[0] > a.loss_curve_[0]
    assert not np.allclose(a.coefs_[0], b.coefs_[0])


# ---------------------------------------------------------------------------
# Stopping rules and learning-rate adaptation
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("solver", SOLVERS)
def test_stops_on_training_loss_plateau(global_random_seed, solver):
    # With tol larger than any per-epoch improvement, the loss "does not
    # improve" from the second epoch on; training stops once the count
    # exceeds n_iter_no_change, i.e. after n_iter_no_change + 2 epochs, with
    # no ConvergenceWarning.
    X, y, X_test, y_test = make_data("multiclass", global_random_seed)
    params = _params(global_random_seed, solver=solver, tol=10.0,
                     n_iter_no_change=3, max_iter=50)
    ref, est, w = fit_both(params, X, y)
    assert ref.n_iter_ == 5
    assert not any(issubclass(c, ConvergenceWarning) for c, _ in w)
    assert_fit_equal(ref, est)
    assert_predictions_equal(ref, est, X_test, y_test)


@pytest.mark.parametrize("solver", SOLVERS)
def test_stops_on_natural_plateau(global_random_seed, solver):
    # A small tol and a slow learning rate: where training stops depends on
    # the loss curve itself, so n_iter_ checks the whole stopping logic
    # (loss > best_loss_ - tol counts as no improvement).
    X, y, X_test, y_test = make_data("multiclass", global_random_seed)
    params = _params(global_random_seed, solver=solver, tol=2e-3,
                     n_iter_no_change=2, max_iter=40,
                     learning_rate_init={"adam": 0.003, "sgd": 0.02}[solver])
    ref, est, _ = fit_both(params, X, y)
    assert_fit_equal(ref, est)
    assert_predictions_equal(ref, est, X_test, y_test)


def test_n_iter_no_change_inf(global_random_seed):
    # n_iter_no_change=np.inf is a valid value: never stop early.
    X, y, _, _ = make_data("multiclass", global_random_seed)
    params = _params(global_random_seed, tol=10.0, n_iter_no_change=np.inf,
                     max_iter=6)
    ref, est, w = fit_both(params, X, y)
    assert ref.n_iter_ == 6
    assert any(issubclass(c, ConvergenceWarning) for c, _ in w)
    assert_fit_equal(ref, est)


def test_sgd_adaptive_divides_learning_rate(global_random_seed, capsys):
    # learning_rate='adaptive' divides the rate by 5 each time the stopping
    # rule fires, and stops only when the rate has fallen to <= 1e-6: with
    # tol=10 every epoch after the first "fails", so from 0.1 the rate is
    # divided 8 times (0.1 / 5**8 = 2.56e-7) and the 9th trigger stops, after
    # 1 + 9 * (n_iter_no_change + 1) epochs.  The verbose lines show every
    # division; they must match sklearn's character for character.
    X, y, X_test, y_test = make_data("binary", global_random_seed)
    params = _params(global_random_seed, solver="sgd", learning_rate="adaptive",
                     learning_rate_init=0.1, tol=10.0, n_iter_no_change=2,
                     max_iter=100, verbose=True)
    ref, est, _ = fit_both(params, X, y)
    out = capsys.readouterr().out
    assert ref.n_iter_ == 1 + 9 * 3
    assert_fit_equal(ref, est)
    assert_predictions_equal(ref, est, X_test, y_test)

    ref_out, est_out = _split_verbose(out)
    assert est_out == ref_out
    assert sum("Setting learning rate to" in line for line in ref_out) == 8
    assert "Learning rate too small. Stopping." in ref_out[-1]


def test_sgd_adaptive_without_trigger_matches_constant(global_random_seed):
    # Before the stopping rule fires, 'adaptive' is 'constant': both
    # implementations, both schedules, same weights.
    X, y, _, _ = make_data("binary", global_random_seed)
    params = _params(global_random_seed, solver="sgd", max_iter=5)
    ref_a, est_a, _ = fit_both({**params, "learning_rate": "adaptive"}, X, y)
    ref_c, est_c, _ = fit_both({**params, "learning_rate": "constant"}, X, y)
    assert_fit_equal(ref_a, est_a)
    for r, e in zip(ref_c.coefs_, est_a.coefs_):
        assert_close(e, r)


@pytest.mark.parametrize("solver", SOLVERS)
def test_convergence_warning_at_max_iter(global_random_seed, solver):
    X, y, _, _ = make_data("multiclass", global_random_seed)
    params = _params(global_random_seed, solver=solver, max_iter=3)
    ref, est, w = fit_both(params, X, y)
    msg = ("Stochastic Optimizer: Maximum iterations (3) reached and the "
           "optimization hasn't converged yet.")
    assert w.count((ConvergenceWarning, msg)) == 1
    with pytest.warns(ConvergenceWarning, match=re.escape(msg)):
        cymlp.MLPClassifier(**params).fit(X, y)
    assert_fit_equal(ref, est)


def test_max_iter_one(global_random_seed):
    X, y, X_test, y_test = make_data("multiclass", global_random_seed)
    params = _params(global_random_seed, max_iter=1)
    ref, est, _ = fit_both(params, X, y)
    assert est.n_iter_ == 1 and est.t_ == len(y)
    assert_fit_equal(ref, est)
    assert_predictions_equal(ref, est, X_test, y_test)


# ---------------------------------------------------------------------------
# Verbose output
# ---------------------------------------------------------------------------
def _split_verbose(out):
    """Split captured stdout of two consecutive verbose fits into two lists.

    Every fit prints 'Iteration 1, loss = ...' first, so the second fit starts
    at the second occurrence of that line.
    """
    lines = out.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Iteration 1,")]
    assert len(starts) == 2, out
    return lines[: starts[1]], lines[starts[1]:]


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(dict(solver="adam"), id="adam"),
        pytest.param(dict(solver="sgd"), id="sgd"),
        pytest.param(dict(solver="adam", tol=10.0, n_iter_no_change=2, max_iter=20),
                     id="adam-stopping"),
        pytest.param(dict(solver="sgd", tol=10.0, n_iter_no_change=2, max_iter=20),
                     id="sgd-stopping"),
    ],
)
@pytest.mark.parametrize("verbose", [True, 2])
def test_verbose_output(global_random_seed, capsys, extra, verbose):
    # sklearn prints "Iteration %d, loss = %.8f" per epoch and, when the
    # stopping rule fires, "Training loss did not improve more than tol=%f
    # for %d consecutive epochs. Stopping."  Compared exactly; the losses agree
    # to ~1e-15, far below the 8 printed decimals.
    X, y, _, _ = make_data("multiclass", global_random_seed)
    params = _params(global_random_seed, verbose=verbose, **extra)
    capsys.readouterr()
    ref, est, _ = fit_both(params, X, y)
    ref_out, est_out = _split_verbose(capsys.readouterr().out)
    assert est_out == ref_out
    assert len(ref_out) >= ref.n_iter_


def test_not_verbose_prints_nothing(global_random_seed, capsys):
    X, y, _, _ = make_data("multiclass", global_random_seed)
    capsys.readouterr()
    call_recording_warnings(cymlp.MLPClassifier(**_params(global_random_seed)).fit,
                            X, y)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


# ---------------------------------------------------------------------------
# random_state handling
# ---------------------------------------------------------------------------
def test_random_state_instance(global_random_seed):
    # A RandomState instance is used (and advanced) in place, as in sklearn:
    # a second fit with the same instance continues its stream and gives
    # other weights.  Both fits must match sklearn's two fits.
    X, y, _, _ = make_data("multiclass", global_random_seed)
    params = _params(global_random_seed, batch_size=13)
    rs_ref = np.random.RandomState(global_random_seed)
    rs_est = np.random.RandomState(global_random_seed)
    ref = SkMLPClassifier(**{**params, "random_state": rs_ref})
    est = cymlp.MLPClassifier(**{**params, "random_state": rs_est})
    for _ in range(2):
        call_recording_warnings(ref.fit, X, y)
        call_recording_warnings(est.fit, X, y)
        assert_fit_equal(ref, est)
    # The instance was consumed identically.
    assert_close(rs_est.uniform(size=5), rs_ref.uniform(size=5))


def test_refit_with_int_random_state_is_reproducible(global_random_seed):
    # An int random_state restarts the stream on each fit: refitting must give
    # sklearn's (single-fit) result again, not a continuation.
    X, y, _, _ = make_data("multiclass", global_random_seed)
    params = _params(global_random_seed)
    ref, est, _ = fit_both(params, X, y)
    call_recording_warnings(est.fit, X, y)
    assert_fit_equal(ref, est)


def test_random_state_none_uses_numpy_global_state():
    # random_state=None draws from numpy's global RandomState, like sklearn:
    # seeding the global state makes it reproducible and equal to sklearn.
    X, y, _, _ = make_data("multiclass", 0)
    params = _params(0)
    params["random_state"] = None
    np.random.seed(3)
    ref = SkMLPClassifier(**params)
    call_recording_warnings(ref.fit, X, y)
    np.random.seed(3)
    est = cymlp.MLPClassifier(**params)
    call_recording_warnings(est.fit, X, y)
    assert_fit_equal(ref, est)


# ---------------------------------------------------------------------------
# Fitted attribute types (drop-in replacement: same Python types)
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("solver", SOLVERS)
def test_fitted_attribute_types(global_random_seed, solver, dtype):
    # sklearn's loss_, best_loss_ and loss_curve_ entries are numpy.float64
    # scalars even for float32 data (the log-loss goes through scipy's xlogy,
    # which returns float64); t_ and n_iter_ are Python ints; coefs_,
    # intercepts_ and loss_curve_ are lists; validation_scores_ and
    # best_validation_score_ are None without early stopping.
    X, y, _, _ = make_data("multiclass", global_random_seed)
    params = _params(global_random_seed, solver=solver, max_iter=3)
    ref, est, _ = fit_both(params, X.astype(dtype), y)
    for attr in ("loss_", "best_loss_", "t_", "n_iter_", "n_layers_",
                 "n_outputs_", "n_features_in_", "out_activation_",
                 "coefs_", "intercepts_", "loss_curve_"):
        assert type(getattr(est, attr)) is type(getattr(ref, attr)), attr
    assert [type(v) for v in est.loss_curve_] == [type(v) for v in ref.loss_curve_]
    assert est.validation_scores_ is None
    assert est.best_validation_score_ is None
    for arr in est.coefs_ + est.intercepts_:
        assert isinstance(arr, np.ndarray)
    assert [a.ndim for a in est.intercepts_] == [a.ndim for a in ref.intercepts_]


def test_coefs_are_independent_of_input(global_random_seed):
    # Fitting must not modify the caller's X or y.
    X, y, _, _ = make_data("multiclass", global_random_seed)
    X_orig, y_orig = X.copy(), y.copy()
    est = cymlp.MLPClassifier(**_params(global_random_seed))
    call_recording_warnings(est.fit, X, y)
    np.testing.assert_array_equal(X, X_orig)
    np.testing.assert_array_equal(y, y_orig)


def test_single_sample_and_single_feature_predict(global_random_seed):
    X, y, X_test, _ = make_data("binary", global_random_seed, n_features=1)
    ref, est, _ = fit_both(_params(global_random_seed), X, y)
    assert_fit_equal(ref, est)
    assert_predictions_equal(ref, est, X_test[:1])
