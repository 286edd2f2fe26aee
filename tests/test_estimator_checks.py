"""cymlp's estimators as scikit-learn estimators.

scikit-learn's own estimator checks for both estimators, every solver and the
options beyond scikit-learn's (all of them in this one module; none expected
to fail but the two that dropout fails by design), then, for
cymlp.MLPClassifier, the public API surface compared with sklearn's class
(signature, defaults, tags), and the meta-estimator round trips a drop-in
replacement has to survive: Pipeline, GridSearchCV, cross_val_score, clone,
pickle, deepcopy. (The regressor's API surface is compared in
test_regressor.py.)
"""

import copy
import dataclasses
import pickle
import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.base import clone, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import parametrize_with_checks

import cymlp
from _parity import (
    assert_close,
    assert_fit_equal,
    assert_api_extends_sklearn,
    assert_predictions_equal,
    call_recording_warnings,
    make_data,
    raw_digits,
)

# ---------------------------------------------------------------------------
# scikit-learn's estimator checks
# ---------------------------------------------------------------------------
def never_stop(info):
    """A callback at module level, so that the estimator holding it pickles."""
    return False


# A few configurations of each kind, kept fast.  max_iter=100 is what
# sklearn's own test_common uses for MLPClassifier; the checks assert e.g.
# > 0.83 training accuracy on their toy data, which needs that many epochs
# for adam's default learning rate.
CHECKED_ESTIMATORS = [
    # the classifier: solvers and activations
    cymlp.MLPClassifier(max_iter=100),
    cymlp.MLPClassifier(solver="sgd", max_iter=100),
    cymlp.MLPClassifier(activation="tanh", hidden_layer_sizes=(10, 5), max_iter=100),
    cymlp.MLPClassifier(activation="logistic", learning_rate_init=0.01, max_iter=50),
    cymlp.MLPClassifier(solver="lbfgs", activation="logistic", max_iter=50),
    cymlp.MLPClassifier(solver="lbfgs", hidden_layer_sizes=(10, 5), max_iter=50),
    # the regressor. loss='poisson' is not among them: the checks' toy
    # targets are negative. sgd needs a larger step than the default to reach
    # the checks' R^2 > 0.5.
    cymlp.MLPRegressor(max_iter=100),
    cymlp.MLPRegressor(solver="sgd", learning_rate_init=0.01, max_iter=100),
    cymlp.MLPRegressor(solver="lbfgs", activation="tanh", max_iter=50),
    cymlp.MLPRegressor(activation="logistic", learning_rate_init=0.01, max_iter=100),
    # the options beyond scikit-learn's, at non-default values (lbfgs: no
    # partial_fit, which refuses class_weight="balanced")
    cymlp.MLPClassifier(activation="gelu", class_weight="balanced", solver="lbfgs",
                        max_iter=200),
    cymlp.MLPClassifier(activation="softplus", dropout=0.1, max_iter=100),
    cymlp.MLPClassifier(activation="leaky_relu", negative_slope=0.1,
                        callbacks=[never_stop], max_iter=100),
    cymlp.MLPRegressor(activation="silu", max_iter=200),
    cymlp.MLPRegressor(activation="elu", solver="lbfgs", max_iter=200),
    # the recipe of #23: the warm-up + cosine schedule, label smoothing
    cymlp.MLPClassifier(learning_rate="cosine", warmup_iters=5, min_learning_rate=1e-4,
                        label_smoothing=0.1, max_iter=100),
    cymlp.MLPClassifier(solver="sgd", learning_rate="cosine", warmup_iters=3,
                        max_iter=100),
    cymlp.MLPClassifier(solver="lbfgs", label_smoothing=0.2, max_iter=50),
    cymlp.MLPRegressor(solver="sgd", learning_rate="cosine", learning_rate_init=0.01,
                       warmup_iters=5, min_learning_rate=1e-4, max_iter=100),
    # per-layer activations (#23): one name per hidden layer
    cymlp.MLPClassifier(activation=["tanh", "relu"], hidden_layer_sizes=(10, 5),
                        max_iter=100),
    cymlp.MLPRegressor(activation=("logistic", "gelu"), hidden_layer_sizes=(10, 5),
                       solver="lbfgs", max_iter=200),
    # AdamW and gradient clipping (#23)
    cymlp.MLPClassifier(solver="adamw", weight_decay=0.1, max_grad_norm=1.0, max_iter=100),
    cymlp.MLPRegressor(solver="sgd", learning_rate_init=0.01, max_grad_norm=5.0,
                       max_iter=100),
]


def _expected_failed_checks(estimator):
    """The checks an estimator fails by design, with the reason."""
    if not getattr(estimator, "dropout", 0):
        return {}
    reason = ("dropout draws a mask per row: repeated rows get other masks than "
              "one weighted row, so the fits differ by design")
    return {check: reason for check in ("check_sample_weight_equivalence_on_dense_data",
                                        "check_sample_weight_equivalence_on_sparse_data")}


@parametrize_with_checks(CHECKED_ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        # Short runs on the checks' toy data do not converge; sklearn's own
        # estimator emits the same warning there.
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


# ---------------------------------------------------------------------------
# API surface compared with sklearn's class
# ---------------------------------------------------------------------------
def test_signature_matches_sklearn():
    # Code written against sklearn's class must call cymlp's as is: same
    # parameter names, order, kinds and defaults; extras only keyword-only.
    assert_api_extends_sklearn(SkMLPClassifier, cymlp.MLPClassifier)


def test_get_params_match_sklearn():
    # get_params() covers sklearn's parameters with equal values (cymlp may
    # report its own extra parameters too).
    def restricted(est):
        ref_keys = SkMLPClassifier().get_params().keys()
        return {k: v for k, v in est.get_params().items() if k in ref_keys}

    assert restricted(cymlp.MLPClassifier()) == SkMLPClassifier().get_params()
    params = dict(hidden_layer_sizes=(3, 2), solver="sgd", alpha=0.1,
                  batch_size=5, random_state=0, verbose=True)
    assert (restricted(cymlp.MLPClassifier(**params))
            == SkMLPClassifier(**params).get_params())


def test_repr_matches_sklearn():
    params = dict(hidden_layer_sizes=(3, 2), solver="sgd", alpha=0.1)
    assert repr(cymlp.MLPClassifier(**params)) == repr(SkMLPClassifier(**params))


def test_tags_match_sklearn():
    # e.g. input_tags.sparse=True, classifier_tags.multi_label=True. cymlp's
    # estimators are transformers too (transform, beyond scikit-learn): the
    # transformer tags are the one difference.
    tags = get_tags(cymlp.MLPClassifier())
    assert tags.transformer_tags.preserves_dtype == ["float64", "float32"]
    assert dataclasses.replace(tags, transformer_tags=None) == get_tags(SkMLPClassifier())
    assert is_classifier(cymlp.MLPClassifier())


def test_public_methods_match_sklearn():
    public = {name for name in dir(SkMLPClassifier()) if not name.startswith("_")}
    missing = public - set(dir(cymlp.MLPClassifier()))
    assert not missing, f"cymlp.MLPClassifier lacks {sorted(missing)}"


# ---------------------------------------------------------------------------
# Meta-estimators and model selection
# ---------------------------------------------------------------------------
def _quiet(func, *args, **kwargs):
    result, _ = call_recording_warnings(func, *args, **kwargs)
    return result


def test_pipeline(global_random_seed):
    # Raw (unscaled) pixel counts: the scaler inside the pipeline matters.
    X, y, X_test, y_test = raw_digits(global_random_seed, n_samples=100)
    params = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=global_random_seed)
    ref = make_pipeline(StandardScaler(), SkMLPClassifier(**params))
    est = make_pipeline(StandardScaler(), cymlp.MLPClassifier(**params))
    _quiet(ref.fit, X, y)
    _quiet(est.fit, X, y)
    assert_fit_equal(ref[-1], est[-1])
    assert_array_equal(est.predict(X_test), ref.predict(X_test))
    assert_close(est.predict_proba(X_test), ref.predict_proba(X_test))
    assert_close(est.score(X_test, y_test), ref.score(X_test, y_test))


def test_grid_search(global_random_seed):
    X, y, _, _ = make_data("multiclass", global_random_seed)
    base = dict(max_iter=5, learning_rate_init=0.01, random_state=global_random_seed)
    grid = {"alpha": [1e-4, 1.0], "hidden_layer_sizes": [(3,), (6,)]}
    cv = KFold(n_splits=3, shuffle=True, random_state=global_random_seed)
    ref = GridSearchCV(SkMLPClassifier(**base), grid, cv=cv)
    est = GridSearchCV(cymlp.MLPClassifier(**base), grid, cv=cv)
    _quiet(ref.fit, X, y)
    _quiet(est.fit, X, y)
    # Fold accuracies are ratios of integer counts: equal predictions give
    # exactly equal scores, so ranks and the chosen parameters agree.
    assert_array_equal(est.cv_results_["mean_test_score"],
                       ref.cv_results_["mean_test_score"])
    assert est.best_params_ == ref.best_params_
    assert isinstance(est.best_estimator_, cymlp.MLPClassifier)
    assert_fit_equal(ref.best_estimator_, est.best_estimator_)


def test_cross_val_score(global_random_seed):
    X, y, _, _ = make_data("binary", global_random_seed)
    params = dict(hidden_layer_sizes=(5,), max_iter=5, learning_rate_init=0.01,
                  random_state=global_random_seed)
    ref = _quiet(cross_val_score, SkMLPClassifier(**params), X, y, cv=4)
    est = _quiet(cross_val_score, cymlp.MLPClassifier(**params), X, y, cv=4)
    assert_array_equal(est, ref)


@pytest.mark.parametrize("scoring", ["neg_log_loss", "roc_auc_ovr"])
def test_cross_val_score_with_probabilities(global_random_seed, scoring):
    # Scorers that go through predict_proba.
    X, y, _, _ = make_data("multiclass", global_random_seed)
    params = dict(hidden_layer_sizes=(5,), max_iter=5, learning_rate_init=0.01,
                  random_state=global_random_seed)
    ref = _quiet(cross_val_score, SkMLPClassifier(**params), X, y, cv=3,
                 scoring=scoring)
    est = _quiet(cross_val_score, cymlp.MLPClassifier(**params), X, y, cv=3,
                 scoring=scoring)
    assert_close(est, ref)


def test_clone(global_random_seed):
    X, y, _, _ = make_data("multiclass", global_random_seed)
    est = cymlp.MLPClassifier(hidden_layer_sizes=(4,), max_iter=3,
                              random_state=global_random_seed)
    _quiet(est.fit, X, y)
    cloned = clone(est)
    assert type(cloned) is cymlp.MLPClassifier
    assert cloned.get_params() == est.get_params()
    assert not hasattr(cloned, "coefs_")
    # A clone fits to the same model (int random_state).
    _quiet(cloned.fit, X, y)
    for a, b in zip(cloned.coefs_ + cloned.intercepts_, est.coefs_ + est.intercepts_):
        assert_array_equal(a, b)


def test_set_params():
    est = cymlp.MLPClassifier().set_params(solver="sgd", hidden_layer_sizes=(2,))
    assert est.solver == "sgd" and est.hidden_layer_sizes == (2,)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_pickle_round_trip(global_random_seed, solver, dtype):
    X, y, X_test, y_test = make_data("multiclass", global_random_seed)
    X, X_test = X.astype(dtype), X_test.astype(dtype)
    params = dict(hidden_layer_sizes=(5, 3), solver=solver, max_iter=4,
                  random_state=global_random_seed)
    est = cymlp.MLPClassifier(**params)
    _quiet(est.fit, X, y)
    restored = pickle.loads(pickle.dumps(est))
    assert type(restored) is cymlp.MLPClassifier
    assert restored.get_params() == est.get_params()
    for a, b in zip(restored.coefs_ + restored.intercepts_,
                    est.coefs_ + est.intercepts_):
        assert a.dtype == b.dtype
        assert_array_equal(a, b)
    assert_array_equal(restored.predict(X_test), est.predict(X_test))
    assert_array_equal(restored.predict_proba(X_test), est.predict_proba(X_test))
    assert restored.loss_curve_ == est.loss_curve_
    assert restored.n_iter_ == est.n_iter_ and restored.t_ == est.t_

    # ... and both still agree with sklearn.
    ref = SkMLPClassifier(**params)
    _quiet(ref.fit, X, y)
    assert_fit_equal(ref, restored)
    assert_predictions_equal(ref, restored, X_test, y_test)

    # A plain refit of the unpickled estimator starts afresh, like sklearn.
    _quiet(restored.fit, X, y)
    assert_fit_equal(ref, restored)


def test_pickle_unfitted():
    est = cymlp.MLPClassifier(hidden_layer_sizes=(3,))
    restored = pickle.loads(pickle.dumps(est))
    assert restored.get_params() == est.get_params()


def test_deepcopy(global_random_seed):
    X, y, X_test, _ = make_data("binary", global_random_seed)
    est = cymlp.MLPClassifier(hidden_layer_sizes=(4,), max_iter=3,
                              random_state=global_random_seed)
    _quiet(est.fit, X, y)
    copied = copy.deepcopy(est)
    proba = est.predict_proba(X_test)
    # The copy owns its weights: changing them leaves the original alone.
    for c in copied.coefs_:
        c[...] = 0.0
    assert_array_equal(est.predict_proba(X_test), proba)
    assert not np.allclose(copied.predict_proba(X_test), proba)
