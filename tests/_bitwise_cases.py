"""The cases of the bitwise fixture (tests/test_bitwise_fixture.py).

Each case trains a small estimator on shapes large enough that the engine's
parallel passes really split (as tests/test_threads.py's) and records a
SHA-256 digest of everything a fit produces: every coefficient and intercept,
the loss curve, the validation scores and the predictions. The digests were
written by ``python tests/_bitwise_cases.py`` before the engine was split into
a package (issue #21) and must be reproduced after any change that is meant to
move no bit: a refactoring, a new module layout, a faster kernel with the same
arithmetic. They are a fixture of this machine's bits (its OpenBLAS kernels),
recorded with the machine's signature. ``python tests/_bitwise_cases.py
lbfgs`` records only the cases whose names contain "lbfgs".
"""

import hashlib
import json
import os
import platform
import warnings

import numpy as np
import scipy.sparse as sp

N_SAMPLES, N_FEATURES, HIDDEN, BATCH = 512, 256, (96, 64), 128
FIXTURE = os.path.join(os.path.dirname(__file__), "data", "bitwise_fixture.json")

_HIDDEN = ["identity", "logistic", "tanh", "relu", "leaky_relu", "elu", "gelu", "silu",
           "softplus"]


def _cases():
    """name -> (estimator kind, parameters, data options)."""
    cases = {}
    for act in _HIDDEN:
        cases[f"clf-adam-{act}"] = ("clf", dict(solver="adam", activation=act), {})
    cases["clf-sgd-nesterov"] = ("clf", dict(solver="sgd", learning_rate_init=0.01), {})
    cases["clf-sgd-momentum-invscaling"] = ("clf", dict(
        solver="sgd", nesterovs_momentum=False, learning_rate="invscaling",
        learning_rate_init=0.05, activation="tanh"), {})
    cases["clf-sgd-adaptive"] = ("clf", dict(
        solver="sgd", learning_rate="adaptive", momentum=0.0, activation="logistic"), {})
    cases["clf-lbfgs-relu"] = ("clf", dict(solver="lbfgs"), {})
    cases["clf-lbfgs-tanh"] = ("clf", dict(solver="lbfgs", activation="tanh"), {})
    cases["clf-dropout"] = ("clf", dict(solver="adam", dropout=0.3), {})
    cases["clf-dropout-layers-gelu"] = ("clf", dict(solver="adam", dropout=[0.1, 0.4],
                                                    activation="gelu"), {})
    cases["clf-early-stopping"] = ("clf", dict(solver="adam", early_stopping=True,
                                               n_iter_no_change=99), {})
    cases["clf-binary"] = ("clf", dict(solver="adam"), {"classes": 2})
    cases["clf-multilabel"] = ("clf", dict(solver="adam"), {"multilabel": True})
    cases["clf-class-weight"] = ("clf", dict(solver="adam", class_weight="balanced"), {})
    cases["clf-sample-weight"] = ("clf", dict(solver="sgd"), {"sample_weight": True})
    cases["clf-sparse-adam"] = ("clf", dict(solver="adam"), {"sparse": True})
    cases["clf-sparse-lbfgs"] = ("clf", dict(solver="lbfgs"), {"sparse": True})
    cases["clf-sparse-dropout"] = ("clf", dict(solver="adam", dropout=0.2), {"sparse": True})
    for loss in ["squared_error", "poisson", "absolute_error", "huber", "quantile"]:
        params = dict(solver="adam", loss=loss)
        if loss == "quantile":
            params["quantile"] = 0.8
        cases[f"reg-adam-{loss}"] = ("reg", params, {"poisson": loss == "poisson"})
    cases["reg-sgd"] = ("reg", dict(solver="sgd", learning_rate_init=0.001), {})
    cases["reg-lbfgs"] = ("reg", dict(solver="lbfgs"), {})
    cases["reg-lbfgs-huber"] = ("reg", dict(solver="lbfgs", loss="huber"), {})
    cases["reg-early-stopping"] = ("reg", dict(solver="adam", early_stopping=True,
                                               n_iter_no_change=99), {})
    cases["reg-sparse"] = ("reg", dict(solver="adam", activation="tanh"), {"sparse": True})
    return cases


CASES = _cases()
DTYPES = {"f32": np.float32, "f64": np.float64}


def _data(kind, dtype, opts, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(N_SAMPLES, N_FEATURES)).astype(dtype)
    if opts.get("sparse"):
        X[rng.uniform(size=X.shape) < 0.7] = 0
    dense = X
    if kind == "reg":
        y = dense[:, :3] @ rng.normal(size=(3, 2))
        if opts.get("poisson"):
            y = np.exp(y / 4)
    elif opts.get("multilabel"):
        y = (dense[:, :3] > 0).astype(int)
    else:
        y = rng.randint(0, opts.get("classes", 5), size=N_SAMPLES)
    if opts.get("sparse"):
        X = sp.csr_matrix(X)
    sw = rng.uniform(0.5, 2.0, size=N_SAMPLES) if opts.get("sample_weight") else None
    return X, y, sw


def _lbfgs_case(kind, params, X, y, sw):
    """The engine's part of an lbfgs fit: the loss and gradient at the
    starting weights and at three points around them, with and without the
    L2 term. (A whole fit's bits also depend on scipy's L-BFGS-B, whose BLAS
    rounds its dot products according to the alignment of the arrays scipy
    allocates: they differ between processes that ran different code first,
    whatever the engine does.)"""
    from cymlp._engine import Network, Trainer

    dtype = X.dtype
    rng = np.random.RandomState(1)
    if kind == "reg":
        out, loss, Y = "identity", params.get("loss", "squared_error"), y
    else:
        out, loss, Y = "softmax", "log_loss", np.eye(5)[y]
    units = [X.shape[1], *HIDDEN, Y.shape[1]]
    net = Network(units, params.get("activation", "relu"), out, loss,
                  loss_param=1.0 if loss == "huber" else None)
    trainer = Trainer(net, dtype, max_rows=X.shape[0])
    Y = np.ascontiguousarray(Y, dtype=dtype)
    if sw is not None:
        sw = np.ascontiguousarray(sw, dtype=dtype)
    start = (rng.uniform(-1, 1, net.n_params) * 0.1).astype(dtype)
    parts = []
    for k in range(4):
        p = start + (rng.normal(size=net.n_params) * 0.01 * k).astype(dtype)
        for alpha in (0.0, 1e-3):
            value, grad = trainer.loss_grad(X, Y, sw, p, alpha)
            parts += [np.asarray([value]), grad.copy()]
    return parts, float(parts[0][0]), [float(v) for v in parts[1][:4]]


def run_case(name, dtype_name):
    """Fit case `name` in dtype `dtype_name` ('f32' or 'f64'); its digest and
    a few values to read when a digest differs. lbfgs cases: see _lbfgs_case."""
    import cymlp

    kind, params, opts = CASES[name]
    X, y, sw = _data(kind, DTYPES[dtype_name], opts)
    if params["solver"] == "lbfgs":
        parts, loss, first = _lbfgs_case(kind, params, X, y, sw)
        return {"sha256": _digest(parts), "first_weights": first, "loss": loss}
    cls = cymlp.MLPRegressor if kind == "reg" else cymlp.MLPClassifier
    est = cls(hidden_layer_sizes=HIDDEN, batch_size=BATCH, max_iter=3, random_state=0,
              **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y, sample_weight=sw)
    parts = list(est.coefs_) + list(est.intercepts_)
    parts.append(np.asarray(getattr(est, "loss_curve_", None) or [est.loss_]))
    if getattr(est, "validation_scores_", None) is not None:
        parts.append(np.asarray(est.validation_scores_))
    parts.append(np.asarray(est.predict(X)))
    if hasattr(est, "predict_proba"):
        parts.append(est.predict_proba(X))
    return {"sha256": _digest(parts),
            "first_weights": [float(v) for v in est.coefs_[0].ravel()[:4]],
            "loss": float(parts[len(est.coefs_) * 2][-1])}


def _digest(parts):
    h = hashlib.sha256()
    for p in parts:
        p = np.ascontiguousarray(p)
        h.update(str((p.dtype.str, p.shape)).encode())
        h.update(p.tobytes())
    return h.hexdigest()


def machine_signature():
    """What the bits depend on beyond the code: the architecture and the
    kernels of the engine's OpenBLAS (chosen for this CPU at load time)."""
    import ctypes

    from cymlp import _engine

    lib = ctypes.CDLL(_engine.PRIVATE_BLAS_PATH)
    corename = None
    for prefix in ("scipy_", ""):
        fn = getattr(lib, prefix + "openblas_get_corename", None)
        if fn is not None:
            fn.restype = ctypes.c_char_p
            corename = fn().decode()
            break
    return {"machine": platform.machine(), "openblas_core": corename}


def main(only=None):
    """Record the digests (of the cases whose names contain `only`, kept
    beside the others already recorded)."""
    from threadpoolctl import threadpool_limits

    out = {"signature": machine_signature(), "cases": {}}
    if only is not None:
        with open(FIXTURE) as f:
            out = json.load(f)
    for name in CASES:
        if only is not None and only not in name:
            continue
        for dt in DTYPES:
            with threadpool_limits(1):
                out["cases"][f"{name}-{dt}"] = run_case(name, dt)
    with open(FIXTURE, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"{len(out['cases'])} digests written to {FIXTURE}")


if __name__ == "__main__":
    import sys

    main(sys.argv[1] if len(sys.argv) > 1 else None)
