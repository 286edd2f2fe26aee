"""The JAX reference: one ``jax.jit`` call per epoch, ``lax.scan`` over its minibatches.

A whole-epoch compiled loop, the strongest form a Python ML framework gives
to this training: the epoch's permutation goes in, the updated parameters and
the epoch's loss come out, and nothing runs in Python between minibatches.
The arithmetic is scikit-learn's (``sklearn/neural_network/``):

* Glorot-uniform initialisation, drawn as scikit-learn draws it
  (``RandomState(seed)``: for each layer, the weights then the biases, in
  float64, cast to the dtype);
* ReLU hidden layers; softmax with the log loss (or, for two classes, one
  logistic output with the binary log loss), averaged over the batch, plus
  ``0.5 * alpha * sum(W**2) / batch rows`` (``_backprop``); gradients by
  ``jax.value_and_grad`` of that loss, i.e. ``(A^T delta + alpha W) / rows``
  and the mean delta for the biases, as ``_compute_loss_grad``;
* Adam as ``AdamOptimizer``: lr 0.001, beta1 0.9, beta2 0.999, eps 1e-8,
  ``lr_t = lr * sqrt(1 - beta2**t) / (1 - beta1**t)`` (computed in float64
  by numpy for every step of the epoch, as scikit-learn computes it in
  Python) and ``w += -lr_t * m / (sqrt(v) + eps)``; SGD as ``SGDOptimizer``
  (constant lr 0.001, momentum 0.9, Nesterov);
* the epoch's loss accumulated as ``sum(batch loss * batch rows) / rows``.

``check_one_epoch`` compares one epoch of this loop with scikit-learn's
``MLPClassifier`` (``shuffle=False``, same initial weights and batches) on a
tiny float64 problem; the suite prints the result in its header and
``tests/test_jax_reference.py`` asserts it.

Runs in a worker process of its own (``suite/worker.py``): XLA's threads are
then not the suite's. Imports jax only when called.
"""

import time

import numpy as np

LR, BETA1, BETA2, EPS, MOMENTUM = 1e-3, 0.9, 0.999, 1e-8, 0.9


def _jax():
    import jax

    jax.config.update("jax_enable_x64", True)  # float64 rows; float32 stays float32
    return jax


def glorot_init(units, dtype, seed=0):
    """scikit-learn's initial weights and biases for layer widths ``units``
    (``_init_coef``, relu: bound ``sqrt(6 / (fan_in + fan_out))``)."""
    rs = np.random.RandomState(seed)
    coefs, intercepts = [], []
    for fan_in, fan_out in zip(units[:-1], units[1:]):
        bound = np.sqrt(6.0 / (fan_in + fan_out))
        coefs.append(rs.uniform(-bound, bound, (fan_in, fan_out)).astype(dtype))
        intercepts.append(rs.uniform(-bound, bound, fan_out).astype(dtype))
    return coefs, intercepts


def targets(y, dtype):
    """scikit-learn's LabelBinarizer targets: one-hot columns of the sorted
    classes, or one 0/1 column for two classes."""
    classes, codes = np.unique(y, return_inverse=True)
    if len(classes) == 2:
        return codes.astype(dtype).reshape(-1, 1)
    return np.eye(len(classes), dtype=dtype)[codes]


def adam_rates(t0, steps):
    """lr_t of steps t0+1 .. t0+steps, in float64 as AdamOptimizer computes it."""
    t = np.arange(t0 + 1, t0 + steps + 1, dtype=np.float64)
    return LR * np.sqrt(1 - BETA2 ** t) / (1 - BETA1 ** t)


_EPOCHS = {}


def epoch_function(n_layers, solver, binary, alpha, n_rest):
    """The jitted epoch: (state, X, Y, full batches' indices, the last batch's
    indices, lr_t per step) -> (state, epoch loss). ``state`` is
    (coefs, intercepts, moments1, moments2) and is donated (updated in place).
    One per (layers, solver, loss, alpha, last batch or not); jit specialises
    it to the shapes and dtype of the calls."""
    key = (n_layers, solver, binary, alpha, n_rest > 0)
    if key in _EPOCHS:
        return _EPOCHS[key]
    jax = _jax()
    jnp, lax = jax.numpy, jax.lax

    def loss_fn(params, xb, yb):
        coefs, intercepts = params
        a = xb
        for i in range(n_layers):
            z = a @ coefs[i] + intercepts[i]
            a = jax.nn.relu(z) if i < n_layers - 1 else z
        if binary:  # -y log(sigmoid z) - (1-y) log(1 - sigmoid z)
            data = jnp.mean(jax.nn.softplus(a) - yb * a)
        else:
            data = -jnp.mean(jnp.sum(yb * jax.nn.log_softmax(a, axis=1), axis=1))
        squares = sum(jnp.sum(w * w) for w in coefs)
        return data + (0.5 * alpha) * squares / xb.shape[0]

    grad_fn = jax.value_and_grad(loss_fn)

    def step(state, X, Y, idx, lr_t):
        coefs, intercepts, m1, m2 = state
        loss, grads = grad_fn((coefs, intercepts), X[idx], Y[idx])
        params = list(coefs) + list(intercepts)
        grads = list(grads[0]) + list(grads[1])
        if solver == "adam":
            m1 = [BETA1 * m + (1 - BETA1) * g for m, g in zip(m1, grads)]
            m2 = [BETA2 * v + (1 - BETA2) * (g * g) for v, g in zip(m2, grads)]
            lr = lr_t.astype(params[0].dtype)
            params = [p + (-lr * m / (jnp.sqrt(v) + EPS)) for p, m, v in zip(params, m1, m2)]
        else:  # SGD, Nesterov momentum: m1 holds the velocities
            m1 = [MOMENTUM * u - LR * g for u, g in zip(m1, grads)]
            params = [p + (MOMENTUM * u - LR * g) for p, u, g in zip(params, m1, grads)]
        L = n_layers
        return (params[:L], params[L:], m1, m2), loss

    def epoch(state, X, Y, idx_full, idx_rest, rates):
        n_full, b = idx_full.shape

        def body(state, inputs):
            idx, lr_t = inputs
            return step(state, X, Y, idx, lr_t)

        state, losses = lax.scan(body, state, (idx_full, rates[:n_full]))
        total = jnp.sum(losses) * b
        if n_rest:
            state, loss = step(state, X, Y, idx_rest, rates[n_full])
            total = total + loss * idx_rest.shape[0]
        return state, total / (n_full * b + idx_rest.shape[0])

    _EPOCHS[key] = jax.jit(epoch, donate_argnums=(0,))
    return _EPOCHS[key]


class JaxLoop:
    """The worker's side: X and its targets on the device once (``load``,
    not timed: a JAX user also puts the data there once), then fits."""

    def __init__(self, threads):
        self.jax = _jax()
        self.threads = threads

    def info(self):
        jax = self.jax
        return {"version": jax.__version__, "backend": jax.default_backend(),
                "threads": self.threads}

    def load(self, X, y):
        jnp = self.jax.numpy
        self.n, self.d = X.shape
        self.dtype = X.dtype
        T = targets(y, X.dtype)
        self.n_out = T.shape[1]
        self.X, self.Y = jnp.asarray(X), jnp.asarray(T)

    def fit(self, params, epochs, seed=0, shuffle=True, init=None):
        """Train a fresh network for ``epochs`` epochs; returns (seconds per
        epoch, coefs, intercepts, last epoch's loss). Timed: the
        initialisation, every epoch's permutation (numpy, drawn in Python
        as scikit-learn draws its own) and the epoch calls, each waited
        for (the loss is read, as scikit-learn reads it every epoch)."""
        jnp = self.jax.numpy
        start = time.perf_counter()
        units = [self.d, *params["hidden_layer_sizes"], self.n_out]
        b = min(params["batch_size"], self.n)
        n_full, n_rest = divmod(self.n, b)
        solver = params.get("solver", "adam")
        epoch = epoch_function(len(units) - 1, solver, self.n_out == 1,
                               float(params.get("alpha", 1e-4)), n_rest)
        coefs, intercepts = init if init is not None else glorot_init(units, self.dtype, seed)
        state = ([jnp.asarray(w) for w in coefs], [jnp.asarray(w) for w in intercepts])
        zeros = [jnp.zeros_like(p) for p in state[0] + state[1]]
        state = (*state, zeros, [jnp.zeros_like(p) for p in zeros])
        rs = np.random.RandomState(seed)
        steps_per_epoch = n_full + (n_rest > 0)
        loss = None
        for e in range(epochs):
            order = rs.permutation(self.n) if shuffle else np.arange(self.n)
            idx_full = order[: n_full * b].reshape(n_full, b)
            rates = adam_rates(e * steps_per_epoch, steps_per_epoch)
            state, loss = epoch(state, self.X, self.Y, idx_full, order[n_full * b:], rates)
            loss = float(loss)
        elapsed = (time.perf_counter() - start) / epochs
        to_np = lambda ws: [np.asarray(w) for w in ws]  # noqa: E731
        return elapsed, to_np(state[0]), to_np(state[1]), loss

    def warm(self, params, variants=None):
        """Compile the epoch for all of X's batch shapes (one untimed epoch)."""
        start = time.perf_counter()
        self.fit(params, 1)
        return time.perf_counter() - start


def check_one_epoch():
    """One epoch of ``JaxLoop`` against scikit-learn's MLPClassifier, float64.

    Two tiny problems, from the same initial weights (scikit-learn's draws
    with ``random_state=0``) and the same batches in order (``shuffle=False``):
    3 classes, (7, 5) hidden, Adam, batch 16 of 90 rows (a last batch of 10);
    2 classes, (6,), SGD with Nesterov momentum, batch 8 of 30 rows.

    Returns
    -------
    float
        The largest relative difference of any weight or bias,
        ``|jax - sklearn| / max(|sklearn|)`` per array; ~1e-15 expected.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    rng = np.random.default_rng(0)
    worst = 0.0
    for n, d, classes, hidden, solver, batch in ((90, 12, 3, (7, 5), "adam", 16),
                                                 (30, 4, 2, (6,), "sgd", 8)):
        X = rng.standard_normal((n, d))
        y = rng.integers(0, classes, n)
        params = dict(hidden_layer_sizes=hidden, solver=solver, batch_size=batch,
                      alpha=1e-4, learning_rate_init=LR)
        sk = MLPClassifier(**params, shuffle=False, max_iter=1, random_state=0,
                           momentum=MOMENTUM, nesterovs_momentum=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            sk.fit(X, y)
        loop = JaxLoop(threads=None)
        loop.load(X, y)
        _, coefs, intercepts, _ = loop.fit(params, 1, seed=0, shuffle=False)
        for mine, ref in zip(coefs + intercepts, sk.coefs_ + sk.intercepts_):
            worst = max(worst, float(np.max(np.abs(mine - ref)) / np.max(np.abs(ref))))
    return worst
