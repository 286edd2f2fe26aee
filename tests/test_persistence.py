"""Determinism and persistence.

* The same seed gives bit-for-bit the same weights, in one process and in a
  fresh one (BLAS limited to one thread, so its summation order is fixed).
* pickle and joblib round trips (also joblib's read-only memory maps) give
  bit-for-bit the same predictions.
* A model pickled and then trained further (warm_start fit, partial_fit)
  ends exactly where the original would have: nothing of the training state
  (optimizer moments, step counts, learning rate, random stream) is lost.
  The original's continuation is the reference here; scikit-learn's own
  pickled-and-continued model is the reference for the result (to rounding).
"""

import io
import os
import pickle
import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor

import cymlp

SOLVERS = ["sgd", "adam", "lbfgs"]
DTYPES = [np.float32, np.float64]
DT_IDS = ["f32", "f64"]


# BLAS on one thread (bitwise reproducibility is promised with the BLAS
# threads fixed); warnings (the ConvergenceWarning of the short fits) ignored
pytestmark = pytest.mark.usefixtures("one_blas_thread", "quiet")


def _data(seed, kind="multiclass", n=80, dtype=np.float64):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 5)).astype(dtype)
    if kind == "multiclass":
        y = np.argmax(X[:, :3] + 0.3 * rng.normal(size=(n, 3)), axis=1)
    elif kind == "binary":
        y = (X[:, 0] > 0).astype(int)
    elif kind == "multilabel":
        y = (X[:, :3] > 0).astype(int)
    else:
        y = X @ rng.normal(size=5) + 0.1 * rng.normal(size=n)
    return X, y


def _estimator(kind, **params):
    cls = cymlp.MLPRegressor if kind == "regression" else cymlp.MLPClassifier
    params.setdefault("hidden_layer_sizes", (7, 4))
    params.setdefault("max_iter", 15)
    return cls(**params)


def _weights(est):
    return [np.array(a) for a in est.coefs_ + est.intercepts_]


def assert_same_weights(a, b):
    wa, wb = _weights(a), _weights(b)
    assert len(wa) == len(wb)
    for x, y in zip(wa, wb):
        assert x.dtype == y.dtype
        assert_array_equal(x, y)


def assert_same_outputs(a, b, X):
    assert_array_equal(a.predict(X), b.predict(X))
    if hasattr(a, "predict_proba"):
        assert_array_equal(a.predict_proba(X), b.predict_proba(X))


# ---------------------------------------------------------------------------
# Determinism
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("kind", ["multiclass", "multilabel", "regression"])
def test_same_seed_same_weights(kind, solver, dtype, global_random_seed):
    X, y = _data(global_random_seed, kind, dtype=dtype)
    params = dict(solver=solver, random_state=global_random_seed, batch_size=16)
    a = _estimator(kind, **params).fit(X, y)
    b = _estimator(kind, **params).fit(X, y)
    assert_same_weights(a, b)
    assert a.n_iter_ == b.n_iter_
    if solver != "lbfgs":
        assert_array_equal(a.loss_curve_, b.loss_curve_)
    assert_same_outputs(a, b, X)


@pytest.mark.parametrize("variant", ["early_stopping", "sparse", "dropout", "random_state_instance"])
def test_same_seed_same_weights_variants(variant, global_random_seed):
    X, y = _data(global_random_seed, "multiclass", n=120)
    params = dict(solver="adam", random_state=global_random_seed, batch_size=16)
    if variant == "early_stopping":
        params.update(early_stopping=True, validation_fraction=0.2)
    elif variant == "sparse":
        X = sp.csr_matrix(np.where(np.abs(X) < 0.5, 0, X))
    elif variant == "dropout":
        if "dropout" not in cymlp.MLPClassifier().get_params():
            pytest.skip("no dropout parameter")
        params.update(dropout=0.3)

    def make():
        p = dict(params)
        if variant == "random_state_instance":
            p["random_state"] = np.random.RandomState(global_random_seed)
        return _estimator("multiclass", **p)

    a, b = make().fit(X, y), make().fit(X, y)
    assert_same_weights(a, b)
    assert_array_equal(a.loss_curve_, b.loss_curve_)


_FRESH_PROCESS = textwrap.dedent("""
    import sys, warnings
    import numpy as np
    from threadpoolctl import threadpool_limits
    import cymlp
    warnings.simplefilter("ignore")
    data = np.load(sys.argv[1])
    out = {}
    with threadpool_limits(limits=1):
        for dtype in ("float32", "float64"):
            for solver in ("sgd", "adam", "lbfgs"):
                est = cymlp.MLPClassifier(hidden_layer_sizes=(7, 4), max_iter=15,
                                          solver=solver, batch_size=16,
                                          random_state=int(data["seed"]))
                est.fit(data["X"].astype(dtype), data["y"])
                for i, w in enumerate(est.coefs_ + est.intercepts_):
                    out[f"{dtype}-{solver}-{i}"] = w
    np.savez(sys.argv[2], **out)
""")


def test_same_weights_in_a_fresh_process(tmp_path, global_random_seed):
    # another interpreter: other addresses, other allocation alignment, a
    # freshly loaded BLAS; the weights must still be identical to the bit
    X, y = _data(global_random_seed, "multiclass")
    inp, out = tmp_path / "data.npz", tmp_path / "weights.npz"
    np.savez(inp, X=X, y=y, seed=global_random_seed)
    proc = subprocess.run([sys.executable, "-c", _FRESH_PROCESS, str(inp), str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    other = np.load(out)
    for dtype in (np.float32, np.float64):
        for solver in SOLVERS:
            est = _estimator("multiclass", solver=solver, batch_size=16,
                             random_state=global_random_seed).fit(X.astype(dtype), y)
            for i, w in enumerate(_weights(est)):
                key = f"{np.dtype(dtype).name}-{solver}-{i}"
                assert_array_equal(w, other[key], err_msg=key)


# ---------------------------------------------------------------------------
# Round trips
# ---------------------------------------------------------------------------
def _round_trips(est, tmp_path, mmap=True):
    """The estimator after each kind of round trip."""
    yield "pickle", pickle.loads(pickle.dumps(est))
    yield "pickle-protocol-2", pickle.loads(pickle.dumps(est, protocol=2))
    path = tmp_path / "model.joblib"
    joblib.dump(est, path)
    yield "joblib", joblib.load(path)
    # read-only memory-mapped weights: predict must not need to write them
    if mmap:
        yield "joblib-mmap", joblib.load(path, mmap_mode="r")
    buf = io.BytesIO()
    joblib.dump(est, buf, compress=3)
    buf.seek(0)
    yield "joblib-compressed", joblib.load(buf)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel", "regression"])
def test_round_trip_predictions_identical(kind, solver, dtype, tmp_path, global_random_seed):
    X, y = _data(global_random_seed, kind, dtype=dtype)
    est = _estimator(kind, solver=solver, random_state=global_random_seed).fit(X, y)
    X_test = _data(global_random_seed + 1, kind, dtype=dtype)[0]
    for how, clone in _round_trips(est, tmp_path):
        assert type(clone) is type(est), how
        assert_same_weights(est, clone)
        assert_same_outputs(est, clone, X_test)
        assert_same_outputs(est, clone, sp.csr_matrix(X_test))
        assert clone.get_params() == est.get_params()
        for attr in ("n_iter_", "n_layers_", "n_outputs_", "out_activation_",
                     "n_features_in_", "t_"):
            assert getattr(clone, attr) == getattr(est, attr), (how, attr)
        if solver != "lbfgs":
            assert_array_equal(clone.loss_curve_, est.loss_curve_)
        if kind != "regression":
            assert_array_equal(clone.classes_, est.classes_)
            assert clone.score(X, y) == est.score(X, y)


def test_round_trip_unfitted_and_feature_names(tmp_path, global_random_seed):
    pd = pytest.importorskip("pandas")
    X, y = _data(global_random_seed, "multiclass")
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    unfitted = _estimator("multiclass", random_state=global_random_seed)
    clone = pickle.loads(pickle.dumps(unfitted))
    assert clone.get_params() == unfitted.get_params()
    # an unpickled unfitted model fits exactly like the original
    a, b = unfitted.fit(df, y), clone.fit(df, y)
    assert_same_weights(a, b)
    for how, c in _round_trips(a, tmp_path):
        assert_array_equal(c.feature_names_in_, a.feature_names_in_)
        assert_same_outputs(a, c, df)


# ---------------------------------------------------------------------------
# Training continued after a round trip
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("kind", ["multiclass", "regression"])
def test_warm_start_after_round_trip(kind, solver, dtype, tmp_path, global_random_seed):
    X, y = _data(global_random_seed, kind, dtype=dtype)
    X2, y2 = _data(global_random_seed + 7, kind, dtype=dtype)
    if kind == "multiclass":
        y2 = np.where(np.isin(y2, np.unique(y)), y2, y[0])  # the same classes
    est = _estimator(kind, solver=solver, warm_start=True, max_iter=6,
                     random_state=global_random_seed).fit(X, y)
    clones = list(_round_trips(est, tmp_path))
    est.fit(X2, y2)
    for how, clone in clones:
        clone.fit(X2, y2)
        assert_same_weights(est, clone)
        assert clone.n_iter_ == est.n_iter_ and clone.t_ == est.t_, how
        if solver != "lbfgs":
            assert_array_equal(clone.loss_curve_, est.loss_curve_)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("solver", ["sgd", "adam", "adamw"])
@pytest.mark.parametrize("kind", ["multiclass", "multilabel", "regression"])
def test_partial_fit_after_round_trip(kind, solver, dtype, tmp_path, global_random_seed):
    # Five partial_fit calls on one object, against two calls, a round trip,
    # and three more: identical weights. A RandomState instance as
    # random_state: its stream continues across calls, and must continue
    # identically in the copy. sgd with 'adaptive'/'invscaling' state is
    # covered by the learning rate carried along.
    X, y = _data(global_random_seed, kind, n=90, dtype=dtype)
    batches = np.array_split(np.arange(len(X)), 5)
    extra = dict(learning_rate="invscaling", power_t=0.3) if solver == "sgd" else {}
    if solver == "adamw":  # AdamW's decay and clipping (#23): their settings travel too
        extra = dict(weight_decay=0.1, max_grad_norm=0.5)

    def fresh():
        return _estimator(kind, solver=solver, batch_size=8,
                          random_state=np.random.RandomState(global_random_seed), **extra)

    def step(est, idx):
        if kind == "multiclass":
            est.partial_fit(X[idx], y[idx], classes=np.unique(y))
        elif kind == "multilabel":
            # scikit-learn wants classes on the first call here too: the
            # label indices
            est.partial_fit(X[idx], y[idx], classes=np.arange(y.shape[1]))
        else:
            est.partial_fit(X[idx], y[idx])

    reference = fresh()
    for idx in batches:
        step(reference, idx)

    first = fresh()
    for idx in batches[:2]:
        step(first, idx)
    # (memory-mapped: test_partial_fit_after_memory_mapped_load)
    for how, clone in _round_trips(first, tmp_path, mmap=False):
        for idx in batches[2:]:
            step(clone, idx)
        assert_same_weights(reference, clone)
        assert clone.t_ == reference.t_, how
        assert_array_equal(clone.loss_curve_, reference.loss_curve_)
        assert_same_outputs(reference, clone, X)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_partial_fit_after_round_trip_matches_sklearn(solver, global_random_seed):
    # the same sequence (two partial_fits, pickle, two more) with scikit-learn
    # itself: cymlp's result equals scikit-learn's to floating-point rounding
    X, y = _data(global_random_seed, "multiclass", n=90)
    batches = np.array_split(np.arange(len(X)), 4)
    results = []
    for cls in (SkMLPClassifier, cymlp.MLPClassifier):
        est = cls(hidden_layer_sizes=(7, 4), solver=solver, batch_size=8,
                  random_state=np.random.RandomState(global_random_seed))
        for i, idx in enumerate(batches):
            if i == 2:
                est = pickle.loads(pickle.dumps(est))
            est.partial_fit(X[idx], y[idx], classes=np.unique(y))
        results.append(est)
    sk, cy = results
    for a, b in zip(sk.coefs_ + sk.intercepts_, cy.coefs_ + cy.intercepts_):
        assert_allclose(b, a, rtol=1e-7, atol=1e-10)
    assert_allclose(cy.loss_curve_, sk.loss_curve_, rtol=1e-7)


def test_regressor_partial_fit_after_round_trip_matches_sklearn(global_random_seed):
    X, y = _data(global_random_seed, "regression", n=90)
    batches = np.array_split(np.arange(len(X)), 4)
    results = []
    for cls in (SkMLPRegressor, cymlp.MLPRegressor):
        est = cls(hidden_layer_sizes=(7,), solver="adam", batch_size=8,
                  random_state=np.random.RandomState(global_random_seed))
        for i, idx in enumerate(batches):
            if i == 2:
                buf = io.BytesIO()
                joblib.dump(est, buf)
                buf.seek(0)
                est = joblib.load(buf)
            est.partial_fit(X[idx], y[idx])
        results.append(est)
    sk, cy = results
    for a, b in zip(sk.coefs_ + sk.intercepts_, cy.coefs_ + cy.intercepts_):
        assert_allclose(b, a, rtol=1e-7, atol=1e-10)


def test_memory_mapped_model_trains_further(tmp_path, global_random_seed):
    # joblib's mmap_mode='r' gives read-only weight arrays: further training
    # must work on a private copy and leave the file untouched
    X, y = _data(global_random_seed, "multiclass")
    est = _estimator("multiclass", solver="adam", warm_start=True, max_iter=5,
                     random_state=global_random_seed).fit(X, y)
    path = tmp_path / "m.joblib"
    joblib.dump(est, path)
    before = path.read_bytes()
    mm = joblib.load(path, mmap_mode="r")
    assert any(isinstance(c, np.memmap) or not c.flags.writeable for c in mm.coefs_)
    est.fit(X, y)
    mm.fit(X, y)
    assert_same_weights(est, mm)
    assert path.read_bytes() == before
    assert os.path.getsize(path) == len(before)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_partial_fit_after_memory_mapped_load(solver, tmp_path, global_random_seed):
    # joblib.load(mmap_mode="r") maps every numpy array of the pickle
    # read-only, the optimizer's moment buffers included. cymlp copies the
    # read-only weights into a fresh parameter buffer before training, and
    # must do the same for the optimizer state: partial_fit continues exactly
    # as the original model would. (scikit-learn itself raises "output array
    # is read-only" here, from its in-place updates of the mapped weights.)
    X, y = _data(global_random_seed, "multiclass", n=90)
    est = _estimator("multiclass", solver=solver, batch_size=8,
                     random_state=np.random.RandomState(global_random_seed))
    est.partial_fit(X[:45], y[:45], classes=np.unique(y))
    path = tmp_path / "m.joblib"
    joblib.dump(est, path)
    mm = joblib.load(path, mmap_mode="r")
    est.partial_fit(X[45:], y[45:])
    mm.partial_fit(X[45:], y[45:])
    assert_same_weights(est, mm)


# ---------------------------------------------------------------------------
# skops: the ecosystem's format that loads no code it was not told to trust
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs", "adamw"])
@pytest.mark.parametrize("name", ["MLPClassifier", "MLPRegressor"])
def test_skops_round_trip_trusting_only_the_public_classes(name, solver,
                                                           global_random_seed):
    sio = pytest.importorskip("skops.io")
    X, y = _data(global_random_seed, "multiclass", n=60)
    if name == "MLPRegressor":
        X, y = X[:, 1:], X[:, 0]
    cls = getattr(cymlp, name)
    extra = dict(weight_decay=0.2, max_grad_norm=0.5) if solver == "adamw" else {}
    est = cls(hidden_layer_sizes=(5,), solver=solver, max_iter=3,
              random_state=global_random_seed, **extra)
    est.fit(X, y)  # (ConvergenceWarning silenced by the module's `quiet`)
    data = sio.dumps(est)
    # the only type skops does not know is the estimator class itself: the
    # optimizer's state travels as plain numbers and arrays
    assert sio.get_untrusted_types(data=data) == ["%s.%s" % (cls.__module__, name)]
    loaded = sio.loads(data, trusted=[cls])
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    if solver != "lbfgs":
        # training continues exactly where it stopped
        est.partial_fit(X, y)
        loaded.partial_fit(X, y)
        assert_same_weights(est, loaded)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_optimizer_state_with_every_solvers_settings_loads(solver, global_random_seed):
    # Before the optimizers became one class per solver (#21), the stored
    # optimizer dict held every solver's settings. Such a state loads, its
    # class is the solver's, and training continues exactly as the original.
    X, y = _data(global_random_seed, "multiclass", n=90)
    est = _estimator("multiclass", solver=solver, batch_size=8,
                     learning_rate="invscaling", random_state=global_random_seed)
    est.partial_fit(X[:45], y[:45], classes=np.unique(y))
    state = est.__getstate__()
    old = dict(state["_optimizer"])
    for name in ("learning_rate_init", "power_t", "momentum", "nesterovs_momentum",
                 "beta_1", "beta_2", "epsilon"):
        old.setdefault(name, est.get_params()[name])
    old.setdefault("lr_schedule", est.learning_rate)
    state["_optimizer"] = old
    clone = type(est).__new__(type(est))
    clone.__setstate__(state)
    assert type(clone._optimizer) is type(est._optimizer)
    est.partial_fit(X[45:], y[45:])
    clone.partial_fit(X[45:], y[45:])
    assert_same_weights(est, clone)
    assert clone.t_ == est.t_
