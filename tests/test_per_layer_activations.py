"""Per-layer activations (#23): ``activation`` as one name per hidden layer.

Each behaviour is checked against an independent reference, never against
numbers cymlp produced itself: a sequence of one name repeated against the
string (scikit-learn's own path, bit for bit); the forward pass, the hidden
features and the loss gradient against the numpy reference of
``tests/_kernel_reference.py`` (longdouble) and against finite differences;
one sgd and one adam step against numpy steps from the initial weights that
scikit-learn's Glorot rule draws, per layer; the ONNX graph against predict;
thread counts against one thread, bit for bit.
"""

import copy
import pickle
import warnings

import _kernel_reference as ref
import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import InvalidParameterError
from test_gradients import SLOPE, _check_gradient, _problem
from threadpoolctl import threadpool_limits

import cymlp
from cymlp import _engine
from cymlp._engine import _testing

ESTIMATORS = {"classifier": cymlp.MLPClassifier, "regressor": cymlp.MLPRegressor}
SOLVERS = ["sgd", "adam", "adamw", "lbfgs"]
MIXED = ("tanh", "gelu", "relu")  # three hidden layers, three activations
HIDDEN = (7, 6, 5)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _data(seed, kind="classifier", n=80, n_features=6, dtype=np.float64):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, n_features)).astype(dtype)
    if kind == "classifier":
        y = rng.randint(0, 3, size=n)
    else:
        y = (X[:, :2] @ rng.normal(size=(2, 2)) + 0.1 * rng.normal(size=(n, 2))).astype(dtype)
    return X, y


def _weights(est):
    return est.coefs_ + est.intercepts_


def _assert_same_fit(a, b, n_iter=True):
    """The same weights and loss curve, bit for bit (and n_iter_, which
    scikit-learn counts per call of fit or partial_fit)."""
    for p, q in zip(_weights(a), _weights(b), strict=True):
        assert_array_equal(p, q, strict=True)
    if hasattr(a, "loss_curve_"):
        assert a.loss_curve_ == b.loss_curve_
    if n_iter:
        assert a.n_iter_ == b.n_iter_


# ---------------------------------------------------------------------------
# (a) the same name in every entry is the string, bit for bit
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("container", [list, tuple])
@pytest.mark.parametrize("name", ["relu", "logistic", "gelu"])
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("kind", list(ESTIMATORS))
def test_repeated_name_is_the_string(kind, solver, name, container, global_random_seed):
    X, y = _data(global_random_seed, kind)
    params = dict(hidden_layer_sizes=(6, 4), solver=solver, max_iter=5,
                  random_state=global_random_seed)
    a = ESTIMATORS[kind](activation=name, **params).fit(X, y)
    b = ESTIMATORS[kind](activation=container([name, name]), **params).fit(X, y)
    _assert_same_fit(a, b)
    assert_array_equal(a.predict(X), b.predict(X))
    assert_array_equal(a.transform(X), b.transform(X))


def test_repeated_name_is_the_string_with_dropout_and_partial_fit(global_random_seed):
    X, y = _data(global_random_seed)
    params = dict(hidden_layer_sizes=(6, 4), dropout=[0.2, 0.1], random_state=0)
    a = cymlp.MLPClassifier(activation="silu", **params)
    b = cymlp.MLPClassifier(activation=["silu", "silu"], **params)
    for est in (a, b):
        est.partial_fit(X[:40], y[:40], classes=[0, 1, 2])
        est.partial_fit(X[40:], y[40:])
    _assert_same_fit(a, b)


# ---------------------------------------------------------------------------
# (b) predict / predict_proba against a numpy forward pass
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("solver", SOLVERS)
def test_predict_proba_is_the_numpy_forward_pass(solver, dtype, global_random_seed):
    X, y = _data(global_random_seed, dtype=dtype)
    clf = cymlp.MLPClassifier(hidden_layer_sizes=HIDDEN, activation=list(MIXED), solver=solver,
                              max_iter=20, random_state=global_random_seed).fit(X, y)
    work = np.result_type(X.dtype, clf.coefs_[0].dtype)
    X_test = np.vstack([X, 3 * X])
    acts, _ = ref.forward(X_test, clf.coefs_, clf.intercepts_, MIXED, "softmax")
    tol = ref.forward_tolerance(X_test, clf.coefs_, clf.intercepts_, MIXED, "softmax", work)
    ref.assert_within(clf.predict_proba(X_test), acts[-1], tol)
    # and a network of one activation everywhere predicts otherwise
    other = copy.deepcopy(clf).set_params(activation="tanh")
    assert not np.allclose(other.predict_proba(X_test), clf.predict_proba(X_test))


def test_regressor_predict_is_the_numpy_forward_pass(global_random_seed):
    X, y = _data(global_random_seed, "regressor")
    acts_names = ("softplus", "leaky_relu", "elu")
    reg = cymlp.MLPRegressor(hidden_layer_sizes=HIDDEN, activation=acts_names, negative_slope=0.2,
                             max_iter=30, random_state=global_random_seed).fit(X, y)
    acts, _ = ref.forward(X, reg.coefs_, reg.intercepts_, acts_names, "identity", 0.2)
    tol = ref.forward_tolerance(X, reg.coefs_, reg.intercepts_, acts_names, "identity",
                                np.float64, slope=0.2)
    ref.assert_within(reg.predict(X), acts[-1], tol)


# ---------------------------------------------------------------------------
# (c) the loss gradient of a mixed network
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("out_act", ["softmax", "identity"])
@pytest.mark.parametrize("hidden", [("gelu", "tanh"), ("logistic", "silu"),
                                    ("softplus", "identity")])
def test_gradient_vs_finite_differences(hidden, out_act, dtype, sparse, global_random_seed):
    # smooth activations only: test_gradients' handling of kinks reads one name
    rng = np.random.RandomState(global_random_seed)
    units, params, X, Y, sw = _problem(rng, "tanh", out_act, dtype)
    net = _engine.Network(units, list(hidden), out_act, ref.OUTPUTS[out_act],
                          negative_slope=SLOPE)
    Xin = sp.csr_matrix(X) if sparse else X
    _check_gradient(net, Xin, Y, sw, params, units, hidden, out_act, 0.3, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("hidden", [("relu", "gelu"), ("leaky_relu", "logistic"),
                                    ("elu", "relu")])
def test_gradient_is_the_numpy_backward_pass(hidden, dtype, global_random_seed):
    # kinked activations too: the analytic numpy gradient, in longdouble
    rng = np.random.RandomState(global_random_seed)
    units, params, X, Y, sw = _problem(rng, "tanh", "softmax", dtype)
    net = _engine.Network(units, hidden, "softmax", "log_loss", negative_slope=SLOPE)
    loss, grad = _engine.Trainer(net, dtype, X.shape[0]).loss_grad(X, Y, sw, params.copy(), 0.3)
    value, want = ref.loss_and_grad(X, Y, sw, params, units, hidden, "softmax", "log_loss",
                                    0.3, dtype, SLOPE)
    scale = ref.gradient_scale(X, Y, sw, params, units, hidden, "softmax", 0.3, SLOPE)
    ref.assert_within(grad, want, 64 * ref.eps(dtype) * scale)
    np.testing.assert_allclose(loss, float(value), rtol=1e-4 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("hidden", [("gelu", "relu"), ("relu", "silu"), ("tanh", "gelu")])
def test_float32_forward_float64_backward_gradient(hidden, global_random_seed):
    # scikit-learn's arithmetic for float32 weights beside float64 targets
    # (cymlp._float64_backward): the forward pass in float32, the rest in
    # float64; only the layers whose derivative reads z keep it
    rng = np.random.RandomState(global_random_seed)
    units, params, X, Y, _ = _problem(rng, "tanh", "identity", np.float32)
    X, params = X.astype(np.float64), params.astype(np.float64)
    net = _engine.Network(units, hidden, "identity", "squared_error")
    trainer = _engine.Trainer(net, np.float64, X.shape[0], float32_weights=True)
    loss, grad = trainer.loss_grad(X, Y.astype(np.float64), None, params, 0.3)
    value, want = ref.loss_and_grad(X, Y, None, params, units, hidden, "identity",
                                    "squared_error", 0.3, np.float64)
    scale = ref.gradient_scale(X, Y, None, params, units, hidden, "identity", 0.3)
    ref.assert_within(grad, want, 64 * ref.eps(np.float32) * scale)
    np.testing.assert_allclose(loss, float(value), rtol=1e-5)


# ---------------------------------------------------------------------------
# (d) one optimizer step against numpy, from scikit-learn's Glorot draw
# ---------------------------------------------------------------------------
def _glorot(seed, units, hidden):
    """The initial weights, drawn as scikit-learn draws them, with each layer's
    factor from its own activation (the output layer's from the last hidden)."""
    rs = np.random.RandomState(seed)
    names = list(hidden) + [hidden[-1]]
    coefs, intercepts = [], []
    for name, fan_in, fan_out in zip(names, units[:-1], units[1:]):
        bound = np.sqrt((2.0 if name == "logistic" else 6.0) / (fan_in + fan_out))
        coefs.append(rs.uniform(-bound, bound, (fan_in, fan_out)))
        intercepts.append(rs.uniform(-bound, bound, fan_out))
    return np.concatenate([c.ravel() for c in coefs] + intercepts)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_one_step_is_the_numpy_step(solver, global_random_seed):
    hidden = ("logistic", "gelu", "relu")
    X, y = _data(global_random_seed, "regressor", n=30)
    units = [X.shape[1], *HIDDEN, y.shape[1]]
    lr, alpha = 0.05, 0.01
    reg = cymlp.MLPRegressor(hidden_layer_sizes=HIDDEN, activation=hidden, solver=solver, batch_size=len(X),
                             shuffle=False, momentum=0.0, learning_rate_init=lr,
                             alpha=alpha, random_state=global_random_seed)
    reg.partial_fit(X, y)  # draws the weights, then one full-batch step
    # (logistic's Glorot factor 2 for the first layer only: a step from
    # weights drawn with another factor would be far off)
    w0 = _glorot(global_random_seed, units, hidden)
    _, g = ref.loss_and_grad(X, y, None, w0, units, hidden, "identity", "squared_error",
                             alpha, np.float64)
    g = g.astype(np.float64)
    if solver == "sgd":
        w1 = w0 - lr * g
    else:
        b1, b2, eps = 0.9, 0.999, 1e-8
        m, v = (1 - b1) * g, (1 - b2) * g * g
        lr_t = lr * np.sqrt(1 - b2) / (1 - b1)
        w1 = w0 - lr_t * m / (np.sqrt(v) + eps)
    got = np.concatenate([c.ravel() for c in reg.coefs_] + reg.intercepts_)
    np.testing.assert_allclose(got, w1, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------
# (e) errors
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(ESTIMATORS))
@pytest.mark.parametrize("activation, match", [
    (["relu"], r"activation has 1 entries but the network has 3 hidden layer"),
    (("relu", "tanh", "relu", "tanh"), r"activation has 4 entries"),
    (["relu", "swish", "tanh"], r"activation\[1\]='swish' is not one of"),
    (["relu", "tanh", "softmax"], r"activation\[2\]='softmax' is not one of"),
    (["relu", 3, "tanh"], r"activation\[1\]=3 is not one of"),
    (["relu", None, "tanh"], r"activation\[1\]=None is not one of"),
    ([], r"activation is an empty list"),
    ((), r"activation is an empty tuple"),
])
def test_bad_sequences_are_refused(kind, activation, match):
    X, y = _data(0, kind, n=20)
    est = ESTIMATORS[kind](hidden_layer_sizes=HIDDEN, activation=activation, max_iter=2)
    with pytest.raises(ValueError, match=match):
        est.fit(X, y)
    assert not hasattr(est, "coefs_")


def test_sequence_without_hidden_layers_is_refused():
    X, y = _data(0, n=20)
    with pytest.raises(ValueError, match="activation is an empty list"):
        cymlp.MLPClassifier((), activation=[]).fit(X, y)
    with pytest.raises(ValueError, match="network has 0 hidden layer"):
        cymlp.MLPClassifier((), activation=["relu"]).fit(X, y)


@pytest.mark.parametrize("activation", ["swish", np.array(["relu", "relu"]), 3, None])
def test_other_types_get_sklearns_parameter_error(activation):
    X, y = _data(0, n=20)
    with pytest.raises(InvalidParameterError, match="The 'activation' parameter"):
        cymlp.MLPClassifier((4, 3), activation=activation).fit(X, y)


@pytest.mark.parametrize("activation", ["swish", 3, np.array(["relu"])])
def test_other_values_get_sklearns_message(activation):
    from _parity import messages_equivalent
    from sklearn.neural_network import MLPClassifier as SkMLPClassifier

    X, y = _data(0, n=20)
    with pytest.raises(InvalidParameterError) as sk:
        SkMLPClassifier(activation=activation).fit(X, y)
    with pytest.raises(InvalidParameterError) as cy:
        cymlp.MLPClassifier(activation=activation).fit(X, y)
    # scikit-learn's message, listing cymlp's further names (the list or
    # tuple form is a hidden constraint: documented, not in the message)
    assert messages_equivalent(str(cy.value), str(sk.value))


def test_hidden_layer_change_on_warm_start_is_refused(global_random_seed):
    X, y = _data(global_random_seed)
    est = cymlp.MLPClassifier((5, 4), activation=["tanh", "relu"], warm_start=True,
                              max_iter=3, random_state=0).fit(X, y)
    est.set_params(activation=["tanh", "relu", "gelu"])
    with pytest.raises(ValueError, match="activation has 3 entries"):
        est.fit(X, y)
    with pytest.raises(ValueError, match="activation has 3 entries"):
        est.predict(X)


def test_engine_checks_its_activations():
    with pytest.raises(ValueError, match="1 hidden activations for 2 hidden layers"):
        _engine.Network([3, 4, 4, 1], ["relu"], "identity", "squared_error")
    with pytest.raises(ValueError, match="unknown hidden activation 'softmax'"):
        _engine.Network([3, 4, 4, 1], ["relu", "softmax"], "identity", "squared_error")
    net = _engine.Network([3, 4, 4, 1], ("relu", "gelu"), "identity", "squared_error")
    assert net.hidden_activations == ["relu", "gelu"]
    assert _engine.Network([3, 4, 4, 1], "tanh", "identity", None).hidden_activations == [
        "tanh", "tanh"]


# ---------------------------------------------------------------------------
# (f) transform and hidden_activations, layer by layer
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("kind", list(ESTIMATORS))
def test_hidden_activations_are_the_numpy_layers(kind, dtype, global_random_seed):
    X, y = _data(global_random_seed, kind, dtype=dtype)
    names = ("logistic", "silu", "leaky_relu")
    est = ESTIMATORS[kind](hidden_layer_sizes=HIDDEN, activation=names, max_iter=10,
                           random_state=global_random_seed).fit(X, y)
    out = "softmax" if kind == "classifier" else "identity"
    acts, _ = ref.forward(X, est.coefs_, est.intercepts_, names, out)
    for k in range(len(HIDDEN)):
        tol = ref.forward_tolerance(X, est.coefs_[:k + 1], est.intercepts_[:k + 1],
                                    names[:k], names[k], dtype)
        got = est.hidden_activations(X, layer=k)
        assert got.dtype == dtype
        ref.assert_within(got, acts[k + 1], tol, err_msg=f"layer {k}")
        assert_array_equal(est.hidden_activations(X, layer=k - len(HIDDEN)), got)
    assert_array_equal(est.transform(X), est.hidden_activations(X, layer=-1))


# ---------------------------------------------------------------------------
# (g) ONNX
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("kind", list(ESTIMATORS))
def test_onnx_export_of_a_mixed_network(kind, dtype, global_random_seed):
    pytest.importorskip("skl2onnx")
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    X, y = _data(global_random_seed, kind, dtype=dtype)
    names = ["gelu", "leaky_relu", "logistic"]
    est = ESTIMATORS[kind](hidden_layer_sizes=HIDDEN, activation=names, negative_slope=0.1, max_iter=30,
                           random_state=global_random_seed).fit(X, y)
    model = cymlp.to_onnx(est, X[:5])
    onnx.checker.check_model(model)
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    X_test = np.vstack([X, 4 * X]).astype(dtype)
    outputs = session.run(None, {session.get_inputs()[0].name: X_test})
    atol = 2e-6 if dtype == np.float32 else 1e-12
    if kind == "classifier":
        np.testing.assert_allclose(outputs[1], est.predict_proba(X_test), rtol=0, atol=atol)
    else:
        np.testing.assert_allclose(outputs[0], est.predict(X_test), rtol=0, atol=atol * 10)


# ---------------------------------------------------------------------------
# (h) clone, pickle, skops, warm_start, partial_fit, the HTML repr
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("activation", [["tanh", "gelu", "relu"], ("tanh", "gelu", "relu")])
def test_clone_and_pickle_round_trip(activation, global_random_seed):
    X, y = _data(global_random_seed)
    est = cymlp.MLPClassifier(hidden_layer_sizes=HIDDEN, activation=activation, max_iter=5,
                              random_state=global_random_seed).fit(X, y)
    cloned = clone(est)
    assert cloned.activation == activation and type(cloned.activation) is type(activation)
    _assert_same_fit(cloned.fit(X, y), est)
    restored = pickle.loads(pickle.dumps(est))
    assert restored.get_params() == est.get_params()
    assert_array_equal(restored.predict_proba(X), est.predict_proba(X))
    # training continues exactly where it stopped
    est.partial_fit(X, y)
    restored.partial_fit(X, y)
    _assert_same_fit(restored, est)


def test_skops_round_trip(global_random_seed):
    sio = pytest.importorskip("skops.io")
    X, y = _data(global_random_seed, "regressor")
    est = cymlp.MLPRegressor(hidden_layer_sizes=HIDDEN, activation=["softplus", "elu", "tanh"], max_iter=5,
                             random_state=global_random_seed).fit(X, y)
    loaded = sio.loads(sio.dumps(est), trusted=[cymlp.MLPRegressor])
    assert loaded.activation == est.activation
    assert_array_equal(loaded.predict(X), est.predict(X))
    est.partial_fit(X, y)
    loaded.partial_fit(X, y)
    _assert_same_fit(loaded, est)


def test_warm_start_continues_like_one_fit(global_random_seed):
    # sgd without momentum or shuffling: a warm start's epochs are the
    # following epochs of one longer fit (scikit-learn's arithmetic)
    X, y = _data(global_random_seed)
    params = dict(hidden_layer_sizes=(6, 4), activation=["elu", "logistic"], solver="sgd",
                  momentum=0.0, shuffle=False, learning_rate_init=0.05,
                  random_state=global_random_seed)
    warm = cymlp.MLPClassifier(warm_start=True, max_iter=3, **params).fit(X, y)
    warm.fit(X, y)
    _assert_same_fit(warm, cymlp.MLPClassifier(max_iter=6, **params).fit(X, y), n_iter=False)


@pytest.mark.parametrize("solver", ["sgd", "adam", "adamw"])
def test_partial_fit_epochs_are_fit_epochs(solver, global_random_seed):
    X, y = _data(global_random_seed)
    params = dict(hidden_layer_sizes=(6, 4), activation=("gelu", "relu"), solver=solver,
                  shuffle=False, random_state=global_random_seed)
    est = cymlp.MLPClassifier(**params)
    for _ in range(3):
        est.partial_fit(X, y, classes=[0, 1, 2])
    _assert_same_fit(est, cymlp.MLPClassifier(max_iter=3, **params).fit(X, y), n_iter=False)


def test_html_repr_shows_the_sequence():
    est = cymlp.MLPClassifier((8, 4), activation=["tanh", "gelu"])
    html = est._repr_html_()
    assert "[&#x27;tanh&#x27;, &#x27;gelu&#x27;]" in html or "['tanh', 'gelu']" in html
    assert "activation=['tanh', 'gelu']" in repr(est)


# ---------------------------------------------------------------------------
# (i) the same bits with any number of threads
# ---------------------------------------------------------------------------
@pytest.mark.skipif(not _engine.OPENMP, reason="built without OpenMP: always serial")
@pytest.mark.usefixtures("teams_whatever_the_load")  # conftest
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("config", [dict(solver="adam"), dict(solver="sgd"),
                                    dict(solver="lbfgs"), dict(solver="adam", dropout=0.3)],
                         ids=["adam", "sgd", "lbfgs", "dropout"])
def test_same_bits_any_thread_count(config, dtype, global_random_seed):
    rng = np.random.RandomState(global_random_seed)
    X = rng.normal(size=(768, 256)).astype(dtype)
    y = rng.randint(0, 5, size=768)
    results = {}
    for n in (1, 2, 4, 8):
        api = "openmp" if config["solver"] == "lbfgs" else None
        with threadpool_limits(n, user_api=api):
            _testing._thread_stats()
            est = cymlp.MLPClassifier((128, 64), activation=["gelu", "tanh"], batch_size=256,
                                      max_iter=3, random_state=global_random_seed,
                                      **config).fit(X, y)
            regions, _ = _testing._thread_stats()
            results[n] = _weights(est) + [est.predict_proba(X)]
        assert (regions == 0) == (n == 1), (n, regions)
    for n in (2, 4, 8):
        for a, b in zip(results[n], results[1], strict=True):
            assert_array_equal(a, b, err_msg=f"{n} threads", strict=True)


# ---------------------------------------------------------------------------
# (d') the same against PyTorch (skipped without torch; .ci's torch stage runs it)
# ---------------------------------------------------------------------------
_TORCH_ACTIVATIONS = {
    "identity": lambda t, z: z, "logistic": lambda t, z: t.sigmoid(z),
    "tanh": lambda t, z: t.tanh(z), "relu": lambda t, z: t.relu(z),
    "leaky_relu": lambda t, z: t.nn.functional.leaky_relu(z, 0.01),
    "elu": lambda t, z: t.nn.functional.elu(z), "gelu": lambda t, z: t.nn.functional.gelu(z),
    "silu": lambda t, z: t.nn.functional.silu(z),
    "softplus": lambda t, z: t.nn.functional.softplus(z),
}


def _torch_loss(torch, X, labels, weights, hidden, alpha):
    """scikit-learn's objective of a classifier, in torch: the mean cross
    entropy plus 0.5 * alpha * sum ||W||^2 / n_samples."""
    L = len(weights) // 2
    a = torch.tensor(X)
    for i in range(L):
        a = a @ weights[i] + weights[L + i]
        if i < L - 1:
            a = _TORCH_ACTIVATIONS[hidden[i]](torch, a)
    value = torch.nn.CrossEntropyLoss()(a, torch.tensor(labels))
    return value + 0.5 * alpha * sum((w ** 2).sum() for w in weights[:L]) / X.shape[0]


@pytest.mark.parametrize("hidden", [("tanh", "gelu", "relu"), ("silu", "logistic", "elu"),
                                    ("softplus", "leaky_relu", "identity")])
def test_gradient_matches_torch(hidden, global_random_seed):
    torch = pytest.importorskip("torch")
    X, y = _data(global_random_seed)
    alpha = 0.1
    est = cymlp.MLPClassifier(hidden_layer_sizes=HIDDEN, activation=hidden, solver="lbfgs",
                              alpha=alpha, max_iter=5, random_state=global_random_seed)
    est.fit(X, y)
    layer_units = [X.shape[1], *HIDDEN, 3]
    network = est._network(layer_units)
    params = np.concatenate([w.ravel() for w in _weights(est)])
    Y = np.eye(3)[y]
    loss, grad = _engine.Trainer(network, np.float64, len(X)).loss_grad(X, Y, None, params,
                                                                         alpha)
    weights = [torch.tensor(w, requires_grad=True) for w in _weights(est)]
    value = _torch_loss(torch, X, y, weights, hidden, alpha)
    value.backward()
    assert loss == pytest.approx(float(value.detach()), rel=1e-12)
    want = np.concatenate([w.grad.numpy().ravel() for w in weights])
    np.testing.assert_allclose(grad, want, rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_one_step_matches_torch(solver, global_random_seed):
    torch = pytest.importorskip("torch")
    hidden = ("logistic", "gelu", "relu")
    X, y = _data(global_random_seed, n=30)
    units = [X.shape[1], *HIDDEN, 3]
    # adam: torch adds eps after the bias correction, scikit-learn before;
    # an eps far below every |gradient| makes the two the same step
    lr, alpha, eps = 0.05, 0.01, 1e-30
    est = cymlp.MLPClassifier(hidden_layer_sizes=HIDDEN, activation=hidden, solver=solver,
                              batch_size=len(X), shuffle=False, momentum=0.0,
                              learning_rate_init=lr, alpha=alpha, epsilon=eps,
                              random_state=global_random_seed)
    est.partial_fit(X, y, classes=[0, 1, 2])
    # torch's step from scikit-learn's Glorot draw, factor per layer
    w0 = _glorot(global_random_seed, units, hidden)
    coefs, intercepts = ref.unpack(w0, units)
    weights = [torch.tensor(np.ascontiguousarray(w), requires_grad=True)
               for w in coefs + intercepts]
    optimizer = (torch.optim.SGD(weights, lr=lr) if solver == "sgd"
                 else torch.optim.Adam(weights, lr=lr, eps=eps))
    _torch_loss(torch, X, y, weights, hidden, alpha).backward()
    optimizer.step()
    for got, w in zip(_weights(est), weights, strict=True):
        np.testing.assert_allclose(got, w.detach().numpy(), rtol=1e-9, atol=1e-13)
