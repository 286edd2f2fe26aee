"""The benchmark suite's torch worker (benchmarks/suite/worker.py running
suite/torch_ref.py's ``TorchLoop``) computes what the suite's torch columns
claim: scikit-learn's probabilities from cymlp's weights, and the optimizer
steps of the step-* rows. Values only, never times. Skips without torch (the
suite's PyTorch column is optional, as is torch)."""

import json
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

pytest.importorskip("torch")
BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
from suite.libs import Others  # noqa: E402
from suite.runners import torch_predictor  # noqa: E402
from suite.worker import Worker  # noqa: E402

from cymlp import MLPClassifier  # noqa: E402

LR, BETA1, BETA2, EPS, MOMENTUM = 1e-3, 0.9, 0.999, 1e-8, 0.9  # make_optimizer's


@pytest.fixture(scope="module")
def worker():
    with Worker("torch", 1) as w:
        yield w


@pytest.mark.parametrize("n_classes, activation", [(3, "relu"), (2, "tanh")])
def test_predict_proba_matches_the_estimator(n_classes, activation):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 8)).astype(np.float32)
    y = rng.integers(0, n_classes, len(X))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = MLPClassifier(hidden_layer_sizes=(7, 5), activation=activation, max_iter=5,
                            random_state=0).fit(X, y)
    w, notes = torch_predictor(Others(torch=("eager",), threads=1),
                               f"test-predict-{n_classes}-{activation}", X, y, est)
    assert notes == []
    with w:
        proba = w.call("predict_proba")
        first_rows = w.call("predict_proba", 3)
    expected = est.predict_proba(X)
    assert proba.dtype == np.float32 and proba.shape == expected.shape
    np.testing.assert_allclose(proba, expected, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(first_rows, proba[:3])


def numpy_steps(solver, params, grads, n_steps, weight_decay, max_grad_norm):
    """torch's steps, written out in numpy: L2 on the weights (the first half
    of ``params``), then fused Adam or SGD with Nesterov momentum; with
    ``max_grad_norm``, ``clip_grad_norm_`` first, which scales the gradient in
    place, so that every step clips the gradient the last one left."""
    n_weights = len(params) // 2
    params = [p.copy() for p in params]
    grads = [g.copy() for g in grads]
    state1 = [np.zeros_like(p) for p in params]
    state2 = [np.zeros_like(p) for p in params]
    for t in range(1, n_steps + 1):
        if max_grad_norm is not None:
            norm = np.sqrt(sum(np.sum(g * g) for g in grads))
            grads = [g * min(1.0, max_grad_norm / (norm + 1e-6)) for g in grads]
        for i, (p, g) in enumerate(zip(params, grads)):
            g = g + (weight_decay if i < n_weights else 0.0) * p
            if solver == "adam":
                state1[i] = BETA1 * state1[i] + (1 - BETA1) * g
                state2[i] = BETA2 * state2[i] + (1 - BETA2) * g * g
                denom = np.sqrt(state2[i]) / np.sqrt(1 - BETA2**t) + EPS
                p -= LR / (1 - BETA1**t) * state1[i] / denom
            else:
                state1[i] = g if t == 1 else MOMENTUM * state1[i] + g
                p -= LR * (g + MOMENTUM * state1[i])
    return params


@pytest.mark.parametrize("solver, max_grad_norm", [("adam", None), ("adam", 0.1),
                                                   ("sgd", None)])
def test_steps_match_numpy(worker, solver, max_grad_norm):
    rng = np.random.default_rng(1)
    shapes = [(6, 4), (4, 3), (4,), (3,)]  # layer_shapes' order: weights, then biases
    params = [rng.standard_normal(s) * 0.1 for s in shapes]
    grads = [rng.standard_normal(s) * 0.1 for s in shapes]
    weight_decay, n_steps = 1e-4 / 32, 3
    worker.call("set_steps", solver, params, grads, n_steps, weight_decay, max_grad_norm)
    assert isinstance(worker.call("steps"), float)
    got = worker.call("stepped_params")
    expected = numpy_steps(solver, params, grads, n_steps, weight_decay, max_grad_norm)
    for g, e, p in zip(got, expected, params):
        assert not np.array_equal(g, p)  # the steps did move every parameter
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-15)


def test_the_suite_process_never_imports_torch():
    # a prediction row with a torch column, in a fresh process: torch runs
    # only in its worker
    code = textwrap.dedent(f"""
        import json
        import sys
        sys.path.insert(0, {str(BENCHMARKS)!r})
        from suite.libs import Others
        from suite.runners import run_latency
        from suite.specs import SPEC_BY_NAME, Data
        [row] = run_latency(SPEC_BY_NAME["predict-1row"], Data(True), True, 1,
                            Others(torch=("eager",), threads=1))
        print(json.dumps({{"libs": sorted(row.times), "torch": "torch" in sys.modules}}))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    answer = json.loads(out.splitlines()[-1])
    assert answer == {"libs": ["cymlp", "sklearn", "torch"], "torch": False}
