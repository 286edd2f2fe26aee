"""scikit-learn's float64 arithmetic for float32 weights, where float32 overflows.

A float32 regressor whose targets numpy promotes to float64 computes its
backward pass in float64 in scikit-learn. cymlp trains it in float32 (the
same weights to float32 rounding, faster) and keeps here the way back to
scikit-learn's arithmetic for the epochs and evaluations float32 cannot do:
see :class:`Float64Backward`.
"""

import numpy as np

from ._engine import Trainer


def beyond_float32(a):
    """Whether array ``a`` (or None) holds finite values past float32's range.

    Parameters
    ----------
    a : ndarray or None

    Returns
    -------
    beyond : bool
    """
    if a is None or a.dtype.kind != "f" or a.dtype.itemsize <= 4:
        return False
    return bool(np.any(np.abs(a) > np.finfo(np.float32).max))


class Float64Backward:
    """scikit-learn's float64 arithmetic for a float32 regressor, where float32 overflows.

    scikit-learn's regressor keeps its targets in their own dtype. Beside
    float32 X and weights, targets that numpy promotes with float32 to
    float64 (float64, int32, int64, ...) make the output delta
    ``activations[-1] - y`` float64, and with it the loss, every backward
    product (float32 activations and weights meet float64 deltas), the
    gradients and the optimizer's moments; the forward pass stays float32,
    and so do the weights (``coef += update`` rounds the float64 sum to
    float32), and lbfgs hands scipy a float64 gradient.

    cymlp trains such a model in float32, which gives the same weights to
    float32 rounding, and faster, as long as nothing overflows. Where float32
    overflows after the forward pass (a gradient past 3.4e38, Adam's squared
    gradient past it, a residual ``y - p`` past it, targets float32 cannot
    hold), it has inf where scikit-learn has a finite float64 value, and the
    two part ways: the fit fails, or Adam's infinite second moment freezes
    the weights. This class holds the way back: the same step in
    scikit-learn's arithmetic, on a float64 Trainer with ``float32_weights``
    (the float32 engine's forward pass, float64 from the output delta on).
    A stochastic fit switches for good, as its moments become float64 (and
    stay so in scikit-learn); lbfgs, whose evaluations keep no state, takes
    it for the evaluations float32 cannot do.

    Parameters
    ----------
    active : bool
        Start in scikit-learn's arithmetic: for data float32 cannot hold, or
        a model whose moments already are float64.
    """

    def __init__(self, active):
        self.active = active
        self._network = None
        self._settings = None
        self._rows = None
        self._wide_rows = None
        self._trainer = None
        self._params = None
        self._saved = None

    def use_rows(self, network, rows, **settings):
        """Set the network and the rows trained on.

        Parameters
        ----------
        network : Network
            The training network.
        rows : cymlp._data.Rows
            The float32 rows; widened to float64 only if needed, with the
            targets and ``given_weight`` as validated (their own dtype).
        **settings
            The float64 Trainer's keyword arguments: ``max_rows``, and for
            epochs ``gather`` and ``dropout``.
        """
        self._network = network
        self._settings = settings
        self._rows = rows
        self._wide_rows = None

    def wide_rows(self):
        """The rows in float64 (exactly the float32 X's values), made once.

        Returns
        -------
        X, Y, sample_weight : float64 engine input, (n, n_outputs) targets, weights or None
        """
        if self._wide_rows is None:
            rows = self._rows
            # already in the engine's form (C-contiguous or CSR): a dtype
            # change only, each float32 value exactly
            X = rows.X.astype(np.float64)
            Y = np.ascontiguousarray(rows.y, dtype=np.float64).reshape(X.shape[0], -1)
            sw = rows.given_weight
            if sw is not None:
                sw = np.ascontiguousarray(sw, dtype=np.float64)
            self._wide_rows = (X, Y, sw)
        return self._wide_rows

    def save(self, params, optimizer):
        """Copy the weights and moments before a float32 epoch (into buffers made once)."""
        arrays = [params] + optimizer.moments()
        if self._saved is None:
            self._saved = [np.empty_like(a) for a in arrays]
        for dst, src in zip(self._saved, arrays):
            np.copyto(dst, src)

    def restore(self, params, optimizer):
        """Undo a float32 epoch that overflowed: the weights as they were, and
        an optimizer like ``optimizer`` whose moments are the saved ones in
        float64 (exactly their values)."""
        np.copyto(params, self._saved[0])
        return optimizer.with_moments([saved.astype(np.float64) for saved in self._saved[1:]])

    def run_epoch(self, order, params, optimizer, alpha, learning_rate, seed):
        """One epoch (rows visited in ``order``, or in storage order if None)
        in scikit-learn's arithmetic, training the
        float32 ``params`` and ``optimizer``'s float64 moments in place;
        returns the sum over minibatches of loss * rows."""
        if self._trainer is None:
            self._trainer = Trainer(self._network, np.float64, float32_weights=True,
                                    optimizer=optimizer.engine_settings(), **self._settings)
            self._params = np.empty(params.size, dtype=np.float64)
        self._trainer.set_moments(*optimizer.moments())
        X, Y, sw = self.wide_rows()
        # the float32 buffer stays the weights (coefs_ are views of it); the
        # float64 copy holds the same values, and gets them back rounded
        self._params[...] = params
        loss = self._trainer.run_epoch(X, Y, sw, order, self._params, alpha,
                                       learning_rate, dropout_seed=seed)
        params[...] = self._params
        optimizer.steps_taken(self._trainer.t)
        return loss

    def loss_grad(self, x, alpha, with_grad=True):
        """The loss and gradient at float32 point ``x`` in scikit-learn's
        arithmetic: the float64 loss and (a copy of) the float64 gradient,
        or None without ``with_grad``."""
        X, Y, sw = self.wide_rows()
        if self._trainer is None:
            self._trainer = Trainer(self._network, np.float64, float32_weights=True,
                                    **self._settings)
        loss, grad = self._trainer.loss_grad(X, Y, sw, x.astype(np.float64), alpha,
                                             with_grad=with_grad)
        return loss, None if grad is None else grad.copy()
