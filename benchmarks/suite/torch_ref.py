"""The PyTorch reference: a plain CPU training loop of the same network.

The torch column of the table is PyTorch at its best on this machine: the
faster of two variants of the loop, both with fused Adam (see
benchmarks/README.md, "The PyTorch loop"):

* eager: every operation dispatched from Python as it comes;
* compiled: the forward pass and the loss through ``torch.compile``
  (TorchInductor's CPU backend, which generates and compiles C++ with the
  system's compiler), so that the backward pass is compiled too. Compiling
  happens in the warm-up fit, once per batch shape, and is not timed.

The training rows run the loop in a worker process (``TorchLoop``, through
``suite/worker.py``), so that PyTorch's threads are not in the suite's
process; the prediction, memory and step rows call it in the suite's process.
"""

import time

import numpy as np

try:  # not through .libs: the worker process imports neither cymlp nor sklearn
    import torch
except ImportError:
    torch = None


def _forward_loss(model, loss_fn, xb, yb):
    return loss_fn(model(xb), yb)


_compiled_forward_loss = None


def compiled_forward_loss():
    """``_forward_loss`` through ``torch.compile``, built once per process.

    ``dynamic=False``: every batch shape (the last, smaller batch of an epoch
    too) gets kernels specialised to it, the fastest code for shapes that
    repeat every epoch; the warm-up fit compiles them. A new model of the same
    layers reuses them (its parameters are inputs of the graph, not constants).
    """
    global _compiled_forward_loss
    if _compiled_forward_loss is None:
        # One specialisation per workload's shapes and dtype: more than the
        # default limit of 8, past which dynamo would silently run eager.
        torch._dynamo.config.recompile_limit = 64
        _compiled_forward_loss = torch.compile(_forward_loss, dynamic=False)
    return _compiled_forward_loss


def make_optimizer(solver, weights, biases, weight_decay):
    """The optimizer of the loop, with scikit-learn's defaults.

    Parameters
    ----------
    solver : {"adam", "sgd", "adamw"}
    weights, biases : list of torch tensors
        The layers' weights and biases; only the weights decay.
    weight_decay : float
        scikit-learn's L2 term as torch's: ``alpha / batch rows``. For
        "adamw", whose ``weight_decay`` is the decoupled decay, cymlp's
        default decay 0.01 instead (torch's AdamW has no L2 term besides).
    """
    if solver == "adamw":
        weight_decay = 0.01
    groups = [{"params": weights, "weight_decay": weight_decay},
              {"params": biases, "weight_decay": 0.0}]
    if solver == "adamw":
        return torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, fused=True)
    if solver == "adam":
        # fused Adam: PyTorch's fastest CPU optimizer step (one kernel over
        # every parameter; measured 430 vs 531 ms per MNIST-shaped float32
        # epoch for the plain loop), so the column is PyTorch at its best
        return torch.optim.Adam(groups, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, fused=True)
    # fused SGD likewise: per parameter and step, 1.3 vs 2.9 ns (float64, 79,510
    # parameters) and 7.3 vs 14.4 ns (7,510) for the default foreach step
    return torch.optim.SGD(groups, lr=1e-3, momentum=0.9, nesterov=True, fused=True)


def torch_fit(X, y, params, epochs, seed=0, compiled=False):
    """A PyTorch CPU training loop of the same network; returns s/epoch.

    nn.Linear layers with ReLU between them, softmax cross-entropy (or a
    logistic output with binary cross-entropy for two classes), the optimizer
    of ``params`` with scikit-learn's defaults (adam, fused: lr 1e-3, betas
    (0.9, 0.999), eps 1e-8; sgd, fused: lr 1e-3, momentum 0.9, Nesterov), and
    sklearn's L2 term: alpha * W / batch rows added to the weights' gradients only. Each
    epoch draws a permutation and visits shuffled minibatches of batch_size
    rows, gathering them from X (no copy of X: torch.from_numpy), and
    accumulates the epoch loss as sklearn does. The time includes building the
    model, as a fit does. With ``compiled``, the forward pass and loss run
    through ``compiled_forward_loss()`` (a fit must have compiled its shapes
    before, or its time includes compiling).
    """
    start = time.perf_counter()
    nn = torch.nn
    F = torch.nn.functional
    Xt = torch.from_numpy(X)
    classes, codes = np.unique(y, return_inverse=True)
    n, d = X.shape
    binary = len(classes) == 2
    if binary:
        yt = torch.from_numpy(codes.astype(X.dtype).reshape(-1, 1))
        n_out = 1
    else:
        yt = torch.from_numpy(codes.astype(np.int64))
        n_out = len(classes)
    sizes = [d, *params["hidden_layer_sizes"], n_out]
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1], dtype=Xt.dtype))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers)
    bs = min(params["batch_size"], n)
    alpha = params.get("alpha", 1e-4)
    weights = [m.weight for m in model if isinstance(m, nn.Linear)]
    biases = [m.bias for m in model if isinstance(m, nn.Linear)]
    opt = make_optimizer(params["solver"], weights, biases, alpha / bs)
    loss_fn = F.binary_cross_entropy_with_logits if binary else F.cross_entropy
    forward_loss = compiled_forward_loss() if compiled else _forward_loss
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for s in range(0, n, bs):
            idx = perm[s : s + bs]
            xb, yb = Xt[idx], yt[idx]
            opt.zero_grad(set_to_none=True)
            loss = forward_loss(model, loss_fn, xb, yb)
            loss.backward()
            opt.step()
            total += loss.item() * idx.shape[0]
    return (time.perf_counter() - start) / epochs


def warm_compiled(X, y, params):
    """Compile the loop for X's batch shapes in one untimed epoch.

    Parameters
    ----------
    X, y : ndarray
        The workload's data, all of it: its batch shapes are the timed fits'.
    params : dict
        The workload's MLP parameters (``hidden_layer_sizes``, ``solver``,
        ``batch_size``).

    Returns
    -------
    str or None
        None, or why torch.compile failed here (the error's type and first
        line): the torch column then stays eager, and the row's note says why.
    """
    try:
        torch_fit(X, y, params, 1, compiled=True)
    except Exception as exc:  # noqa: BLE001 - any compiler failure means eager only
        lines = str(exc).strip().splitlines()
        return type(exc).__name__ + (f": {lines[0]}" if lines else "")
    return None


def keep_faster_torch(times, compile_error=None):
    """Keep the faster torch variant's times under ``times["torch"]``.

    Parameters
    ----------
    times : dict
        Library -> seconds per repeat, with the eager loop under "torch" and
        the compiled one under "torch-compiled"; changed in place: the
        faster one's times end under "torch", and "torch-compiled" goes.
    compile_error : str or None
        What ``warm_compiled`` returned.

    Returns
    -------
    variant : {"eager", "compiled"} or None
        Which loop the torch column shows (None: torch was not timed).
    note : str or None
        A line for the row's notes: both times, or why there is no compiled one.
    """
    from .report import fmt_time

    if "torch" not in times:
        return None, None
    if compile_error is not None:
        return "eager", f"torch.compile failed, torch column eager: {compile_error}"
    compiled = times.pop("torch-compiled", None)
    if compiled is None:
        return "eager", None
    eager = times["torch"]
    variant = "compiled" if min(compiled) < min(eager) else "eager"
    times["torch"] = compiled if variant == "compiled" else eager
    return variant, (f"torch: eager {fmt_time(min(eager), 's/epoch')}, torch.compile "
                     f"{fmt_time(min(compiled), 's/epoch')} (compiling not timed: done "
                     f"in the warm-up); the torch column is {variant}")


class TorchLoop:
    """The worker's side of the training rows (``suite/worker.py``): the loop
    on ``threads`` threads (``torch.set_num_threads``)."""

    def __init__(self, threads):
        torch.set_num_threads(threads)

    def info(self):
        return {"version": torch.__version__, "threads": torch.get_num_threads(),
                "mkl": torch.backends.mkl.is_available()}

    def load(self, X, y):
        self.X, self.y = X, y

    def warm(self, params, variants):
        """A short eager fit (first-call costs), then, with "compiled" in
        ``variants``, the compiled loop's untimed epoch on all of X; returns
        ``warm_compiled``'s answer (None: compiled)."""
        w = min(len(self.X), 1000)
        torch_fit(self.X[:w], self.y[:w], params, 1)
        if "compiled" in variants:
            return warm_compiled(self.X, self.y, params)
        return None

    def fit(self, params, epochs, variant="eager"):
        return (torch_fit(self.X, self.y, params, epochs, compiled=variant == "compiled"),)


def torch_model_from(est):
    """A torch nn.Sequential with the fitted weights of an sklearn-like MLP."""
    nn = torch.nn
    layers = []
    L = len(est.coefs_)
    for i, (W, b) in enumerate(zip(est.coefs_, est.intercepts_)):
        lin = nn.Linear(W.shape[0], W.shape[1], dtype=torch.from_numpy(W).dtype)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
            lin.bias.copy_(torch.from_numpy(b))
        layers.append(lin)
        if i < L - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def torch_predict_proba(model, X):
    with torch.inference_mode():
        return torch.softmax(model(torch.from_numpy(X)), dim=1).numpy()
