"""The engine's gradient of the full loss against central finite differences.

For every hidden activation x output (softmax/log_loss, logistic/binary
log_loss, identity/squared_error, exp/poisson) x dtype x dense/CSR input,
with an L2 penalty (alpha > 0) and sample weights (one of them zero), the
gradient that ``Network.loss_grad`` writes is compared with

    (-loss(p + 2h e_k) + 8 loss(p + h e_k) - 8 loss(p - h e_k) + loss(p - 2h e_k)) / (12 h)

For float64, ``loss`` is the loss that the same call returns (itself checked
against a numpy reference), and the check is tight. For float32 the engine's
loss is only accurate to ~1e-7 (and much less where 1 - p of a probability
near 1 keeps few bits), too noisy to difference; its gradient is checked,
loosely, against the differences of the numpy reference objective evaluated
in extended precision at the same float32 parameters.

Beyond scikit-learn's four hidden activations, cymlp's own (leaky_relu, elu,
gelu, silu, softplus) are checked the same way.

A relu (or leaky_relu) network is not differentiable where a pre-activation
is zero: a parameter whose perturbation moves any hidden unit across zero
(checked with the numpy reference forward pass) is left out, and most
parameters must remain. The same for elu, whose second derivative jumps
there (the five-point stencil's O(h^4) accuracy needs a smooth function).
"""

import _kernel_reference as ref
import numpy as np
import pytest
import scipy.sparse as sp
from _kernel_reference import WIDE

from cymlp import _engine

HIDDEN = ref.SKLEARN_HIDDEN + ref.EXTRA_HIDDEN
SLOPE = 0.1  # leaky_relu
# Activations whose derivative (relu, leaky_relu) or second derivative (elu)
# jumps at z = 0: a stencil across the jump is not accurate to O(h^4).
CROSSING_MATTERS = ref.KINKED + ("elu",)
OUT_ACTS = ["softmax", "logistic", "identity", "exp"]
N_OUTPUTS = {"softmax": 3, "logistic": 2, "identity": 1, "exp": 2}

# Step and tolerances. The five-point central difference has a truncation
# error O(h^4), so h can be large enough that the rounding noise of the loss
# (larger than eps: log(1 - p) for p near 1 amplifies it by 1 / (1 - p))
# divided by h stays small. float32: the engine's float32 gradient against
# differences of the extended-precision reference.
STEP = {np.float64: 1e-4, np.float32: 1e-4}
RTOL = {np.float64: 1e-6, np.float32: 1e-3}
ATOL = {np.float64: 1e-8, np.float32: 1e-4}   # times max |gradient|


def _problem(rng, activation, out_act, dtype, n_out=None):
    n_samples, n_features = 12, 4
    n_out = N_OUTPUTS[out_act] if n_out is None else n_out
    units = [n_features, 5, 3, n_out]
    params = ref.random_network(rng, units, dtype)
    X = rng.normal(size=(n_samples, n_features))
    X[rng.uniform(size=X.shape) < 0.4] = 0  # some zeros, for the CSR variant
    X = X.astype(dtype)
    Y = ref.make_targets(rng, out_act, n_samples, n_out, dtype)
    sw = rng.uniform(0.1, 2.0, size=n_samples).astype(dtype)
    sw[3] = 0  # a sample with no weight
    return units, params, X, Y, sw


def _hidden_signs(X, params, units, activation, out_act):
    coefs, intercepts = ref.unpack(params, units)
    _, pre = ref.forward(X, coefs, intercepts, activation, out_act, SLOPE)
    return [s > 0 for s in pre[:-1]]


def _check_gradient(net, X, Y, sw, params, units, activation, out_act, alpha, dtype):
    trainer = _engine.Trainer(net, dtype, X.shape[0])
    loss, grad = trainer.loss_grad(X, Y, sw, params.copy(), alpha)
    grad = grad.copy()

    Xd = X.toarray() if sp.issparse(X) else X

    if dtype == np.float64:
        def f(p):
            return trainer.loss_grad(X, Y, sw, p, alpha, with_grad=False)[0]
    else:
        def f(p):
            value, _ = ref.loss_and_grad(Xd, Y, sw, p, units, activation, out_act,
                                         ref.OUTPUTS[out_act], alpha, np.float64, SLOPE)
            return value
        params = params.astype(WIDE)  # the float32 values, perturbed exactly
    base_signs = _hidden_signs(Xd, params, units, activation, out_act)
    h = STEP[dtype]
    fd = np.full(len(params), np.nan)
    noise = np.zeros(len(params))
    checked = np.zeros(len(params), dtype=bool)
    for k in range(len(params)):
        # near a kink, retry with smaller steps before giving the parameter up
        for shrink in (1, 8, 64):
            hk = h / shrink * max(1.0, abs(float(params[k])))
            points = []
            for m in (-2, -1, 1, 2):
                q = params.copy()
                q[k] += m * hk
                points.append(q)
            if activation not in CROSSING_MATTERS:
                break
            signs = [_hidden_signs(Xd, q, units, activation, out_act) for q in points]
            if not any((a != b).any() for s_ in signs for a, b in zip(base_signs, s_)):
                break
        else:
            continue  # a kink within every stencil
        # the step actually taken, after rounding
        hk = (points[2][k] - points[1][k]) / 2
        f_m2, f_m1, f_p1, f_p2 = (f(q) for q in points)
        fd[k] = (-f_p2 + 8 * f_p1 - 8 * f_m1 + f_m2) / (12 * hk)
        # the three-point difference on the same points: |fd5 - fd3| estimates
        # the finite difference's own error (truncation and the loss's
        # rounding noise, which float32 logs of probabilities near 1 make
        # large); a wrong gradient is off from both
        noise[k] = abs(fd[k] - (f_p1 - f_m1) / (2 * hk))
        checked[k] = True

    assert checked.mean() > 0.4, "too many parameters next to a kink"
    fd = fd.astype(np.float64)
    scale = float(np.max(np.abs(fd[checked])))
    tol = RTOL[dtype] * np.abs(fd) + ATOL[dtype] * scale + 2 * noise
    bad = checked & ~(np.abs(grad - fd) <= tol)
    assert not bad.any(), (
        f"{activation}/{out_act} {dtype.__name__}: gradient != finite differences at "
        f"{np.flatnonzero(bad).tolist()}:\n analytic {grad[bad]}\n fd       {fd[bad]}\n"
        f" tol      {tol[bad]}")
    return loss


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("out_act", OUT_ACTS)
@pytest.mark.parametrize("activation", HIDDEN)
def test_gradient_vs_finite_differences(activation, out_act, dtype, sparse,
                                        global_random_seed):
    rng = np.random.RandomState(global_random_seed)
    units, params, X, Y, sw = _problem(rng, activation, out_act, dtype)
    loss_name = ref.OUTPUTS[out_act]
    net = _engine.Network(units, activation, out_act, loss_name, negative_slope=SLOPE)
    Xin = sp.csr_matrix(X) if sparse else X
    alpha = 0.3
    loss = _check_gradient(net, Xin, Y, sw, params, units, activation, out_act,
                           alpha, dtype)
    # and the loss itself is scikit-learn's objective (numpy reference)
    value, _ = ref.loss_and_grad(X, Y, sw, params, units, activation, out_act,
                                 loss_name, alpha, dtype, SLOPE)
    np.testing.assert_allclose(loss, float(value),
                               rtol=1e-12 if dtype == np.float64 else 1e-5)


@pytest.mark.parametrize("activation", HIDDEN)
def test_gradient_without_penalty_or_weights(activation, global_random_seed):
    # alpha = 0 and sample_weight=None take other branches of the engine
    rng = np.random.RandomState(global_random_seed)
    units, params, X, Y, _ = _problem(rng, activation, "softmax", np.float64)
    net = _engine.Network(units, activation, "softmax", "log_loss", negative_slope=SLOPE)
    _check_gradient(net, X, Y, None, params, units, activation, "softmax", 0.0,
                    np.float64)


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_squared_error_multioutput_gradient_convention(sparse, global_random_seed):
    # With several outputs scikit-learn reports half the *mean* squared error
    # over outputs as the loss but back-propagates out - y, the gradient of
    # half the *sum* over outputs (plus the penalty's alpha W / sw_sum). cymlp
    # reproduces that (its solvers must follow the same path). The gradient
    # is checked against central differences of that objective, in numpy.
    rng = np.random.RandomState(global_random_seed)
    dtype = np.float64
    units, params, X, Y, sw = _problem(rng, "tanh", "identity", dtype, n_out=3)
    alpha = 0.3
    net = _engine.Network(units, "tanh", "identity", "squared_error")
    loss, grad = _engine.Trainer(net, dtype, X.shape[0]).loss_grad(
        sp.csr_matrix(X) if sparse else X, Y, sw, params.copy(), alpha)

    def objective(p):
        coefs, intercepts = ref.unpack(p, units)
        acts, _ = ref.forward(X, coefs, intercepts, "tanh", "identity")
        w = sw.astype(WIDE)
        data = 0.5 * (w * ((acts[-1] - Y) ** 2).sum(axis=1)).sum() / w.sum()
        pen = 0.5 * alpha * sum((c.astype(WIDE) ** 2).sum() for c in coefs) / w.sum()
        return data + pen, data

    fd = ref.five_point_gradient(lambda q: objective(q)[0], params, 1e-4)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8 * np.abs(fd).max())
    # the reported loss is the mean over outputs, as scikit-learn's
    total, data = objective(params)
    np.testing.assert_allclose(loss, float(total - data + data / units[-1]), rtol=1e-12)
