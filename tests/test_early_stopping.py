"""Parity with sklearn for early_stopping=True.

sklearn splits off validation_fraction of the data with train_test_split
(random_state = the estimator's RandomState *after* the weight
initialisation; stratified for single-output classifiers), scores the
validation set after every epoch (accuracy / R^2), stops when the score has
not improved by tol for n_iter_no_change epochs, and restores the weights of
the best epoch.  best_loss_ is None in that mode.
"""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor

import cymlp
from _parity import (
    assert_close,
    assert_fit_equal,
    assert_predictions_equal,
    call_recording_warnings,
    fit_both,
    make_data,
    make_regression_data,
    normalize_message,
)

SOLVERS = ["adam", "sgd"]


def _params(seed, solver="adam", **kwargs):
    params = dict(hidden_layer_sizes=(6,), solver=solver, early_stopping=True,
                  validation_fraction=0.25, n_iter_no_change=3, tol=1e-4,
                  max_iter=25, learning_rate_init={"adam": 0.01, "sgd": 0.1}[solver],
                  random_state=seed)
    params.update(kwargs)
    return params


@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel", "strings"])
@pytest.mark.parametrize("solver", SOLVERS)
def test_early_stopping_classifier(global_random_seed, solver, kind):
    X, y, X_test, y_test = make_data(kind, global_random_seed, n_samples=80)
    ref, est, _ = fit_both(_params(global_random_seed, solver), X, y)
    assert ref.best_loss_ is None and est.best_loss_ is None
    assert isinstance(est.validation_scores_, list)
    assert len(est.validation_scores_) == est.n_iter_
    assert est.best_validation_score_ == max(est.validation_scores_)
    assert_fit_equal(ref, est)
    assert_predictions_equal(ref, est, X_test, y_test)


@pytest.mark.parametrize("validation_fraction", [0.1, 0.5])
def test_early_stopping_validation_fraction(global_random_seed, validation_fraction):
    X, y, X_test, y_test = make_data("multiclass", global_random_seed, n_samples=80)
    ref, est, _ = fit_both(
        _params(global_random_seed, validation_fraction=validation_fraction), X, y)
    assert_fit_equal(ref, est)
    assert_predictions_equal(ref, est, X_test, y_test)


@pytest.mark.parametrize("n_targets", [1, 2])
@pytest.mark.parametrize("solver", SOLVERS)
def test_early_stopping_regressor(global_random_seed, solver, n_targets):
    X, y, X_test, y_test = make_regression_data(global_random_seed, n_samples=80,
                                                n_targets=n_targets)
    params = _params(global_random_seed, solver, learning_rate_init=0.01)
    ref, est, _ = fit_both(params, X, y, name="MLPRegressor")
    assert_fit_equal(ref, est)
    assert_predictions_equal(ref, est, X_test, y_test)


def test_best_weights_are_restored(global_random_seed):
    # Training stops n_iter_no_change + 1 epochs after the best validation
    # score, and coefs_ must then be the weights of that best epoch, not the
    # last ones.  Reference: sklearn run for exactly k epochs, where k is the
    # (first) best epoch -- the validation split and every update up to epoch
    # k are the same, so its final weights are the best-epoch weights.
    X, y, _, _ = make_data("multiclass", global_random_seed, n_samples=80)
    params = _params(global_random_seed, tol=0.0, n_iter_no_change=2, max_iter=40,
                     learning_rate_init=0.05)
    est = cymlp.MLPClassifier(**params)
    call_recording_warnings(est.fit, X, y)
    k = int(np.argmax(est.validation_scores_)) + 1
    ref_k = SkMLPClassifier(**{**params, "max_iter": k})
    call_recording_warnings(ref_k.fit, X, y)
    for e, r in zip(est.coefs_ + est.intercepts_, ref_k.coefs_ + ref_k.intercepts_):
        assert_close(e, r)
    assert est.best_validation_score_ == ref_k.best_validation_score_


def test_early_stopping_stops_before_max_iter(global_random_seed):
    # tol=1 can never be met by an accuracy: the first epoch sets the best
    # score, the next n_iter_no_change + 1 fail, so training stops after
    # n_iter_no_change + 2 epochs, without ConvergenceWarning.
    X, y, _, _ = make_data("multiclass", global_random_seed, n_samples=80)
    ref, est, w = fit_both(_params(global_random_seed, tol=1.0, max_iter=50), X, y)
    assert ref.n_iter_ == 5
    assert not any(issubclass(c, ConvergenceWarning) for c, _ in w)
    assert_fit_equal(ref, est)


def test_early_stopping_sgd_adaptive(global_random_seed, capsys):
    # With learning_rate='adaptive' the validation criterion divides the
    # learning rate instead of stopping; the verbose output shows the scores
    # ("Validation score: %f") and every division.
    X, y, _, _ = make_data("multiclass", global_random_seed, n_samples=80)
    params = _params(global_random_seed, "sgd", learning_rate="adaptive", tol=1.0,
                     n_iter_no_change=2, max_iter=40, verbose=True)
    capsys.readouterr()
    ref, est, _ = fit_both(params, X, y)
    out = capsys.readouterr().out.splitlines()
    half = len(out) // 2
    assert out[half:] == out[:half]
    assert any(line.startswith("Validation score: ") for line in out)
    assert any("Validation score did not improve more than tol=" in line
               for line in out)
    assert_fit_equal(ref, est)


@pytest.mark.parametrize("solver", SOLVERS)
def test_early_stopping_verbose(global_random_seed, capsys, solver):
    X, y, _, _ = make_data("binary", global_random_seed, n_samples=80)
    params = _params(global_random_seed, solver, verbose=True, tol=1.0)
    capsys.readouterr()
    fit_both(params, X, y)
    out = capsys.readouterr().out.splitlines()
    half = len(out) // 2
    assert out[half:] == out[:half]
    assert out[-1].endswith("consecutive epochs. Stopping.")


def test_validation_set_too_small():
    # 9 samples and validation_fraction=0.1 -> one validation sample: sklearn
    # raises its own ValueError (for a regressor; a stratified classifier
    # split may fail earlier, in train_test_split, also a ValueError).
    X, y, _, _ = make_regression_data(0, n_samples=9)
    msgs = []
    for cls in (SkMLPRegressor, cymlp.MLPRegressor):
        with pytest.raises(ValueError) as excinfo:
            cls(early_stopping=True, validation_fraction=0.1, max_iter=2).fit(X, y)
        msgs.append(str(excinfo.value))
    assert msgs[1] == msgs[0]
    assert "validation set is too small" in msgs[0]


@pytest.mark.parametrize("n_samples, validation_fraction", [(12, 0.1), (30, 0.05)])
def test_stratified_split_errors_match(n_samples, validation_fraction):
    X, y, _, _ = make_data("multiclass", 0, n_samples=n_samples)
    outcomes = []
    for cls in (SkMLPClassifier, cymlp.MLPClassifier):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                cls(early_stopping=True, validation_fraction=validation_fraction,
                    max_iter=2).fit(X, y)
                outcomes.append(None)
            except Exception as exc:  # noqa: BLE001
                outcomes.append((type(exc), normalize_message(str(exc))))
    assert outcomes[1] == outcomes[0]


def test_validation_fraction_zero_with_early_stopping():
    X, y, _, _ = make_data("multiclass", 0)
    outcomes = []
    for cls in (SkMLPClassifier, cymlp.MLPClassifier):
        try:
            cls(early_stopping=True, validation_fraction=0.0, max_iter=2).fit(X, y)
            outcomes.append(None)
        except Exception as exc:  # noqa: BLE001
            outcomes.append((type(exc), normalize_message(str(exc))))
    assert outcomes[1] == outcomes[0]


def test_diverging_loss_gives_nan_validation_score():
    # sklearn's non-regression test for #29504: a diverging regressor scores
    # NaN on the validation set (a Python float nan), without raising.
    X, y, _, _ = make_regression_data(0, n_samples=100)
    X = X * 100
    params = dict(hidden_layer_sizes=100, activation="identity", solver="sgd",
                  learning_rate_init=1, max_iter=20, early_stopping=True,
                  n_iter_no_change=10, random_state=0)
    results = []
    for cls in (SkMLPRegressor, cymlp.MLPRegressor):
        est = cls(**params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y)
        results.append([str(v) for v in est.validation_scores_])
        assert isinstance(est.validation_scores_[-1], float)
    assert results[1][-1] == results[0][-1] == "nan"
    assert len(results[1]) == len(results[0])


# ---------------------------------------------------------------------------
# scoring=: early stopping on the validation loss or any score (beyond sklearn)
# ---------------------------------------------------------------------------
def _split(seed):
    from sklearn.datasets import load_iris
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    return train_test_split(X, y, test_size=0.3, random_state=seed, stratify=y)


def _fit_scoring(seed, scoring, cls=cymlp.MLPClassifier, **kwargs):
    X, X_val, y, y_val = _split(seed)
    if cls is cymlp.MLPRegressor:
        X, y, X_val, y_val = X[:, 1:], X[:, 0], X_val[:, 1:], X_val[:, 0]
    params = dict(hidden_layer_sizes=(8,), early_stopping=True, n_iter_no_change=5,
                  max_iter=60, alpha=0.0, learning_rate_init=0.02, random_state=seed,
                  scoring=scoring)
    params.update(kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = cls(**params).fit(X, y, X_val=X_val, y_val=y_val)
    return est, X_val, y_val


def test_scoring_loss_keeps_the_lowest_validation_loss(global_random_seed):
    from sklearn.metrics import log_loss

    clf, X_val, y_val = _fit_scoring(global_random_seed, "loss")
    best = min(clf.validation_loss_curve_)
    # the kept weights are those of the lowest loss, measured independently
    assert log_loss(y_val, clf.predict_proba(X_val)) == pytest.approx(best, rel=1e-9)
    assert clf.validation_scores_ == [-v for v in clf.validation_loss_curve_]
    assert clf.best_validation_score_ == -best
    assert len(clf.validation_scores_) == clf.n_iter_


def test_scoring_loss_regressor(global_random_seed):
    from sklearn.metrics import mean_squared_error

    reg, X_val, y_val = _fit_scoring(global_random_seed, "loss", cls=cymlp.MLPRegressor)
    # the regressor's loss is half the mean squared error
    assert mean_squared_error(y_val, reg.predict(X_val)) / 2 == pytest.approx(
        min(reg.validation_loss_curve_), rel=1e-9)


@pytest.mark.parametrize("scoring", ["balanced_accuracy", "neg_log_loss", "callable"])
def test_scoring_by_scorer_keeps_the_best_score(scoring, global_random_seed):
    from sklearn.metrics import get_scorer, make_scorer, f1_score

    if scoring == "callable":
        scorer = make_scorer(f1_score, average="macro")
    else:
        scorer = get_scorer(scoring)
    clf, X_val, y_val = _fit_scoring(global_random_seed, scorer if scoring == "callable"
                                     else scoring)
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    # the kept model scores what was recorded as best
    assert scorer(clf, X_val, y_val) == pytest.approx(clf.best_validation_score_, rel=1e-12)


def test_scoring_with_validation_fraction(global_random_seed):
    X, _, y, _ = _split(global_random_seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = cymlp.MLPClassifier(hidden_layer_sizes=(8,), early_stopping=True,
                                  validation_fraction=0.3, scoring="loss", max_iter=20,
                                  random_state=global_random_seed).fit(X, y)
    assert len(clf.validation_loss_curve_) == clf.n_iter_
    assert clf.best_validation_score_ == -min(clf.validation_loss_curve_)


def test_invalid_scoring_raises():
    X, _, y, _ = _split(0)
    with pytest.raises(ValueError, match="scor"):
        cymlp.MLPClassifier(early_stopping=True, scoring="no_such_score").fit(X, y)
    with pytest.raises(ValueError, match="scoring"):
        cymlp.MLPClassifier(early_stopping=True, scoring=3).fit(X, y)
