"""What cymlp offers beyond scikit-learn: each option is off by default (the
parity tests cover the defaults), and each is checked here against a
reference: finite differences, sklearn's metrics, or an equivalent fit."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import log_loss, recall_score
from sklearn.model_selection import train_test_split
from sklearn.utils.class_weight import compute_class_weight

import cymlp
from cymlp._engine import Network, Trainer

NEW_ACTIVATIONS = ["leaky_relu", "elu", "gelu", "silu", "softplus"]
OUTPUTS = [
    ("softmax", "log_loss", 3),
    ("logistic", "binary_log_loss", 2),
    # one output: scikit-learn averages the squared loss over the outputs but
    # not its gradient (delta = y_pred - y), a quirk kept for parity, so the
    # gradient is the derivative of the loss only for a single output
    ("identity", "squared_error", 1),
    ("exp", "poisson", 2),
]


def _quiet(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return func(*args, **kwargs)


def _targets(out, n, n_out, rng):
    if out == "softmax":
        return np.eye(n_out)[rng.randint(0, n_out, n)]
    if out == "logistic":
        return rng.randint(0, 2, (n, n_out)).astype(float)
    if out == "exp":
        return rng.poisson(1.5, (n, n_out)).astype(float)
    return rng.randn(n, n_out)


# ---------------------------------------------------------------------------
# More activations: the compiled gradient against central finite differences
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("activation", NEW_ACTIVATIONS)
@pytest.mark.parametrize("out, loss, n_out", OUTPUTS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_new_activation_gradients(activation, out, loss, n_out, dtype, global_random_seed):
    rng = np.random.RandomState(global_random_seed)
    n = 9
    X = rng.randn(n, 4)
    Y = _targets(out, n, n_out, rng)
    sw = rng.uniform(0.5, 2.0, n)
    net = Network([4, 6, 5, n_out], activation, out, loss, negative_slope=0.2)
    params = rng.uniform(-0.5, 0.5, net.n_params)
    alpha = 0.05

    def loss_at(p, dt, grad=None):
        loss, g = Trainer(net, dt, n).loss_grad(X.astype(dt), Y.astype(dt), sw.astype(dt),
                                                p.astype(dt), alpha, with_grad=grad is not None)
        if grad is not None:
            grad[...] = g
        return loss

    grad = np.empty(net.n_params, dtype=dtype)
    loss_at(params, dtype, grad)

    # the finite differences in float64: the reference for both precisions
    h = 1e-6
    fd = np.empty_like(params)
    for i in range(params.size):
        e = np.zeros_like(params)
        e[i] = h
        fd[i] = (loss_at(params + e, np.float64) - loss_at(params - e, np.float64)) / (2 * h)
    tol = dict(rtol=1e-5, atol=1e-7) if dtype == np.float64 else dict(rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(grad, fd, **tol)


@pytest.mark.parametrize("activation", NEW_ACTIVATIONS)
def test_new_activation_forward_matches_numpy(activation, global_random_seed):
    rng = np.random.RandomState(global_random_seed)
    z = rng.randn(20, 7) * 4
    b = rng.randn(7)
    v = z + b
    from scipy.special import erf, expit

    reference = {
        "leaky_relu": np.where(v > 0, v, 0.2 * v),
        "elu": np.where(v > 0, v, np.expm1(np.minimum(v, 0))),
        "gelu": 0.5 * v * (1 + erf(v / np.sqrt(2))),
        "silu": v * expit(v),
        "softplus": np.logaddexp(0, v),
    }[activation]
    from cymlp._engine._testing import _kernel_activation

    _kernel_activation(activation, z, b, negative_slope=0.2)
    np.testing.assert_allclose(z, reference, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("activation", NEW_ACTIVATIONS)
def test_new_activations_learn(activation, global_random_seed):
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X / 16, y, random_state=global_random_seed
    )
    clf = _quiet(
        cymlp.MLPClassifier(activation=activation, max_iter=40,
                            random_state=global_random_seed).fit,
        X_train, y_train,
    )
    assert clf.score(X_test, y_test) > 0.85


def test_leaky_relu_with_zero_slope_is_relu(global_random_seed):
    X, y = make_classification(200, random_state=global_random_seed)
    a = _quiet(cymlp.MLPClassifier(activation="relu", max_iter=5,
                                   random_state=global_random_seed).fit, X, y)
    b = _quiet(cymlp.MLPClassifier(activation="leaky_relu", negative_slope=0.0, max_iter=5,
                                   random_state=global_random_seed).fit, X, y)
    for ca, cb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(ca, cb, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------
# class_weight
# ---------------------------------------------------------------------------
def _imbalanced(seed):
    return make_classification(600, n_features=8, weights=[0.9, 0.1], flip_y=0,
                               class_sep=0.7, random_state=seed)


def test_class_weight_balanced_raises_minority_recall(global_random_seed):
    X, y = _imbalanced(global_random_seed)
    params = dict(max_iter=30, random_state=global_random_seed)
    plain = _quiet(cymlp.MLPClassifier(**params).fit, X, y)
    balanced = _quiet(cymlp.MLPClassifier(class_weight="balanced", **params).fit, X, y)
    assert recall_score(y, balanced.predict(X)) > recall_score(y, plain.predict(X))


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
@pytest.mark.parametrize("class_weight", ["balanced", {0: 0.3, 1: 2.5}])
def test_class_weight_equals_sample_weight(solver, class_weight, global_random_seed):
    X, y = _imbalanced(global_random_seed)
    sw = np.random.RandomState(global_random_seed).uniform(0.5, 1.5, len(y))
    params = dict(solver=solver, max_iter=8, random_state=global_random_seed)
    with_cw = _quiet(cymlp.MLPClassifier(class_weight=class_weight, **params).fit,
                     X, y, sample_weight=sw)
    # 'balanced' counts every sample by its weight
    per_class = compute_class_weight(class_weight, classes=np.array([0, 1]), y=y,
                                     sample_weight=sw)
    expected = sw * per_class[y]
    with_sw = _quiet(cymlp.MLPClassifier(**params).fit, X, y, sample_weight=expected)
    for a, b in zip(with_cw.coefs_ + with_cw.intercepts_, with_sw.coefs_ + with_sw.intercepts_):
        np.testing.assert_array_equal(a, b)


def test_class_weight_partial_fit():
    X, y = _imbalanced(0)
    with pytest.raises(ValueError, match="balanced"):
        cymlp.MLPClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1])
    # a dict works incrementally, the same as the matching sample weights
    a = cymlp.MLPClassifier(class_weight={0: 1.0, 1: 4.0}, random_state=0)
    b = cymlp.MLPClassifier(random_state=0)
    a.partial_fit(X, y, classes=[0, 1])
    b.partial_fit(X, y, classes=[0, 1], sample_weight=np.where(y == 1, 4.0, 1.0))
    np.testing.assert_array_equal(a.coefs_[0], b.coefs_[0])


def test_class_weight_multilabel_is_per_label(global_random_seed):
    rng = np.random.RandomState(global_random_seed)
    X = rng.randn(60, 3)
    Y = (rng.rand(60, 2) < [0.2, 0.6]).astype(int)
    params = dict(max_iter=5, random_state=global_random_seed)
    a = _quiet(cymlp.MLPClassifier(class_weight="balanced", **params).fit, X, Y)
    from sklearn.utils.class_weight import compute_sample_weight

    b = _quiet(cymlp.MLPClassifier(**params).fit, X, Y,
               sample_weight=compute_sample_weight("balanced", Y))
    np.testing.assert_array_equal(a.coefs_[0], b.coefs_[0])


# ---------------------------------------------------------------------------
# dropout
# ---------------------------------------------------------------------------
def test_dropout_is_reproducible_and_seeded(global_random_seed):
    X, y = make_classification(200, random_state=global_random_seed)
    fit = lambda seed: _quiet(cymlp.MLPClassifier(dropout=0.3, max_iter=5,
                                                  random_state=seed).fit, X, y)
    a, b, c = fit(global_random_seed), fit(global_random_seed), fit(global_random_seed + 1)
    np.testing.assert_array_equal(a.coefs_[0], b.coefs_[0])
    assert not np.array_equal(a.coefs_[1], c.coefs_[1])


def test_dropout_changes_training_not_prediction(global_random_seed):
    X, y = make_classification(200, random_state=global_random_seed)
    plain = _quiet(cymlp.MLPClassifier(max_iter=5, random_state=global_random_seed).fit, X, y)
    dropped = _quiet(cymlp.MLPClassifier(dropout=[0.5], max_iter=5,
                                         random_state=global_random_seed).fit, X, y)
    assert not np.allclose(plain.coefs_[0], dropped.coefs_[0])
    # prediction is deterministic (no dropout there)
    np.testing.assert_array_equal(dropped.predict_proba(X), dropped.predict_proba(X))


def test_dropout_regularises(global_random_seed):
    # a wide net on few noisy samples overfits; dropout narrows the gap
    # between training and test accuracy (averaged over three splits).
    gaps = {0.0: [], 0.5: []}
    for k in range(3):
        seed = global_random_seed * 3 + k
        X, y = make_classification(300, n_features=20, n_informative=5, flip_y=0.2,
                                   random_state=seed)
        X_tr, X_te, y_tr, y_te = train_test_split(X, y, train_size=100, random_state=seed)
        for rate in gaps:
            clf = _quiet(cymlp.MLPClassifier(hidden_layer_sizes=(256,), dropout=rate,
                                             max_iter=300, random_state=seed).fit,
                         X_tr, y_tr)
            gaps[rate].append(clf.score(X_tr, y_tr) - clf.score(X_te, y_te))
    assert np.mean(gaps[0.5]) < np.mean(gaps[0.0])


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(dropout=[0.1, 0.2]), "one rate per hidden layer"),
        (dict(dropout=[1.5]), r"\[0, 1\)"),
        (dict(dropout=0.2, solver="lbfgs"), "stochastic solver"),
    ],
)
def test_dropout_errors(params, match):
    X, y = make_classification(50, random_state=0)
    with pytest.raises(ValueError, match=match):
        cymlp.MLPClassifier(**params).fit(X, y)


# ---------------------------------------------------------------------------
# Validation: a user's set, and the validation loss curve
# ---------------------------------------------------------------------------
def test_user_validation_set_drives_early_stopping(global_random_seed):
    X, y = load_digits(return_X_y=True)
    X_tr, X_val, y_tr, y_val = train_test_split(X / 16, y, random_state=global_random_seed)
    clf = _quiet(cymlp.MLPClassifier(early_stopping=True, max_iter=40,
                                     random_state=global_random_seed).fit,
                 X_tr, y_tr, X_val=X_val, y_val=y_val)
    # all of X trained (no split), and the kept weights are the best on X_val
    assert clf.t_ == clf.n_iter_ * len(X_tr)
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.score(X_val, y_val) == pytest.approx(clf.best_validation_score_)


def test_validation_loss_curve_is_the_validation_log_loss(global_random_seed):
    X, y = load_digits(return_X_y=True)
    X_tr, X_val, y_tr, y_val = train_test_split(X / 16, y, random_state=global_random_seed)
    alpha = 1e-3
    clf = _quiet(cymlp.MLPClassifier(early_stopping=True, max_iter=15, alpha=alpha,
                                     n_iter_no_change=100,
                                     random_state=global_random_seed).fit,
                 X_tr, y_tr, X_val=X_val, y_val=y_val)
    assert len(clf.validation_loss_curve_) == clf.n_iter_
    best = int(np.argmax(clf.validation_scores_))
    penalty = 0.5 * alpha * sum((c ** 2).sum() for c in clf.coefs_) / len(y_val)
    expected = log_loss(y_val, clf.predict_proba(X_val), labels=clf.classes_) + penalty
    assert clf.validation_loss_curve_[best] == pytest.approx(expected, rel=1e-9)


def test_validation_loss_curve_regressor(global_random_seed):
    X, y = make_regression(300, 5, noise=5, random_state=global_random_seed)
    y = y / y.std()
    reg = _quiet(cymlp.MLPRegressor(early_stopping=True, max_iter=10, alpha=0.0,
                                    n_iter_no_change=100,
                                    random_state=global_random_seed).fit, X, y)
    assert len(reg.validation_loss_curve_) == reg.n_iter_ == len(reg.validation_scores_)
    assert np.all(np.isfinite(reg.validation_loss_curve_))
    # without early stopping there is no validation curve
    plain = _quiet(cymlp.MLPRegressor(max_iter=3).fit, X, y)
    assert plain.validation_loss_curve_ is None


def test_user_validation_set_errors():
    X, y = make_classification(60, random_state=0)
    with pytest.raises(ValueError, match="early_stopping=True"):
        cymlp.MLPClassifier().fit(X, y, X_val=X, y_val=y)
    with pytest.raises(ValueError, match="together"):
        cymlp.MLPClassifier(early_stopping=True).fit(X, y, X_val=X)
    with pytest.raises(ValueError, match="classes not seen"):
        cymlp.MLPClassifier(early_stopping=True).fit(X, y, X_val=X[:5], y_val=[0, 1, 2, 0, 1])
    with pytest.raises(ValueError, match="features"):
        cymlp.MLPClassifier(early_stopping=True).fit(X, y, X_val=X[:, :3], y_val=y)


def test_verbose_two_prints_validation_loss(capsys):
    X, y = make_classification(100, random_state=0)
    _quiet(cymlp.MLPClassifier(early_stopping=True, max_iter=2, verbose=2).fit, X, y)
    assert "Validation loss: " in capsys.readouterr().out
    _quiet(cymlp.MLPClassifier(early_stopping=True, max_iter=2, verbose=1).fit, X, y)
    assert "Validation loss" not in capsys.readouterr().out  # verbose=1: sklearn's lines


# ---------------------------------------------------------------------------
# Callbacks
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_callback_sees_every_epoch_and_can_stop(solver):
    X, y = make_classification(100, random_state=0)
    seen = []

    def callback(info):
        seen.append(dict(info))
        return info["epoch"] >= 4

    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # a stop is not a failure
        clf = cymlp.MLPClassifier(solver=solver, max_iter=50, callbacks=[callback],
                                  random_state=0).fit(X, y)
    assert clf.n_iter_ == 4
    assert [s["epoch"] for s in seen] == [1, 2, 3, 4]
    assert all(s["estimator"] is clf for s in seen)
    if solver != "lbfgs":
        assert [s["loss"] for s in seen] == clf.loss_curve_


def test_progress_bar_without_tqdm(monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def no_tqdm(name, *args, **kwargs):
        if name.startswith("tqdm"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tqdm)
    X, y = make_classification(50, random_state=0)
    _quiet(cymlp.MLPClassifier(max_iter=3, callbacks=cymlp.ProgressBar()).fit, X, y)
    assert "epoch 3/3" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# TrainingCurveDisplay
# ---------------------------------------------------------------------------
def test_training_curve_display():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    X, y = make_classification(200, random_state=0)
    clf = _quiet(cymlp.MLPClassifier(early_stopping=True, max_iter=5, random_state=0).fit,
                 X, y)
    display = cymlp.TrainingCurveDisplay.from_estimator(clf)
    np.testing.assert_array_equal(display.lines_["loss"].get_ydata(), clf.loss_curve_)
    np.testing.assert_array_equal(display.lines_["validation_loss"].get_ydata(),
                                  clf.validation_loss_curve_)
    np.testing.assert_array_equal(display.lines_["validation_score"].get_ydata(),
                                  clf.validation_scores_)
    assert display.score_ax_ is not None
    with pytest.raises(ValueError, match="lbfgs"):
        cymlp.TrainingCurveDisplay.from_estimator(
            _quiet(cymlp.MLPClassifier(solver="lbfgs", max_iter=5).fit, X, y))


def test_validation_set_through_a_pipeline(global_random_seed):
    # the documented way: the pipeline transforms X_val like X
    import sklearn
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    X_tr, X_val, y_tr, y_val = train_test_split(X, y, random_state=global_random_seed)
    with sklearn.config_context(enable_metadata_routing=True):
        mlp = cymlp.MLPClassifier(early_stopping=True, max_iter=15,
                                  random_state=global_random_seed)
        mlp.set_fit_request(X_val=True, y_val=True)
        pipe = Pipeline([("scale", StandardScaler()), ("mlp", mlp)],
                        transform_input=["X_val"])
        _quiet(pipe.fit, X_tr, y_tr, X_val=X_val, y_val=y_val)
    # the validation score was computed on the scaled X_val
    assert pipe.score(X_val, y_val) == pytest.approx(mlp.best_validation_score_)
