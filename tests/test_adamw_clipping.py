"""AdamW's decoupled weight decay and gradient clipping by the global norm (#23).

The references: PyTorch's ``torch.optim.AdamW`` / ``Adam`` / ``SGD`` and
``torch.nn.utils.clip_grad_norm_`` where torch is installed (the tests skip
without it), numpy elsewhere (the kernels' and the epoch's references are in
test_kernels.py). cymlp's Adam keeps scikit-learn's bias-corrected rate
``lr_t = lr sqrt(1 - beta_2^t) / (1 - beta_1^t)`` with epsilon added to
``sqrt(v)``; torch adds epsilon to ``sqrt(v) / sqrt(1 - beta_2^t)``. The two
are the same arithmetic when torch's epsilon of step t is
``epsilon / sqrt(1 - beta_2^t)``, which the torch tests set before each step.
Thread invariance is in test_threads.py, persistence in test_persistence.py,
scikit-learn's checks in test_estimator_checks.py.
"""

import copy
import pickle
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import InvalidParameterError

import cymlp
from cymlp._engine import _testing

ESTIMATORS = [cymlp.MLPClassifier, cymlp.MLPRegressor]


def _data(seed, regression, n=64, dtype=np.float64):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 5)).astype(dtype)
    if regression:
        y = X @ rng.normal(size=5) + 0.1 * rng.normal(size=n)
    else:
        y = np.argmax(X[:, :3] + 0.3 * rng.normal(size=(n, 3)), axis=1)
    return X, y


def _fit(cls, X, y, **params):
    params.setdefault("hidden_layer_sizes", (7,))
    params.setdefault("max_iter", 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return cls(**params).fit(X, y)


def _weights(est):
    return est.coefs_ + est.intercepts_


def assert_same_weights(a, b):
    for x, y in zip(_weights(a), _weights(b), strict=True):
        assert_array_equal(x, y, strict=True)


# ---------------------------------------------------------------------------
# Off, or on at a value that changes nothing: the same bits
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_adamw_without_decay_trains_as_adam(cls, dtype, global_random_seed):
    X, y = _data(global_random_seed, cls is cymlp.MLPRegressor, dtype=dtype)
    params = dict(random_state=global_random_seed, batch_size=16)
    assert_same_weights(_fit(cls, X, y, solver="adamw", weight_decay=0.0, **params),
                        _fit(cls, X, y, solver="adam", **params))


def test_adamw_follows_the_cosine_schedule(global_random_seed):
    # the decay multiplies the epoch's rate (as torch's AdamW under a scheduler)
    X, y = _data(global_random_seed, False)
    params = dict(random_state=global_random_seed, batch_size=16, learning_rate="cosine",
                  warmup_iters=2, max_iter=6)
    assert_same_weights(_fit(cymlp.MLPClassifier, X, y, solver="adamw", weight_decay=0.0,
                             **params),
                        _fit(cymlp.MLPClassifier, X, y, solver="adam", **params))
    decayed = _fit(cymlp.MLPClassifier, X, y, solver="adamw", weight_decay=0.5, **params)
    assert np.isfinite(decayed.coefs_[0]).all()


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_weight_decay_is_adamw_only(solver, global_random_seed):
    X, y = _data(global_random_seed, False)
    params = dict(solver=solver, random_state=global_random_seed, batch_size=16)
    assert_same_weights(_fit(cymlp.MLPClassifier, X, y, weight_decay=0.5, **params),
                        _fit(cymlp.MLPClassifier, X, y, **params))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("solver", ["sgd", "adam", "adamw"])
def test_a_norm_never_reached_changes_nothing(solver, dtype, global_random_seed):
    # factor 1: the step's 1 / sw_sum is the same number, bit for bit
    X, y = _data(global_random_seed, True, dtype=dtype)
    params = dict(solver=solver, random_state=global_random_seed, batch_size=16,
                  learning_rate_init=1e-3)
    assert_same_weights(_fit(cymlp.MLPRegressor, X, y, max_grad_norm=1e30, **params),
                        _fit(cymlp.MLPRegressor, X, y, **params))


def test_decay_and_clipping_change_the_fit(global_random_seed):
    X, y = _data(global_random_seed, False)
    params = dict(random_state=global_random_seed, batch_size=16)
    base = _fit(cymlp.MLPClassifier, X, y, solver="adam", **params)
    for extra in (dict(solver="adamw"), dict(solver="adam", max_grad_norm=0.01)):
        other = _fit(cymlp.MLPClassifier, X, y, **extra, **params)
        assert not np.array_equal(other.coefs_[0], base.coefs_[0]), extra


# ---------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("params", [
    dict(weight_decay=-0.1), dict(weight_decay="a"), dict(max_grad_norm=0.0),
    dict(max_grad_norm=-1.0), dict(max_grad_norm="inf"), dict(solver="AdamW"),
])
def test_invalid_parameters_raise(cls, params):
    X, y = _data(0, cls is cymlp.MLPRegressor)
    with pytest.raises(InvalidParameterError):
        cls(**params).fit(X, y)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_lbfgs_refuses_max_grad_norm(cls):
    X, y = _data(0, cls is cymlp.MLPRegressor)
    with pytest.raises(ValueError, match="max_grad_norm .* lbfgs"):
        cls(solver="lbfgs", max_grad_norm=1.0).fit(X, y)
    # weight_decay is adamw's: lbfgs ignores it, as sgd and adam do
    _fit(cls, X, y, solver="lbfgs", weight_decay=0.5)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_defaults_clone_and_pickle(cls, global_random_seed):
    est = cls()
    assert est.weight_decay == 0.01 and est.max_grad_norm is None
    est = cls(solver="adamw", weight_decay=0.2, max_grad_norm=0.5,
              random_state=global_random_seed)
    copy = clone(est)
    assert copy.get_params() == est.get_params()
    X, y = _data(global_random_seed, cls is cymlp.MLPRegressor)
    fitted = _fit(cls, X, y, **est.get_params())
    loaded = pickle.loads(pickle.dumps(fitted))
    assert loaded.get_params() == fitted.get_params()
    assert loaded._optimizer.weight_decay == 0.2 and loaded._optimizer.max_grad_norm == 0.5
    fitted.partial_fit(X, y)
    loaded.partial_fit(X, y)
    assert_same_weights(fitted, loaded)


# ---------------------------------------------------------------------------
# What clipping does, seen from the weights
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("max_norm", [1e-3, 0.05])
def test_one_clipped_sgd_step_moves_the_weights_by_lr_times_the_norm(max_norm,
                                                                     global_random_seed):
    # plain SGD, one full batch: w1 - w0 = -lr g max_norm / (|g| + 1e-6)
    X, y = _data(global_random_seed, True)
    params = dict(solver="sgd", momentum=0.0, batch_size=len(X), shuffle=False,
                  max_iter=1, learning_rate_init=0.1, random_state=global_random_seed)
    free = _fit(cymlp.MLPRegressor, X, y, **params).set_params(warm_start=True)
    w0 = np.concatenate([a.ravel() for a in _weights(free)])
    clipped = copy.deepcopy(free).set_params(max_grad_norm=max_norm)
    free = _fit_more(free, X, y)
    clipped = _fit_more(clipped, X, y)
    step_free = np.concatenate([a.ravel() for a in _weights(free)]) - w0
    step = np.concatenate([a.ravel() for a in _weights(clipped)]) - w0
    norm = np.linalg.norm(step_free) / 0.1  # |g|
    assert norm > max_norm  # it clips
    assert_allclose(step, step_free * max_norm / (norm + 1e-6), rtol=1e-9, atol=1e-15)


def _fit_more(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


# ---------------------------------------------------------------------------
# PyTorch
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_adamw_step_matches_torch_over_several_steps(dtype, global_random_seed):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(global_random_seed)
    n, lr, wd, b1, b2, eps = 1000, 1e-2, 0.1, 0.9, 0.999, 1e-8
    w = rng.standard_normal(n).astype(dtype)
    m, v = np.zeros_like(w), np.zeros_like(w)
    p = torch.nn.Parameter(torch.from_numpy(w.copy()))
    opt = torch.optim.AdamW([p], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd)
    for t in range(1, 8):
        g = (rng.standard_normal(n) * 10.0 ** rng.integers(-3, 2)).astype(dtype)
        lr_t = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        _testing._kernel_optimizer_step("adamw", w, g.copy(), m, v, 0.0, 1.0, lr_t,
                                       beta_1=b1, beta_2=b2, epsilon=eps, weight_decay=wd,
                                       learning_rate_init=lr)
        p.grad = torch.from_numpy(g.copy())
        opt.param_groups[0]["eps"] = eps / np.sqrt(1 - b2**t)
        opt.step()
    rtol = 1e-12 if dtype == np.float64 else 2e-5
    assert_allclose(w, p.detach().numpy(), rtol=rtol, atol=rtol * 1e-2)


def _torch_fit(torch, est0, X, y, solver, batch_size, max_grad_norm, weight_decay):
    """est0's weights trained one epoch in torch, minibatch by minibatch in
    order: scikit-learn's squared error (halved, over the rows) and its L2
    term alpha / (2 rows) |coefs|^2, torch's clipping and optimizer."""
    coefs = [torch.tensor(c, requires_grad=True) for c in est0.coefs_]
    biases = [torch.tensor(b, requires_grad=True) for b in est0.intercepts_]
    params = coefs + biases
    lr, b1, b2, eps = est0.learning_rate_init, est0.beta_1, est0.beta_2, est0.epsilon
    if solver == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=est0.momentum,
                              nesterov=est0.nesterovs_momentum)
    elif solver == "adam":
        opt = torch.optim.Adam(params, lr=lr, betas=(b1, b2), eps=eps)
    else:
        opt = torch.optim.AdamW(params, lr=lr, betas=(b1, b2), eps=eps,
                                weight_decay=weight_decay)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y.reshape(-1, 1))
    for t, start in enumerate(range(0, len(X), batch_size), 1):
        a, target = Xt[start:start + batch_size], yt[start:start + batch_size]
        rows = a.shape[0]
        for i, (c, b) in enumerate(zip(coefs, biases)):
            a = a @ c + b
            if i < len(coefs) - 1:
                a = torch.tanh(a)
        loss = ((a - target) ** 2).sum() / (2 * rows) + est0.alpha / (2 * rows) * sum(
            (c * c).sum() for c in coefs)
        opt.zero_grad()
        loss.backward()
        if max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
        if solver != "sgd":
            opt.param_groups[0]["eps"] = eps / np.sqrt(1 - b2**t)
        opt.step()
    return [c.detach().numpy() for c in coefs] + [b.detach().numpy() for b in biases]


@pytest.mark.parametrize("solver, max_grad_norm, weight_decay", [
    ("adamw", None, 0.1), ("adamw", 0.05, 0.5), ("adam", 0.05, 0.0), ("sgd", 0.05, 0.0),
    ("sgd", 2.0, 0.0),
])
def test_training_matches_torch(solver, max_grad_norm, weight_decay, global_random_seed):
    """A warm-started epoch of 4 minibatches against the same network, loss,
    clipping and optimizer in torch (float64)."""
    torch = pytest.importorskip("torch")
    X, y = _data(global_random_seed, True)
    batch_size = 16
    params = dict(hidden_layer_sizes=(6, 4), activation="tanh", solver=solver, max_iter=1,
                  batch_size=batch_size, shuffle=False, alpha=0.01,
                  learning_rate_init=0.01, random_state=global_random_seed,
                  weight_decay=weight_decay)
    est = _fit(cymlp.MLPRegressor, X, y, **params)  # the starting weights
    want = _torch_fit(torch, est, X, y, solver, batch_size, max_grad_norm, weight_decay)
    est.set_params(warm_start=True, max_grad_norm=max_grad_norm)
    _fit_more(est, X, y)  # a warm start: a new optimizer, from these weights
    for got, ref in zip(_weights(est), want, strict=True):
        assert_allclose(got, ref, rtol=1e-10, atol=1e-13)
