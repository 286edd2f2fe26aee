"""The training recipe beyond scikit-learn (#23): the warm-up + cosine
learning-rate schedule (``learning_rate='cosine'``, ``warmup_iters``,
``min_learning_rate``) and the classifier's ``label_smoothing``.

Each is checked against an independent reference: a numpy formula, and
PyTorch (``torch.optim.lr_scheduler``, ``torch.nn.CrossEntropyLoss`` /
``BCELoss``) where it is installed. The defaults' bits are the parity tests'
and tests/test_bitwise_fixture.py's; thread invariance is tests/test_threads.py's
and check_estimator tests/test_estimator_checks.py's (both list these options).
"""

import pickle
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.datasets import load_digits, make_classification, make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import InvalidParameterError

import cymlp
from cymlp._engine import Network, Trainer
from cymlp._optimizers import cosine_rate, new_optimizer


def _quiet(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return func(*args, **kwargs)


def _weights(est):
    return est.coefs_ + est.intercepts_


def _assert_same_weights(a, b):
    for x, y in zip(_weights(a), _weights(b), strict=True):
        assert_array_equal(x, y, strict=True)


def _digits(n=300):
    X, y = load_digits(return_X_y=True)
    return X[:n] / 16, y[:n]


# ---------------------------------------------------------------------------
# The schedule: its rates
# ---------------------------------------------------------------------------
SCHEDULES = [
    # learning_rate_init, warmup_iters, max_iter, min_learning_rate
    (0.1, 3, 10, 1e-3),
    (1e-3, 0, 7, 0.0),
    (0.01, 5, 6, 1e-4),
    (0.5, 2, 50, 0.01),
    (0.02, 1, 2, 0.0),
    (0.3, 0, 1, 0.1),
]


def _numpy_rates(lr0, W, T, floor, n_epochs):
    """The schedule's definition, vectorised: the rate of epochs 0 .. n_epochs - 1."""
    e = np.arange(n_epochs, dtype=np.float64)
    warm = lr0 * (e + 1) / (W + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = floor + (lr0 - floor) * 0.5 * (1 + np.cos(np.pi * (e - W) / (T - W)))
    return np.where(e < W, warm, np.where(e < T, cos, floor))


def _optimizer_rates(solver, n_epochs, **params):
    """The rates an optimizer made by an estimator steps with, epoch by epoch."""
    est = cymlp.MLPClassifier(solver=solver, learning_rate="cosine", **params)
    opt = new_optimizer(est, 4, np.float64)
    rates = []
    for epoch in range(n_epochs):
        rates.append(opt.learning_rate)
        opt.iteration_ends((epoch + 1) * 10)
    assert opt.epochs == n_epochs
    return np.array(rates)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("lr0, W, T, floor", SCHEDULES + [(0.1, 6, 4, 0.0), (0.1, 4, 4, 0.0)])
def test_cosine_rates_match_the_numpy_formula(solver, lr0, W, T, floor):
    n = T + 3  # past max_iter: partial_fit's epochs stay at the floor
    rates = _optimizer_rates(solver, n, learning_rate_init=lr0, warmup_iters=W,
                             max_iter=T, min_learning_rate=floor)
    assert_allclose(rates, _numpy_rates(lr0, W, T, floor, n), rtol=4e-16, atol=0)
    # the shape: up in equal steps to the peak, then down to the floor
    peak = min(W, T - 1)
    assert np.all(np.diff(rates[:peak + 1]) > 0)
    assert np.all(np.diff(rates[peak:T]) <= 0) and np.all(rates[max(T, W):] == floor)
    if W < T:
        assert rates[W] == pytest.approx(lr0, rel=1e-15)
        assert rates[T - 1] > floor or lr0 == floor
    assert np.all(rates >= floor)


def test_cosine_rate_edge_values():
    assert cosine_rate(0, 0.1, 0, 10, 0.0) == pytest.approx(0.1, rel=1e-16)
    assert cosine_rate(0, 0.1, 4, 10, 0.0) == 0.1 / 5
    assert cosine_rate(10, 0.1, 4, 10, 0.02) == 0.02
    assert cosine_rate(7, 0.1, 4, 10, 0.1) == 0.1  # floor = peak: constant after warm-up


@pytest.mark.parametrize("lr0, W, T, floor", [s for s in SCHEDULES if s[2] > s[1]])
def test_cosine_rates_match_torch_lr_scheduler(lr0, W, T, floor):
    torch = pytest.importorskip("torch")
    sched = torch.optim.lr_scheduler
    param = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = torch.optim.SGD([param], lr=lr0)
    cosine = sched.CosineAnnealingLR(opt, T_max=T - W, eta_min=floor) if not W else None
    if W:
        warmup = sched.LinearLR(opt, start_factor=1 / (W + 1), end_factor=1.0, total_iters=W)
        cosine = sched.CosineAnnealingLR(opt, T_max=T - W, eta_min=floor)
        scheduler = sched.SequentialLR(opt, [warmup, cosine], milestones=[W])
    else:
        scheduler = cosine
    expected = []
    for _ in range(T):
        expected.append(opt.param_groups[0]["lr"])
        opt.step()  # (the scheduler is stepped after the optimizer, per epoch)
        scheduler.step()
    for solver in ("sgd", "adam"):
        rates = _optimizer_rates(solver, T, learning_rate_init=lr0, warmup_iters=W,
                                 max_iter=T, min_learning_rate=floor)
        # torch chains its factors from one epoch's rate to the next: a few
        # roundings apart from the closed form
        assert_allclose(rates, expected, rtol=1e-14, atol=0)


# ---------------------------------------------------------------------------
# The schedule: each epoch's rate is the step's
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_first_epoch_steps_at_the_warmup_rate(solver, dtype, global_random_seed):
    # one epoch of the schedule is one epoch at a constant rate equal to its rate
    X, y = _digits(200)
    X = X.astype(dtype)
    base = dict(solver=solver, hidden_layer_sizes=(16,), max_iter=1, batch_size=32,
                random_state=global_random_seed)
    lr0, W = 0.03, 4
    scheduled = _quiet(cymlp.MLPClassifier(learning_rate="cosine", learning_rate_init=lr0,
                                           warmup_iters=W, **base).fit, X, y)
    constant = _quiet(cymlp.MLPClassifier(learning_rate_init=lr0 / (W + 1), **base).fit, X, y)
    _assert_same_weights(scheduled, constant)
    assert scheduled.loss_curve_ == constant.loss_curve_


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_adam_trainer_steps_at_the_epoch_rate(dtype):
    # the engine's adam takes the rate run_epoch is given, not the one its
    # Trainer was made with
    rng = np.random.RandomState(0)
    net = Network([5, 4, 3], "tanh", "softmax", "log_loss")
    X = rng.normal(size=(20, 5)).astype(dtype)
    Y = np.eye(3, dtype=dtype)[rng.randint(0, 3, 20)]
    start = (rng.normal(size=net.n_params) * 0.3).astype(dtype)

    def epoch(init, rate):
        settings = dict(kind="adam", learning_rate_init=init, momentum=0,
                        nesterovs_momentum=False, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                        t=0, state1=np.zeros_like(start), state2=np.zeros_like(start))
        trainer = Trainer(net, dtype, 8, optimizer=settings)
        params = start.copy()
        loss = trainer.run_epoch(X, Y, None, None, params, 1e-4, rate)
        return params, loss

    p1, l1 = epoch(1e-2, 3e-3)
    p2, l2 = epoch(3e-3, 3e-3)
    p3, _ = epoch(1e-2, 1e-2)
    assert_array_equal(p1, p2, strict=True)
    assert l1 == l2
    assert not np.array_equal(p1, p3)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_partial_fit_counts_epochs_like_fit(solver, global_random_seed):
    # T partial_fit calls follow the schedule of one fit of max_iter=T epochs
    # (no shuffling: partial_fit draws afresh from random_state at each call)
    X, y = _digits(150)
    T = 6
    params = dict(solver=solver, hidden_layer_sizes=(12,), learning_rate="cosine",
                  learning_rate_init=0.02, warmup_iters=2, min_learning_rate=1e-3,
                  max_iter=T, shuffle=False, n_iter_no_change=np.inf, batch_size=50,
                  random_state=global_random_seed)
    fitted = _quiet(cymlp.MLPClassifier(**params).fit, X, y)
    stepped = cymlp.MLPClassifier(**params)
    for _ in range(T):
        stepped.partial_fit(X, y, classes=np.unique(y))
    _assert_same_weights(fitted, stepped)
    assert stepped._optimizer.epochs == fitted._optimizer.epochs == T
    # past max_iter, partial_fit stays at the floor
    assert stepped._optimizer.learning_rate == 1e-3
    stepped.partial_fit(X, y)
    assert stepped._optimizer.learning_rate == 1e-3 and stepped._optimizer.epochs == T + 1


def test_warm_start_restarts_the_schedule(global_random_seed):
    # a new fit makes a new optimizer (scikit-learn's warm_start), so each
    # fit runs the whole schedule: a warm restart
    X, y = _digits(150)
    params = dict(hidden_layer_sizes=(12,), learning_rate="cosine", learning_rate_init=0.02,
                  warmup_iters=1, max_iter=4, n_iter_no_change=np.inf,
                  random_state=global_random_seed)
    est = _quiet(cymlp.MLPClassifier(warm_start=True, **params).fit, X, y)
    assert est._optimizer.epochs == 4
    _quiet(est.fit, X, y)
    assert est._optimizer.epochs == 4 and est.n_iter_ == 4
    assert est._optimizer.learning_rate == cosine_rate(4, 0.02, 1, 4, 0.0)
    # ... its first epoch at the warm-up rate again: the same weights as a
    # warm start at that constant rate, for one epoch
    one = dict(params, max_iter=1)
    a = _quiet(cymlp.MLPClassifier(warm_start=True, **one).fit, X, y)
    b = _quiet(cymlp.MLPClassifier(warm_start=True, **dict(
        one, learning_rate="constant", learning_rate_init=0.01)).fit, X, y)
    _assert_same_weights(a, b)
    _quiet(a.fit, X, y)
    _quiet(b.fit, X, y)
    _assert_same_weights(a, b)


def test_schedule_stops_early_like_constant(global_random_seed):
    # convergence and early stopping stop the schedule where they stop
    X, y = _digits(300)
    est = _quiet(cymlp.MLPClassifier(hidden_layer_sizes=(12,), learning_rate="cosine",
                                     early_stopping=True, n_iter_no_change=2, max_iter=200,
                                     learning_rate_init=0.05,
                                     random_state=global_random_seed).fit, X, y)
    assert est.n_iter_ < 200
    assert est._optimizer.epochs == est.n_iter_


# ---------------------------------------------------------------------------
# The schedule: parameters
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("params, error, match", [
    (dict(warmup_iters=-1), InvalidParameterError, "warmup_iters"),
    (dict(warmup_iters=1.5), InvalidParameterError, "warmup_iters"),
    (dict(min_learning_rate=-1e-3), InvalidParameterError, "min_learning_rate"),
    (dict(learning_rate="cosin"), InvalidParameterError, "cosine"),
    (dict(learning_rate="cosine", solver="lbfgs"), ValueError, "lbfgs takes no learning rate"),
    (dict(learning_rate="cosine", min_learning_rate=0.1), ValueError, "must not exceed"),
])
@pytest.mark.parametrize("cls", [cymlp.MLPClassifier, cymlp.MLPRegressor])
def test_schedule_parameter_errors(cls, params, error, match):
    X, y = make_classification(40, 4, random_state=0)
    with pytest.raises(error, match=match):
        cls(max_iter=2, **params).fit(X, y)


@pytest.mark.parametrize("cls", [cymlp.MLPClassifier, cymlp.MLPRegressor])
def test_schedule_settings_ignored_by_other_schedules(cls, global_random_seed):
    # like power_t: warmup_iters and min_learning_rate are used by 'cosine' only
    X, y = make_classification(60, 4, random_state=global_random_seed)
    base = dict(hidden_layer_sizes=(5,), max_iter=3, random_state=global_random_seed)
    plain = _quiet(cls(**base).fit, X, y)
    other = _quiet(cls(warmup_iters=5, min_learning_rate=0.5, **base).fit, X, y)
    _assert_same_weights(plain, other)
    # lbfgs too (no learning rate at all)
    plain = _quiet(cls(solver="lbfgs", **base).fit, X, y)
    other = _quiet(cls(solver="lbfgs", warmup_iters=5, **base).fit, X, y)
    _assert_same_weights(plain, other)


def test_regressor_follows_the_schedule(global_random_seed):
    rng = np.random.RandomState(global_random_seed)
    X = rng.normal(size=(120, 4))
    y = X @ rng.normal(size=4)
    base = dict(hidden_layer_sizes=(8,), max_iter=1, random_state=global_random_seed)
    a = _quiet(cymlp.MLPRegressor(learning_rate="cosine", warmup_iters=2,
                                  learning_rate_init=0.03, **base).fit, X, y)
    b = _quiet(cymlp.MLPRegressor(learning_rate_init=0.01, **base).fit, X, y)
    _assert_same_weights(a, b)


# ---------------------------------------------------------------------------
# Label smoothing: the targets, the loss and its gradient
# ---------------------------------------------------------------------------
def _numpy_loss_grad(X, labels, coefs, intercepts, kind, eps, alpha):
    """The smoothed cross-entropy of a one-hidden-layer relu network and its
    gradient, in numpy, written from the definitions (not from the targets
    the estimator makes): multiclass as PyTorch's CrossEntropyLoss writes it,
    (1 - eps) * nll + eps / K * sum_k -log p_k; logistic outputs as Keras's
    BinaryCrossentropy, against y * (1 - eps) + eps / 2."""
    n = X.shape[0]
    (W1, W2), (b1, b2) = coefs, intercepts
    z1 = X @ W1 + b1
    a1 = np.maximum(z1, 0)
    z2 = a1 @ W2 + b2
    if kind == "multiclass":
        K = z2.shape[1]
        logp = z2 - z2.max(axis=1, keepdims=True)
        logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
        nll = -logp[np.arange(n), labels]
        uniform = -logp.sum(axis=1)
        loss = ((1 - eps) * nll + eps / K * uniform).mean()
        onehot = np.eye(K)[labels]
        dz2 = (np.exp(logp) - ((1 - eps) * onehot + eps / K)) / n
    else:
        Y = labels.reshape(n, -1).astype(float)
        t = Y * (1 - eps) + eps / 2
        p = 1 / (1 + np.exp(-z2))
        loss = -(t * np.log(p) + (1 - t) * np.log(1 - p)).sum() / n
        dz2 = (p - t) / n
    loss += 0.5 * alpha * ((W1 ** 2).sum() + (W2 ** 2).sum()) / n
    dW2 = a1.T @ dz2 + alpha * W2 / n
    db2 = dz2.sum(axis=0)
    dz1 = (dz2 @ W2.T) * (z1 > 0)
    dW1 = X.T @ dz1 + alpha * W1 / n
    db1 = dz1.sum(axis=0)
    return loss, [dW1, dW2, db1, db2]


def _smoothing_case(kind, seed):
    if kind == "multilabel":
        X, y = make_multilabel_classification(80, 6, n_classes=3, random_state=seed)
        labels = y
    elif kind == "binary":
        X, y = make_classification(80, 6, random_state=seed)
        labels = y
    else:
        X, y = make_classification(80, 6, n_informative=4, n_classes=4, random_state=seed)
        labels = y  # classes 0..3, in classes_'s order
    return X / np.abs(X).max(), y, labels


def _engine_loss_grad(est, X, y, alpha):
    """The engine's loss and gradient at the estimator's weights, for the
    targets the estimator trains on."""
    Y = est._training_targets(est._encode_targets(y))
    Y = np.ascontiguousarray(Y, dtype=np.float64).reshape(X.shape[0], -1)
    units = [X.shape[1], *[c.shape[1] for c in est.coefs_]]
    net = Network(units, "relu", est.out_activation_,
                  "log_loss" if est.out_activation_ == "softmax" else "binary_log_loss")
    params = np.concatenate([c.ravel() for c in est.coefs_]
                            + [b.ravel() for b in est.intercepts_])
    # the packed layout: coefs_ and intercepts_ are its views
    coefs, intercepts = net.views(params)
    for c, b, c0, b0 in zip(coefs, intercepts, est.coefs_, est.intercepts_):
        c[...] = c0
        b[...] = b0
    loss, grad = Trainer(net, np.float64, X.shape[0]).loss_grad(X, Y, None, params, alpha)
    gc, gb = net.views(grad)
    return loss, [*[g.copy() for g in gc], *[g.copy() for g in gb]]


@pytest.mark.parametrize("kind", ["multiclass", "binary", "multilabel"])
@pytest.mark.parametrize("eps", [0.1, 0.35])
def test_smoothed_loss_and_gradient_match_numpy(kind, eps, global_random_seed):
    X, y, labels = _smoothing_case(kind, global_random_seed)
    alpha = 1e-3
    # lbfgs: loss_ is the loss at the final weights (the smoothed one)
    est = _quiet(cymlp.MLPClassifier(solver="lbfgs", hidden_layer_sizes=(7,), max_iter=15,
                                     alpha=alpha, label_smoothing=eps,
                                     random_state=global_random_seed).fit, X, y)
    expected, expected_grad = _numpy_loss_grad(X, labels, est.coefs_, est.intercepts_,
                                               kind, eps, alpha)
    assert est.loss_ == pytest.approx(expected, rel=1e-12)
    loss, grad = _engine_loss_grad(est, X, y, alpha)
    assert loss == pytest.approx(expected, rel=1e-12)
    for g, e in zip(grad, expected_grad, strict=True):
        assert_allclose(g, e, rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize("kind", ["multiclass", "binary", "multilabel"])
def test_smoothed_loss_and_gradient_match_torch(kind, global_random_seed):
    torch = pytest.importorskip("torch")
    X, y, labels = _smoothing_case(kind, global_random_seed)
    eps = 0.2
    est = _quiet(cymlp.MLPClassifier(solver="lbfgs", hidden_layer_sizes=(7,), max_iter=10,
                                     alpha=0.0, label_smoothing=eps,
                                     random_state=global_random_seed).fit, X, y)
    loss, grad = _engine_loss_grad(est, X, y, 0.0)

    weights = [torch.tensor(w, requires_grad=True) for w in _weights(est)]
    W1, W2, b1, b2 = weights
    z = torch.relu(torch.tensor(X) @ W1 + b1) @ W2 + b2
    if kind == "multiclass":
        criterion = torch.nn.CrossEntropyLoss(label_smoothing=eps)
        value = criterion(z, torch.tensor(labels))
    elif kind == "binary":
        # the logistic output is a two-class softmax over the logits (0, z):
        # torch's own label smoothing of the two classes...
        two = torch.cat([torch.zeros_like(z), z], dim=1)
        value = torch.nn.CrossEntropyLoss(label_smoothing=eps)(two, torch.tensor(labels))
        # ... is Keras's binary smoothing, y * (1 - eps) + eps / 2, under BCELoss
        target = torch.tensor(labels.reshape(-1, 1) * (1 - eps) + eps / 2)
        bce = torch.nn.BCELoss()(torch.sigmoid(z), target)
        assert float(bce.detach()) == pytest.approx(float(value.detach()), rel=1e-12)
    else:
        # multilabel: BCE summed over the labels, averaged over the samples
        target = torch.tensor(labels * (1 - eps) + eps / 2)
        value = torch.nn.BCELoss(reduction="sum")(torch.sigmoid(z), target) / X.shape[0]
    value.backward()
    assert loss == pytest.approx(float(value.detach()), rel=1e-12)
    assert est.loss_ == pytest.approx(float(value.detach()), rel=1e-12)
    for g, w in zip(grad, weights, strict=True):
        assert_allclose(g, w.grad.numpy(), rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize("kind", ["multiclass", "binary", "multilabel"])
def test_smoothed_targets(kind, global_random_seed):
    X, y, _ = _smoothing_case(kind, global_random_seed)
    est = _quiet(cymlp.MLPClassifier(hidden_layer_sizes=(3,), max_iter=1,
                                     label_smoothing=0.3).fit, X, y)
    Y = est._encode_targets(y)
    T = est._training_targets(Y)
    K = Y.shape[1] if kind == "multiclass" else 2
    assert T.dtype == np.float64
    assert_allclose(T, np.where(Y, 1 - 0.3 + 0.3 / K, 0.3 / K), rtol=1e-15)
    if kind == "multiclass":
        assert_allclose(T.sum(axis=1), 1, rtol=1e-15)
    # no smoothing: the boolean targets as they are (scikit-learn's)
    est.set_params(label_smoothing=0.0)
    assert est._training_targets(Y) is Y


@pytest.mark.parametrize("kind", ["multiclass", "binary", "multilabel"])
@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_label_smoothing_trains_every_solver(kind, solver, global_random_seed):
    X, y, _ = _smoothing_case(kind, global_random_seed)
    base = dict(solver=solver, hidden_layer_sizes=(16,), max_iter=60, learning_rate_init=0.01,
                random_state=global_random_seed)
    plain = _quiet(cymlp.MLPClassifier(**base).fit, X, y)
    smooth = _quiet(cymlp.MLPClassifier(label_smoothing=0.2, **base).fit, X, y)
    # it learns, less confidently, and its loss keeps the targets' entropy
    assert smooth.score(X, y) >= plain.score(X, y) - 0.1
    proba = smooth.predict_proba(X)
    assert proba.max() < plain.predict_proba(X).max()
    assert smooth.loss_ > 0.2


def test_label_smoothing_with_partial_fit(global_random_seed):
    X, y, _ = _smoothing_case("multiclass", global_random_seed)
    est = cymlp.MLPClassifier(hidden_layer_sizes=(8,), label_smoothing=0.1,
                              random_state=global_random_seed)
    # the first batch lacks a class: K is that of `classes`
    first = y != 3
    est.partial_fit(X[first], y[first], classes=[0, 1, 2, 3])
    assert est._training_targets(est._encode_targets(y[:5])).min() == pytest.approx(0.1 / 4)
    est.partial_fit(X, y)
    assert est.n_iter_ == 1 and np.isfinite(est.loss_)


def test_validation_loss_is_the_smoothed_loss(global_random_seed):
    # early stopping's validation loss is the training loss's, on held-out rows;
    # its default score (accuracy) is unchanged
    X, y = load_digits(return_X_y=True)
    X, y = X[:600] / 16, y[:600]
    X_val, y_val = X[:150], y[:150]
    alpha, eps = 1e-3, 0.2
    clf = _quiet(cymlp.MLPClassifier(early_stopping=True, max_iter=10, alpha=alpha,
                                     n_iter_no_change=100, label_smoothing=eps,
                                     hidden_layer_sizes=(16,),
                                     random_state=global_random_seed).fit,
                 X[150:], y[150:], X_val=X_val, y_val=y_val)
    best = int(np.argmax(clf.validation_scores_))
    expected, _ = _numpy_loss_grad(X_val, y_val, clf.coefs_, clf.intercepts_, "multiclass",
                                   eps, alpha)
    assert clf.validation_loss_curve_[best] == pytest.approx(expected, rel=1e-9)
    assert clf.best_validation_score_ == clf.score(X_val, y_val)
    # the split set aside from X: the same rows as without smoothing (the
    # stratified split of binary targets sees smoothed values)
    for ys in (y, (y > 4).astype(int)):
        seen = []

        def record(est, X_val, y_val, sample_weight=None):
            seen.append((X_val.copy(), np.asarray(y_val).copy()))
            return 0.0

        base = dict(early_stopping=True, max_iter=1, hidden_layer_sizes=(4,),
                    scoring=record, random_state=global_random_seed)
        _quiet(cymlp.MLPClassifier(**base).fit, X, ys)
        _quiet(cymlp.MLPClassifier(label_smoothing=0.3, **base).fit, X, ys)
        (Xa, ya), (Xb, yb) = seen
        assert_array_equal(Xa, Xb)
        assert_array_equal(ya, yb, strict=True)


@pytest.mark.parametrize("value", [-0.1, 1.0, 1.5, "0.1"])
def test_label_smoothing_parameter_errors(value):
    X, y = make_classification(40, 4, random_state=0)
    with pytest.raises(InvalidParameterError, match="label_smoothing"):
        cymlp.MLPClassifier(label_smoothing=value).fit(X, y)
    assert "label_smoothing" not in cymlp.MLPRegressor().get_params()


# ---------------------------------------------------------------------------
# Clone, pickle, skops
# ---------------------------------------------------------------------------
RECIPE = dict(learning_rate="cosine", warmup_iters=2, min_learning_rate=1e-4,
              learning_rate_init=0.01, label_smoothing=0.1)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
@pytest.mark.parametrize("how", ["pickle", "skops", "clone"])
def test_recipe_survives_persistence(how, solver, global_random_seed):
    X, y = _digits(120)
    est = cymlp.MLPClassifier(solver=solver, hidden_layer_sizes=(6,), max_iter=8,
                              random_state=global_random_seed, **RECIPE)
    if how == "clone":
        cloned = clone(est)
        assert cloned.get_params() == est.get_params()
        _quiet(cloned.fit, X, y)
        _quiet(est.fit, X, y)
        _assert_same_weights(est, cloned)
        return
    for _ in range(3):
        est.partial_fit(X, y, classes=np.unique(y))
    if how == "pickle":
        loaded = pickle.loads(pickle.dumps(est))
    else:
        sio = pytest.importorskip("skops.io")
        data = sio.dumps(est)
        assert sio.get_untrusted_types(data=data) == ["cymlp._classifier.MLPClassifier"]
        loaded = sio.loads(data, trusted=[cymlp.MLPClassifier])
    assert loaded.get_params() == est.get_params()
    assert loaded._optimizer.epochs == est._optimizer.epochs == 3
    assert loaded._optimizer.learning_rate == est._optimizer.learning_rate
    # training continues exactly where it stopped, schedule included
    for _ in range(2):
        est.partial_fit(X, y)
        loaded.partial_fit(X, y)
    _assert_same_weights(est, loaded)
    assert loaded._optimizer.learning_rate == cosine_rate(5, 0.01, 2, 8, 1e-4)


def test_old_optimizer_state_without_the_schedule_loads(global_random_seed):
    # an optimizer stored before 'cosine' (no schedule settings, no epochs)
    X, y = _digits(120)
    est = cymlp.MLPClassifier(solver="sgd", hidden_layer_sizes=(6,),
                              learning_rate="invscaling", random_state=global_random_seed)
    est.partial_fit(X, y, classes=np.unique(y))
    state = est.__getstate__()
    old = {k: v for k, v in state["_optimizer"].items()
           if k not in ("warmup_iters", "min_learning_rate", "max_iter", "epochs")}
    for name in ("warmup_iters", "min_learning_rate"):
        state.pop(name)
    state["_optimizer"] = old
    loaded = type(est).__new__(type(est))
    loaded.__setstate__(state)
    assert loaded.warmup_iters == 0 and loaded._optimizer.epochs == 0
    est.partial_fit(X, y)
    loaded.partial_fit(X, y)
    _assert_same_weights(est, loaded)
