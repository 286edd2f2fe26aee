"""float32 data near the end of float32's range: cymlp against scikit-learn.

scikit-learn's MLPRegressor keeps its targets in their own dtype. Beside
float32 X and weights, float64 (or int64, ...) targets make numpy compute the
output delta ``activations[-1] - y`` in float64, and everything after it: the
loss, the backward products, the gradients, the optimizer's moments (lbfgs
gets a float64 gradient). Only the forward pass and the weights stay float32.
Where float32 overflows (a gradient past 3.4e38, Adam's squared gradient
past it), scikit-learn still trains; cymlp, computing in float32 throughout,
raised "Solver produced non-finite parameter weights", or kept an infinite
second moment that froze the weights. cymlp now goes over to scikit-learn's
arithmetic where float32 overflows, from that epoch (lbfgs: that
evaluation) on (see ``cymlp._training._Float64Backward``).

Every test compares against scikit-learn run on the same data: the same
outcome (a fit, or the same exception and message), weights of the same
dtype, predictions finite where scikit-learn's are and close to them with a
tolerance relative to their magnitude (near 1e38 an absolute one means
nothing).
"""

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_array_equal
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor
from threadpoolctl import threadpool_limits

import cymlp
from cymlp import _engine
from cymlp._engine import _testing
from cymlp._engine import Network, Trainer

pytestmark = pytest.mark.usefixtures("quiet")

SOLVERS = ["adam", "sgd", "lbfgs"]
# lbfgs's line searches amplify rounding differences more than a few
# minibatch steps do; still float32's agreement, with room for that
RTOL = {"adam": 1e-4, "sgd": 1e-4, "lbfgs": 1e-3}


def _data(seed, scale, n=60, n_features=4):
    """float32 X and float64 targets, both uniform in [-scale, scale]."""
    rng = np.random.RandomState(seed)
    X = (rng.uniform(-1, 1, (n, n_features)) * scale).astype(np.float32)
    y = rng.uniform(-1, 1, n) * scale
    return X, y, rng


def _params(solver, seed, **extra):
    return dict(solver=solver, random_state=seed, max_iter=8, hidden_layer_sizes=(5,),
                batch_size=20, **extra)


def _fit(cls, X, y, params, sample_weight=None, partial_fits=0):
    """The fitted estimator, or the exception that fitting raised.

    Parameters
    ----------
    cls : estimator class
    X, y : training data
    params : dict
        The estimator's parameters.
    sample_weight : array or None
    partial_fits : int
        0: one fit; otherwise that many partial_fit calls on (X, y).

    Returns
    -------
    estimator or Exception
    """
    est = cls(**params)
    try:
        if partial_fits:
            for _ in range(partial_fits):
                est.partial_fit(X, y, sample_weight=sample_weight)
        else:
            est.fit(X, y, sample_weight=sample_weight)
    except Exception as exc:  # noqa: BLE001 -- the outcome is what is compared
        return exc
    return est


def _assert_same(sk, cy, X, rtol=1e-4, method="predict"):
    """cymlp's outcome is scikit-learn's: the same exception, or weights of
    the same dtype and predictions that agree to rtol of their magnitude."""
    if isinstance(sk, Exception):
        assert isinstance(cy, Exception), f"scikit-learn raises {sk!r}, cymlp fits"
        assert type(cy) is type(sk) and str(cy) == str(sk), (sk, cy)
        return
    assert not isinstance(cy, Exception), f"scikit-learn fits, cymlp raises {cy!r}"
    for a, b in zip(sk.coefs_ + sk.intercepts_, cy.coefs_ + cy.intercepts_):
        assert b.dtype == a.dtype
        assert np.isfinite(b).all()
    p_sk, p_cy = getattr(sk, method)(X), getattr(cy, method)(X)
    assert p_cy.dtype == p_sk.dtype
    assert_array_equal(np.isfinite(p_cy), np.isfinite(p_sk))
    finite = np.isfinite(p_sk)
    scale = np.abs(p_sk[finite]).max() if finite.any() else 1.0
    np.testing.assert_allclose(p_cy[finite], p_sk[finite], rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize("scale", [1e15, 1e20, 1e38])
@pytest.mark.parametrize("solver", SOLVERS)
def test_regressor_near_float32_max(solver, scale, global_random_seed):
    # 1e15: Adam's squared gradients pass float32's range (the weights froze);
    # 1e20: the gradients do; 1e38: the data's own magnitude (the report)
    X, y, _ = _data(global_random_seed, scale)
    params = _params(solver, global_random_seed)
    sk = _fit(SkMLPRegressor, X, y, params)
    cy = _fit(cymlp.MLPRegressor, X, y, params)
    _assert_same(sk, cy, X, rtol=RTOL[solver])


@pytest.mark.parametrize("variant", ["sample_weight", "integer_targets", "two_outputs",
                                     "early_stopping", "csr", "no_shuffle", "alpha"])
def test_regressor_near_float32_max_variants(variant, global_random_seed):
    X, y, rng = _data(global_random_seed, 1e38)
    params = _params("adam", global_random_seed)
    sample_weight = None
    if variant == "sample_weight":
        sample_weight = rng.uniform(0.5, 2.0, X.shape[0])
    elif variant == "integer_targets":
        # int64 targets promote with float32 to float64 as well
        y = np.round(y / 1e20).astype(np.int64)
    elif variant == "two_outputs":
        y = np.c_[y, -0.5 * y]
    elif variant == "early_stopping":
        params.update(early_stopping=True, validation_fraction=0.2)
    elif variant == "csr":
        X = sp.csr_matrix(X)
    elif variant == "no_shuffle":
        params.update(shuffle=False)
    else:
        params.update(alpha=10.0)
    sk = _fit(SkMLPRegressor, X, y, params, sample_weight=sample_weight)
    cy = _fit(cymlp.MLPRegressor, X, y, params, sample_weight=sample_weight)
    _assert_same(sk, cy, X)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_partial_fit_near_float32_max(solver, global_random_seed):
    X, y, _ = _data(global_random_seed, 1e38)
    params = _params(solver, global_random_seed)
    sk = _fit(SkMLPRegressor, X, y, params, partial_fits=3)
    cy = _fit(cymlp.MLPRegressor, X, y, params, partial_fits=3)
    _assert_same(sk, cy, X)


def test_partial_fit_from_ordinary_to_extreme_data(global_random_seed):
    # float32 arithmetic while it suffices, then scikit-learn's from the
    # call whose data overflows float32, the moments carried over exactly
    X, y, _ = _data(global_random_seed, 1e38)
    small_X, small_y = (X / np.float32(1e38)), y / 1e38
    models = []
    for cls in (SkMLPRegressor, cymlp.MLPRegressor):
        est = cls(**_params("adam", global_random_seed))
        for X_part, y_part in [(small_X, small_y)] * 2 + [(X, y)] * 2 + [(small_X, small_y)]:
            est.partial_fit(X_part, y_part)
        models.append(est)
    _assert_same(*models, X)
    _assert_same(*models, small_X)


@pytest.mark.parametrize("scale", [1e39, 1e300])
@pytest.mark.parametrize("solver", SOLVERS)
def test_targets_beyond_float32_range(solver, scale, global_random_seed):
    # targets float32 cannot hold: scikit-learn's arithmetic from the start,
    # and float32 weights (stochastic solvers) as in scikit-learn
    rng = np.random.RandomState(global_random_seed)
    X = rng.normal(size=(30, 3)).astype(np.float32)
    y = rng.normal(size=30) * scale
    params = _params(solver, global_random_seed)
    sk = _fit(SkMLPRegressor, X, y, params)
    cy = _fit(cymlp.MLPRegressor, X, y, params)
    _assert_same(sk, cy, X, rtol=RTOL[solver])


@pytest.mark.parametrize("solver", SOLVERS)
def test_classifier_near_float32_max(solver, global_random_seed):
    # for comparison: a classifier's targets are booleans, its arithmetic
    # stays float32 in scikit-learn, and so it does in cymlp
    X, _, rng = _data(global_random_seed, 1e38)
    y = rng.randint(0, 3, X.shape[0])
    params = _params(solver, global_random_seed)
    sk = _fit(SkMLPClassifier, X, y, params)
    cy = _fit(cymlp.MLPClassifier, X, y, params)
    _assert_same(sk, cy, X, method="predict_proba")


def test_predict_near_float32_max(global_random_seed):
    # a model of ordinary float32 data predicting X near float32's range:
    # float32 products in both, inf where they overflow
    X, y, _ = _data(global_random_seed, 1.0)
    params = _params("adam", global_random_seed)
    sk = _fit(SkMLPRegressor, X, y, params)
    cy = _fit(cymlp.MLPRegressor, X, y, params)
    X_big = X * np.float32(1e38)
    X_big[:5] *= np.float32(3.0)  # past float32's range once multiplied
    _assert_same(sk, cy, X_big)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_ordinary_data_keeps_float32_arithmetic(solver, global_random_seed):
    # the fallback is for overflows only: ordinary float32 data with float64
    # targets trains in float32, its moments included (the fast path)
    X, y, _ = _data(global_random_seed, 1.0)
    params = _params(solver, global_random_seed)
    sk = _fit(SkMLPRegressor, X, y, params)
    cy = _fit(cymlp.MLPRegressor, X, y, params)
    _assert_same(sk, cy, X)
    assert all(m.dtype == np.float32 for m in cy._optimizer.moments())


@pytest.mark.skipif(not _engine.OPENMP, reason="built without OpenMP: always serial")
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_float64_backward_same_bits_any_thread_count(solver, sparse, global_random_seed):
    # the float32 forward pass and the float64 backward pass share their
    # chunks among the threads as the plain passes do: the same bits for
    # any thread count (lbfgs: the engine's threads only, scipy's BLAS
    # rounds by its own thread count)
    rng = np.random.RandomState(global_random_seed)
    # shapes whose products and passes split into several chunks
    X = (rng.uniform(-1, 1, (768, 256)) * 1e37).astype(np.float32)
    if sparse:
        X[rng.uniform(size=X.shape) < 0.7] = 0
        X = sp.csr_matrix(X)
    y = rng.uniform(-1, 1, (768, 2)) * 1e38
    results = []
    _testing._contention(adapt=False)  # teams even on a busy machine
    try:
        for n in (1, 2, 4):
            limits = (threadpool_limits(n, user_api="openmp") if solver == "lbfgs"
                      else threadpool_limits(n))
            with limits:
                _testing._thread_stats()
                est = cymlp.MLPRegressor(hidden_layer_sizes=(128,), solver=solver,
                                         batch_size=256, max_iter=3,
                                         random_state=global_random_seed).fit(X, y)
                regions, team = _testing._thread_stats()
            assert (regions == 0) if n == 1 else (regions > 0 and 2 <= team <= n)
            assert np.isfinite(est.coefs_[0]).all()
            results.append(est.coefs_ + est.intercepts_ + [est.predict(X)])
    finally:
        _testing._contention(adapt=True)
    if solver == "adam":
        # the float64 path ran
        assert all(m.dtype == np.float64 for m in est._optimizer.moments())
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert_array_equal(a, b, strict=True)


def test_trainer_float32_weights():
    # the engine's side of the fallback: float64 arithmetic whose weights
    # and activations are what float32 arrays would hold
    rng = np.random.RandomState(0)
    net = Network([4, 6, 1], "relu", "identity", "squared_error")
    X = rng.normal(size=(40, 4)).astype(np.float32).astype(np.float64) * 1e30
    Y = rng.normal(size=(40, 1)) * 1e30
    params = rng.uniform(-0.5, 0.5, net.n_params).astype(np.float32).astype(np.float64)
    moments = [np.zeros(net.n_params), np.zeros(net.n_params)]
    optimizer = dict(kind="adam", learning_rate_init=1e-3, momentum=0.9,
                     nesterovs_momentum=True, beta_1=0.9, beta_2=0.999, epsilon=1e-8, t=0,
                     state1=moments[0], state2=moments[1])
    trainer = Trainer(net, np.float64, 10, optimizer=optimizer, float32_weights=True)
    trainer.run_epoch(X, Y, None, None, params, 1e-4, 1e-3)
    assert trainer.state_finite(params)
    assert_array_equal(params, params.astype(np.float32))
    # the moments stay float64: past float32's range here
    assert np.abs(moments[1]).max() > np.finfo(np.float32).max
    with pytest.raises(ValueError, match="float32_weights needs dtype float64"):
        Trainer(net, np.float32, 10, float32_weights=True)

