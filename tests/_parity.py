"""Helpers shared by the test modules: fit scikit-learn's estimator and cymlp's
side by side, and compare everything a user can observe.

The reference is always scikit-learn's own implementation, run in the same
process on the same data with the same parameters; nothing here compares cymlp
against numbers cymlp produced earlier.
"""

import re
import warnings

import numpy as np
import sklearn.neural_network as sk_nn
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import (
    load_digits,
    load_iris,
    make_classification,
    make_multilabel_classification,
    make_regression,
)
from sklearn.preprocessing import StandardScaler

import cymlp

# ---------------------------------------------------------------------------
# Tolerances
# ---------------------------------------------------------------------------
# The two implementations do the same arithmetic in a different order
# (different BLAS kernels, fused loops, another summation order), so results
# agree to a few ulps per operation, amplified by the training dynamics over
# the few epochs the tests run.  rtol is therefore a small multiple of the
# precision: 1e-7 for float64 (eps 2.2e-16, leaving ~9 decimal digits for
# amplification) and 1e-4 for float32 (eps 1.2e-7, ~3 digits).
#
# rtol alone is meaningless for values near zero: a weight that crosses zero
# during training, or a bias that ends at 1e-9, carries the absolute rounding
# error of the much larger terms that were summed into it, so its *relative*
# error can be arbitrarily large.  The atol below absorbs exactly that, and is
# scaled by the magnitude of the array being compared (``max|ref|``, at least
# 1) so that it stays a relative statement about the array as a whole.
RTOL = {np.dtype(np.float64): 1e-7, np.dtype(np.float32): 1e-4}
ATOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-5}


def tolerances(dtype):
    """Return ``(rtol, atol)`` for arrays computed in ``dtype``."""
    dtype = np.dtype(dtype)
    if dtype not in RTOL:
        dtype = np.dtype(np.float64)
    return RTOL[dtype], ATOL[dtype]


def assert_close(actual, desired, dtype=np.float64, err_msg=""):
    """assert_allclose with the dtype's rtol and an atol scaled to ``desired``."""
    desired = np.asarray(desired, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    rtol, atol = tolerances(dtype)
    finite = desired[np.isfinite(desired)]
    scale = max(1.0, float(np.max(np.abs(finite)))) if finite.size else 1.0
    assert_allclose(actual, desired, rtol=rtol, atol=atol * scale, err_msg=err_msg)


# ---------------------------------------------------------------------------
# Fitting both implementations
# ---------------------------------------------------------------------------
def estimator_pair(name="MLPClassifier"):
    """Return ``(sklearn_class, cymlp_class)`` for the estimator ``name``.

    The cymlp class is looked up lazily so that modules testing only the
    classifier do not need ``cymlp.MLPRegressor`` to exist.
    """
    return getattr(sk_nn, name), getattr(cymlp, name)


def relevant_warnings(records):
    """(category, message) of the warnings a user of the estimator would see.

    RuntimeWarnings are numpy's floating-point complaints (overflow in exp,
    ...); they come from how sklearn happens to compute things in numpy and are
    not part of the estimator's contract, so they are left out.  Everything
    else sklearn emits on purpose (ConvergenceWarning, DataConversionWarning,
    the batch_size clipping UserWarning, feature-name warnings) derives from
    UserWarning or FutureWarning.
    """
    return [
        (r.category, str(r.message))
        for r in records
        if issubclass(r.category, (UserWarning, FutureWarning))
    ]


def call_recording_warnings(func, *args, **kwargs):
    """Call ``func`` and return ``(result, warnings)`` (see relevant_warnings)."""
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        result = func(*args, **kwargs)
    return result, relevant_warnings(records)


def fit_both(
    params,
    X,
    y,
    name="MLPClassifier",
    check_warnings=True,
    **fit_params,
):
    """Fit sklearn's and cymlp's estimator with identical parameters.

    Each estimator gets its own copy of X and y (and of any RandomState
    instance in ``params``) so that neither can influence the other.  The
    warnings emitted during both fits must be identical, in category, message
    and order, unless ``check_warnings`` is False.

    Returns ``(ref, est, ref_warnings)``.
    """
    sk_cls, cy_cls = estimator_pair(name)
    fitted = []
    all_warnings = []
    for cls in (sk_cls, cy_cls):
        local_params = {
            k: _copy_random_state(v) if k == "random_state" else v
            for k, v in params.items()
        }
        est = cls(**local_params)
        local_fit = {k: _copy_arg(v) for k, v in fit_params.items()}
        _, w = call_recording_warnings(est.fit, _copy_arg(X), _copy_arg(y), **local_fit)
        fitted.append(est)
        all_warnings.append(w)
    if check_warnings:
        assert all_warnings[1] == all_warnings[0], (
            f"warnings differ:\n sklearn: {all_warnings[0]}\n cymlp:   {all_warnings[1]}"
        )
    return fitted[0], fitted[1], all_warnings[0]


def _copy_random_state(rs):
    if isinstance(rs, np.random.RandomState):
        new = np.random.RandomState()
        new.set_state(rs.get_state())
        return new
    return rs


def _copy_arg(a):
    if isinstance(a, np.ndarray):
        return a.copy()
    if hasattr(a, "copy") and not isinstance(a, (list, tuple)):
        return a.copy()
    return a


# ---------------------------------------------------------------------------
# Comparing fitted estimators
# ---------------------------------------------------------------------------
EXACT_ATTRIBUTES = (
    "n_iter_",
    "t_",
    "n_layers_",
    "n_outputs_",
    "out_activation_",
    "n_features_in_",
)


def assert_fit_equal(ref, est, dtype=None):
    """Assert that cymlp's fitted ``est`` matches sklearn's fitted ``ref``.

    ``dtype`` selects the tolerance; by default the dtype of ref's weights.
    """
    if dtype is None:
        dtype = ref.coefs_[0].dtype

    for attr in EXACT_ATTRIBUTES:
        assert hasattr(est, attr) == hasattr(ref, attr), attr
        if hasattr(ref, attr):
            assert getattr(est, attr) == getattr(ref, attr), (
                f"{attr}: cymlp {getattr(est, attr)!r} != sklearn {getattr(ref, attr)!r}"
            )

    if hasattr(ref, "classes_"):
        assert_array_equal(est.classes_, ref.classes_)
        assert np.asarray(est.classes_).dtype == np.asarray(ref.classes_).dtype

    assert hasattr(est, "feature_names_in_") == hasattr(ref, "feature_names_in_")
    if hasattr(ref, "feature_names_in_"):
        assert_array_equal(est.feature_names_in_, ref.feature_names_in_)

    for attr in ("coefs_", "intercepts_"):
        ref_list, est_list = getattr(ref, attr), getattr(est, attr)
        assert len(est_list) == len(ref_list), attr
        for i, (r, e) in enumerate(zip(ref_list, est_list)):
            assert e.shape == r.shape, f"{attr}[{i}] shape {e.shape} != {r.shape}"
            assert e.dtype == r.dtype, f"{attr}[{i}] dtype {e.dtype} != {r.dtype}"
            assert_close(e, r, dtype, err_msg=f"{attr}[{i}]")

    # Attributes that exist only for the stochastic solvers (lbfgs sets none
    # of them, and sklearn leaves them undefined rather than None).
    for attr in ("loss_curve_", "best_loss_", "validation_scores_",
                 "best_validation_score_"):
        assert hasattr(est, attr) == hasattr(ref, attr), attr

    if hasattr(ref, "loss_curve_"):
        assert len(est.loss_curve_) == len(ref.loss_curve_)
        assert_close(est.loss_curve_, ref.loss_curve_, dtype, err_msg="loss_curve_")

    assert_close(est.loss_, ref.loss_, dtype, err_msg="loss_")

    for attr in ("best_loss_", "best_validation_score_"):
        if hasattr(ref, attr):
            r, e = getattr(ref, attr), getattr(est, attr)
            if r is None:
                assert e is None, f"{attr}: expected None, got {e!r}"
            else:
                assert_close(e, r, dtype, err_msg=attr)

    if hasattr(ref, "validation_scores_"):
        if ref.validation_scores_ is None:
            assert est.validation_scores_ is None
        else:
            assert len(est.validation_scores_) == len(ref.validation_scores_)
            assert_close(est.validation_scores_, ref.validation_scores_, dtype,
                         err_msg="validation_scores_")


def assert_predictions_equal(ref, est, X, y=None, dtype=None):
    """predict / predict_proba / predict_log_proba / score agree on X."""
    if dtype is None:
        dtype = ref.coefs_[0].dtype

    ref_pred, est_pred = ref.predict(X), est.predict(X)
    assert est_pred.dtype == ref_pred.dtype
    assert est_pred.shape == ref_pred.shape
    if np.issubdtype(ref_pred.dtype, np.floating):  # regressor
        assert_close(est_pred, ref_pred, dtype, err_msg="predict")
    else:
        # Class decisions are argmax / thresholds of probabilities that agree
        # to ~1e-12; a flip would need a near-exact tie.
        assert_array_equal(est_pred, ref_pred)

    if hasattr(ref, "predict_proba"):
        ref_proba, est_proba = ref.predict_proba(X), est.predict_proba(X)
        assert est_proba.dtype == ref_proba.dtype
        assert est_proba.shape == ref_proba.shape
        assert_close(est_proba, ref_proba, dtype, err_msg="predict_proba")

        with np.errstate(divide="ignore"):
            ref_log, est_log = ref.predict_log_proba(X), est.predict_log_proba(X)
        assert est_log.dtype == ref_log.dtype
        assert_close(est_log, ref_log, dtype, err_msg="predict_log_proba")

    if y is not None:
        assert_close(est.score(X, y), ref.score(X, y), dtype, err_msg="score")



def check_parity(params, data, name="MLPClassifier"):
    """Fit both estimators on a training set; compare the fits and the predictions.

    Parameters
    ----------
    params : dict
        The estimators' parameters.
    data : tuple
        ``(X, y, X_test, y_test)``, as :func:`make_data` and
        :func:`make_regression_data` return them: fit on ``X, y``, predict and
        score on ``X_test, y_test``.
    name : {"MLPClassifier", "MLPRegressor"}
        Which estimator.

    Returns
    -------
    tuple
        ``(ref, est, ref_warnings)``, as :func:`fit_both` returns them.
    """
    X, y, X_test, y_test = data
    ref, est, ref_warnings = fit_both(params, X, y, name=name)
    assert_fit_equal(ref, est)
    assert_predictions_equal(ref, est, X_test, y_test)
    return ref, est, ref_warnings

# ---------------------------------------------------------------------------
# Small data sets (all standardized, all cheap)
# ---------------------------------------------------------------------------
def _standardize(X):
    return StandardScaler().fit_transform(X)


def make_data(kind, seed, n_samples=60, n_features=6):
    """Return ``(X_train, y_train, X_test, y_test)`` for a target ``kind``.

    kind: "binary", "multiclass", "multilabel", "strings", "iris", "digits".
    The data depend on the seed, so a run with another seed also sees other
    data.
    """
    n_test = 20
    if kind in ("binary", "multiclass", "strings"):
        n_classes = 2 if kind == "binary" else 3
        X, y = make_classification(
            n_samples=n_samples + n_test,
            n_features=n_features,
            n_informative=min(4, n_features),
            n_redundant=0,
            n_classes=n_classes,
            n_clusters_per_class=1,
            random_state=seed,
        )
        if kind == "strings":
            y = np.array(["ant", "bee", "cat"])[y]
    elif kind == "multilabel":
        X, y = make_multilabel_classification(
            n_samples=n_samples + n_test,
            n_features=n_features,
            n_classes=3,
            random_state=seed,
        )
    elif kind == "iris":
        X, y = load_iris(return_X_y=True)
        rng = np.random.RandomState(seed)
        idx = rng.permutation(len(y))
        X, y = X[idx], y[idx]
        n_samples = len(y) - n_test
    elif kind == "digits":
        X, y = load_digits(return_X_y=True)
        rng = np.random.RandomState(seed)
        idx = rng.permutation(len(y))[: n_samples + n_test]
        X, y = X[idx], y[idx]
    else:
        raise ValueError(kind)
    X = _standardize(X)
    return X[:n_samples], y[:n_samples], X[n_samples:], y[n_samples:]


def make_regression_data(seed, n_samples=60, n_features=5, n_targets=1,
                         poisson=False):
    """Standardized regression data; positive counts-like targets if poisson."""
    n_test = 20
    X, y = make_regression(
        n_samples=n_samples + n_test,
        n_features=n_features,
        n_informative=min(3, n_features),
        n_targets=n_targets,
        noise=1.0,
        random_state=seed,
    )
    X = _standardize(X)
    y = (y - y.mean(axis=0)) / y.std(axis=0)
    if poisson:
        # Positive targets whose log is roughly linear in X, like counts.
        rng = np.random.RandomState(seed)
        y = rng.poisson(np.exp(0.5 * y)).astype(np.float64)
    return X[:n_samples], y[:n_samples], X[n_samples:], y[n_samples:]


def raw_digits(seed, n_samples=80):
    """Unscaled digits (integer pixel counts 0..16, stored as float64)."""
    n_test = 20
    X, y = load_digits(return_X_y=True)
    idx = np.random.RandomState(seed).permutation(len(y))[: n_samples + n_test]
    X, y = X[idx], y[idx]
    return X[:n_samples], y[:n_samples], X[n_samples:], y[n_samples:]


def normalize_message(msg):
    """Sort the items of every ``{...}`` in a message.

    sklearn's parameter validation prints the allowed options of a StrOptions
    constraint by iterating over a Python set ("a str among {'constant',
    'adaptive', 'invscaling'}"), so their order depends on string hashing and
    differs between processes (PYTHONHASHSEED) and even between two equal
    sets built differently.  The order carries no information.
    """
    def sort_items(match):
        items = [item.strip() for item in match.group(1).split(",")]
        return "{" + ", ".join(sorted(items)) + "}"

    return re.sub(r"\{([^{}]*)\}", sort_items, msg)


_BRACES = re.compile(r"\{([^{}]*)\}")


def messages_equivalent(est_msg, ref_msg):
    """Whether cymlp's error message says what sklearn's says.

    Equal up to the order of the options inside ``{...}`` (see
    normalize_message), except that cymlp may list *more* options there:
    cymlp extends some parameters (e.g. extra activations), and sklearn's
    parameter validation then enumerates the larger set.  Everything outside
    the braces must be identical.
    """
    if _BRACES.sub("{}", est_msg) != _BRACES.sub("{}", ref_msg):
        return False
    est_sets, ref_sets = _BRACES.findall(est_msg), _BRACES.findall(ref_msg)
    return len(est_sets) == len(ref_sets) and all(
        {i.strip() for i in r.split(",")} <= {i.strip() for i in e.split(",")}
        for e, r in zip(est_sets, ref_sets)
    )


def assert_api_extends_sklearn(sk_cls, cy_cls):
    """cymlp's constructor is sklearn's plus optional keyword-only extras.

    sklearn's parameters come first, in sklearn's order, with the same kind
    (positional-or-keyword vs keyword-only) and default, so that any call
    written for sklearn's class means the same for cymlp's.  Parameters that
    cymlp adds on top must be keyword-only with a default (a positional extra
    would shift nothing today but could never be reordered; a required one
    would break sklearn-style calls).  Their defaults must keep sklearn's
    behaviour -- that is what every parity test checks, since they never set
    them.
    """
    import inspect

    ref = list(inspect.signature(sk_cls.__init__).parameters.values())
    est = list(inspect.signature(cy_cls.__init__).parameters.values())
    assert [p.name for p in est[: len(ref)]] == [p.name for p in ref]
    for r, e in zip(ref, est):
        assert e.kind == r.kind, r.name
        assert e.default == r.default, r.name
    for e in est[len(ref):]:
        assert e.kind == inspect.Parameter.KEYWORD_ONLY, e.name
        assert e.default is not inspect.Parameter.empty, e.name
