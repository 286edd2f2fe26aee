"""The PyTorch reference: a plain CPU training loop of the same network.

The torch column of the table is PyTorch at its best on this machine: the
faster of two variants of the loop, both with fused Adam (see
benchmarks/README.md, "The PyTorch loop"):

* eager: every operation dispatched from Python as it comes;
* compiled: the forward pass and the loss through ``torch.compile``
  (TorchInductor's CPU backend, which generates and compiles C++ with the
  system's compiler), so that the backward pass is compiled too. Compiling
  happens in the warm-up fit, once per batch shape, and is not timed.

Everything here runs in a worker process (``TorchLoop``, through
``suite/worker.py``), so that PyTorch's threads are not in the suite's
process: the training loop, and for the other rows a prediction of given
weights (``torch_model``), the optimizer steps alone (``TorchLoop.steps``)
and the peak memory of a fit (``TorchLoop.fit_rss``). The suite's process
never imports this module (nor torch).
"""

import time

import numpy as np
import torch  # not through .libs: the worker process imports neither cymlp nor sklearn

from .rss import rss_growth


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


# sklearn's hidden activations by name, as torch modules
_HIDDEN = {"identity": torch.nn.Identity, "logistic": torch.nn.Sigmoid,
           "tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}


def torch_model(coefs, intercepts, activations):
    """A torch ``nn.Sequential`` holding an MLP's fitted weights.

    Parameters
    ----------
    coefs, intercepts : list of ndarray
        An estimator's ``coefs_`` and ``intercepts_``: weights of shape
        (inputs, outputs) and biases, one of each per layer, all of one dtype.
    activations : list of str
        The hidden layers' activations (one per hidden layer, scikit-learn's
        names); the output layer's logits are left to ``torch_predict_proba``.

    Returns
    -------
    torch.nn.Sequential
    """
    layers = []
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        lin = torch.nn.Linear(W.shape[0], W.shape[1], dtype=torch.from_numpy(W).dtype)
        with torch.no_grad():
            # torch keeps (outputs, inputs): the transpose of scikit-learn's layout
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
            lin.bias.copy_(torch.from_numpy(b))
        layers.append(lin)
        if i < len(activations):
            layers.append(_HIDDEN[activations[i]]())
    return torch.nn.Sequential(*layers)


def torch_predict_proba(model, X, out_activation="softmax"):
    """``predict_proba`` of ``model`` on the ndarray X, as scikit-learn computes it.

    Parameters
    ----------
    model : torch.nn.Module
        From ``torch_model``.
    X : ndarray of shape (n_samples, n_features)
        Of the model's dtype.
    out_activation : {"softmax", "logistic"}
        The estimator's ``out_activation_``: for "logistic" (two classes, one
        output) the columns are ``1 - p`` and ``p``.

    Returns
    -------
    ndarray of shape (n_samples, n_classes)
    """
    with torch.inference_mode():
        logits = model(torch.from_numpy(X))
        if out_activation == "softmax":
            return torch.softmax(logits, dim=1).numpy()
        p = torch.sigmoid(logits)
        return torch.cat([1 - p, p], dim=1).numpy()


class TorchLoop:
    """The worker's side of every row's torch column (``suite/worker.py``),
    on ``threads`` threads (``torch.set_num_threads``).

    Each method is a request the suite can make. Training: ``load``,
    ``warm``, ``fit``. Prediction and latency: ``load``, ``set_model``, then
    ``time_predict`` (and ``predict_proba``, untimed). Optimizer steps:
    ``set_steps``, then ``steps`` (and ``stepped_params``). Peak memory:
    ``load``, ``warm``, ``fit_rss``. The timed requests time themselves and
    answer with seconds.
    """

    def __init__(self, threads):
        torch.set_num_threads(threads)

    def info(self):
        return {"version": str(torch.__version__), "threads": torch.get_num_threads(),
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

    def fit_rss(self, params, epochs):
        """The growth of this process's peak RSS during one ``torch_fit`` on
        the loaded data, in bytes (``rss.rss_growth``; None without /proc)."""
        return rss_growth(lambda: torch_fit(self.X, self.y, params, epochs))

    def set_model(self, coefs, intercepts, activations, out_activation):
        """The model of the prediction requests: ``torch_model``'s, from these weights."""
        self.model = torch_model(coefs, intercepts, activations)
        self.out_activation = out_activation

    def predict_proba(self, rows=None):
        """The model's probabilities on the loaded X's first ``rows`` rows (None: all)."""
        return torch_predict_proba(self.model, self.X[:rows], self.out_activation)

    def time_predict(self, n, rows=None):
        """Seconds per call of ``n`` back-to-back ``predict_proba`` calls on
        the loaded X's first ``rows`` rows (None: all), timed here, so that
        the pipe's round trip is not."""
        X = np.ascontiguousarray(self.X[:rows])
        model, out = self.model, self.out_activation
        start = time.perf_counter()
        for _ in range(n):
            torch_predict_proba(model, X, out)
        return (time.perf_counter() - start) / n

    def set_steps(self, solver, params, grads, n_batches, weight_decay, max_grad_norm=None):
        """The optimizer steps of the step requests.

        Parameters
        ----------
        solver : {"adam", "adamw", "sgd"}
            The optimizer, ``make_optimizer``'s.
        params, grads : list of ndarray
            The start values and the gradient, the weights first, then the
            biases (``floors.layer_shapes``' order); every run starts from
            ``params`` afresh and steps with ``grads``.
        n_batches : int
            Steps per timed run.
        weight_decay : float
            scikit-learn's L2 term, ``make_optimizer``'s (``alpha / batch rows``).
        max_grad_norm : float or None
            Clip the gradient to this global norm before every step
            (``clip_grad_norm_``); None: no clipping.
        """
        self.step_setup = (solver, params, [torch.from_numpy(g) for g in grads],
                           n_batches, weight_decay, max_grad_norm)

    def steps(self):
        """One timed run of ``set_steps``' steps; its seconds."""
        solver, start_values, grads, n_batches, weight_decay, max_norm = self.step_setup
        params = [torch.from_numpy(p.copy()).requires_grad_() for p in start_values]
        for p, g in zip(params, grads):
            p.grad = g
        n_weights = len(params) // 2
        opt = make_optimizer(solver, params[:n_weights], params[n_weights:], weight_decay)
        start = time.perf_counter()
        if max_norm is None:
            for _ in range(n_batches):
                opt.step()
        else:
            for _ in range(n_batches):
                torch.nn.utils.clip_grad_norm_(params, max_norm, foreach=True)
                opt.step()
        elapsed = time.perf_counter() - start
        self.stepped = params
        return elapsed

    def stepped_params(self):
        """The parameters after the last ``steps`` run, as ndarrays."""
        return [p.detach().numpy().copy() for p in self.stepped]
