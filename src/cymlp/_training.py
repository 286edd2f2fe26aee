"""Training helpers of ``_BaseMLP`` (:mod:`cymlp._base`).

The engine's input layout, Ctrl-C held until an epoch is recorded, the
per-epoch callbacks, the validation loss and the stochastic optimizer state.
"""

import contextlib
import dataclasses
import signal
import threading

import numpy as np
import scipy.sparse as sp

# InvalidParameterError: scikit-learn's exception class for a bad parameter
# value; it has no public import path.
from sklearn.utils._param_validation import InvalidParameterError

from ._engine import Trainer


def _engine_input(X, dtype):
    """X as the engine reads it: C-contiguous rows, or CSR, of the given dtype.

    No copy when X already is (the common case: float32 or float64 C arrays);
    CSC input is converted to CSR once per fit or predict call.
    """
    if sp.issparse(X):
        # The compiled product reads X.indices as row offsets into the weights:
        # a hand-made matrix with an index out of range must raise here, not
        # read out of bounds (sklearn's validation does not look at indices),
        # and before scipy's own CSC -> CSR conversion, which trusts them too.
        X.check_format(full_check=True)
        return X.tocsr().astype(dtype, copy=False)
    return np.ascontiguousarray(X, dtype=dtype)


@contextlib.contextmanager
def _deferred_keyboard_interrupt():
    """Hold Ctrl-C (SIGINT) until the current epoch has been recorded.

    Yields a function telling whether an interrupt came meanwhile; the epoch
    loop raises KeyboardInterrupt at its next safe point. Only in the main
    thread (the only one that receives signals), and only when SIGINT has
    Python's default handler: a handler of the user's own is left alone.
    """
    received = []
    previous = None
    if threading.current_thread() is threading.main_thread():
        handler = signal.getsignal(signal.SIGINT)
        if handler is signal.default_int_handler:
            previous = handler
            signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield lambda: bool(received)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _as_callback_list(callbacks):
    """The ``callbacks`` parameter as a list of functions, checked at the start
    of fit: a scikit-learn callback object passed here gets a message saying
    where it belongs instead of failing after the first epoch."""
    if callbacks is None:
        return []
    items = [callbacks] if not isinstance(callbacks, (list, tuple)) else list(callbacks)
    for item in items:
        if hasattr(item, "on_fit_task_end"):
            raise InvalidParameterError(
                "%s is a scikit-learn callback (sklearn.callback); set it with "
                "estimator.set_callbacks(%s) (scikit-learn >= 1.9), not with "
                "callbacks=, which takes plain functions f(info) -> bool."
                % (type(item).__name__, type(item).__name__)
            )
        if not callable(item):
            raise InvalidParameterError(
                "The 'callbacks' parameter must be None, a function f(info) -> bool "
                "or a list of them; got %r." % (item,)
            )
    return items


class _FitTask:
    """One fit as a task of scikit-learn's callback protocol (>= 1.9), with one
    subtask per epoch or lbfgs iteration.

    Without scikit-learn's framework (older versions) it does nothing; without
    a callback set on the estimator (directly or propagated by a
    meta-estimator) it makes no subtasks, so an epoch costs nothing more. A
    subtask's ``fitted_estimator`` predicts with the weights of that moment:
    its attributes are copied only if a callback asks for it.
    """

    def __init__(self, est, X, y, sample_weight, max_subtasks):
        self.est, self.X, self.y = est, X, y
        self.metadata = None if sample_weight is None else {"sample_weight": sample_weight}
        self.ctx = None
        self.per_epoch = False
        if hasattr(est, "_init_callback_context"):
            self.ctx = est._init_callback_context(max_subtasks=max_subtasks)
            self.ctx.call_on_fit_task_begin(
                estimator=est, X=X, y=y, metadata=self.metadata
            )
            self.per_epoch = bool(getattr(est, "_skl_callbacks", None))

    def _hook_args(self, weights):
        def snapshot():
            coefs, intercepts = weights()
            return {
                "coefs_": [c.copy() for c in coefs],
                "intercepts_": [b.copy() for b in intercepts],
                "n_iter_": self.est.n_iter_,
                "loss_": getattr(self.est, "loss_", None),
            }

        return dict(estimator=self.est, X=self.X, y=self.y, metadata=self.metadata,
                    reconstruction_attributes=snapshot)

    def begin_subtask(self, weights, name):
        """Open the next epoch's (or iteration's) subtask; ``weights()`` gives
        the current (coefs, intercepts). None when no callback listens."""
        if not self.per_epoch:
            return None
        sub = self.ctx.subcontext(task_name=name)
        sub.call_on_fit_task_begin(**self._hook_args(weights))
        return sub

    def end_subtask(self, sub, weights):
        """Close a subtask; True if a callback asks to stop."""
        if sub is None:
            return False
        return bool(sub.call_on_fit_task_end(**self._hook_args(weights)))

    def end(self):
        """Close the fit task (the fitted estimator is the estimator itself)."""
        if self.ctx is not None:
            self.ctx.call_on_fit_task_end(
                estimator=self.est, X=self.X, y=self.y, metadata=self.metadata,
                reconstruction_attributes={},
            )


def _callbacks_say_stop(callbacks, est):
    """Call every callback after an epoch; True if any of them asks to stop."""
    if not callbacks:
        return False
    info = {
        "epoch": est.n_iter_,
        "loss": est.loss_,
        "validation_score": (est.validation_scores_ or [None])[-1]
        if getattr(est, "validation_scores_", None) is not None
        else None,
        "validation_loss": (est.validation_loss_curve_ or [None])[-1]
        if getattr(est, "validation_loss_curve_", None) is not None
        else None,
        "estimator": est,
    }
    stop = False
    for callback in callbacks:
        stop = bool(callback(info)) or stop
    return stop


@dataclasses.dataclass
class _EarlyStopping:
    """The validation set of an early-stopping fit and the best weights so far."""

    X: object
    y: object
    sample_weight: object
    loss: "_ValidationLoss"
    best_params: np.ndarray
    scorer: object = None  # the scoring= scorer, or None (sklearn's score / the loss)


def _beyond_float32(a):
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


class _Float64Backward:
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
    sample_weight : ndarray or None
        The sample weights as validated, before the cast to float32 (they
        may be float64, as scikit-learn keeps them).
    active : bool
        Start in scikit-learn's arithmetic: for data float32 cannot hold, or
        a model whose moments already are float64.
    """

    def __init__(self, sample_weight, active):
        self.sample_weight = sample_weight
        self.active = active
        self._network = None
        self._settings = None
        self._rows = None
        self._wide_rows = None
        self._trainer = None
        self._params = None
        self._saved = None

    def use_rows(self, network, X, y, sample_weight, **settings):
        """Set the network and the rows trained on.

        Parameters
        ----------
        network : Network
            The training network.
        X : ndarray or CSR matrix
            The engine's float32 input; widened to float64 only if needed.
        y : ndarray
            The targets as validated (their own dtype).
        sample_weight : ndarray or None
            As validated (their own dtype).
        **settings
            The float64 Trainer's keyword arguments: ``max_rows``, and for
            epochs ``gather`` and ``dropout``.
        """
        self._network = network
        self._settings = settings
        self._rows = (X, y, sample_weight)
        self._wide_rows = None

    def wide_rows(self):
        """The rows in float64 (exactly the float32 X's values), made once.

        Returns
        -------
        X, Y, sample_weight : float64 engine input, (n, n_outputs) targets, weights or None
        """
        if self._wide_rows is None:
            X, y, sw = self._rows
            X = _engine_input(X, np.float64)
            Y = np.ascontiguousarray(y, dtype=np.float64).reshape(X.shape[0], -1)
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
        moments = [saved.astype(np.float64) for saved in self._saved[1:]]
        return optimizer.replace(state1=moments[0],
                                 state2=moments[1] if len(moments) > 1 else None)

    def run_epoch(self, run, params, optimizer, alpha, learning_rate, seed):
        """One epoch of ``run`` in scikit-learn's arithmetic, training the
        float32 ``params`` and ``optimizer``'s float64 moments in place;
        returns the sum over minibatches of loss * rows."""
        if self._trainer is None:
            self._trainer = Trainer(self._network, np.float64, float32_weights=True,
                                    optimizer=optimizer.engine_settings(), **self._settings)
            self._params = np.empty(params.size, dtype=np.float64)
        self._trainer.set_moments(optimizer.state1, optimizer.state2)
        X, Y, sw = self.wide_rows()
        # the float32 buffer stays the weights (coefs_ are views of it); the
        # float64 copy holds the same values, and gets them back rounded
        self._params[...] = params
        loss = self._trainer.run_epoch(X, Y, sw, run.order, self._params, alpha,
                                       learning_rate, dropout_seed=seed)
        params[...] = self._params
        optimizer.t = self._trainer.t
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


@dataclasses.dataclass
class _EpochRun:
    """What the epoch loop of one stochastic fit works on."""

    network: object             # the training Network
    trainer: Trainer            # float32 epochs' (None: float64_backward from the start)
    optimizer: "_Optimizer"     # the first epoch's, with moments of its own
    params: np.ndarray          # the packed weights the first epoch trains in place
    X: object                   # dense C-contiguous or CSR, in params' dtype
    Y: np.ndarray               # in params' dtype (None without a trainer)
    sample_weight: object
    order: object               # rows' visiting order, shuffled per epoch; None: no shuffle
    dropout: bool               # draw a dropout seed per epoch
    validation: _EarlyStopping = None
    # float32 weights that may need scikit-learn's float64 arithmetic, or None
    float64_backward: _Float64Backward = None

    def epoch(self, params, optimizer, alpha, learning_rate, seed):
        """Train one epoch of the epoch's own weights and moments, in place.

        Parameters
        ----------
        params : ndarray
            The weights this epoch trains (not yet published).
        optimizer : _Optimizer
            Its settings and moments (the moments not yet published).
        alpha : float
        learning_rate : float
            sgd's current rate.
        seed : int or None
            The epoch's dropout seed.

        Returns
        -------
        loss_sum : float
            The sum over minibatches of loss * rows.
        optimizer : _Optimizer
            The optimizer trained: ``optimizer``, or one with float64
            moments if the epoch went over to scikit-learn's arithmetic.
        """
        wide = self.float64_backward
        if wide is not None and wide.active:
            return wide.run_epoch(self, params, optimizer, alpha, learning_rate, seed), optimizer
        self.trainer.set_moments(optimizer.state1, optimizer.state2)
        if wide is not None:
            wide.save(params, optimizer)
        loss = self.trainer.run_epoch(self.X, self.Y, self.sample_weight, self.order,
                                      params, alpha, learning_rate, dropout_seed=seed)
        if wide is None or self.trainer.state_finite(params):
            optimizer.t = self.trainer.t
            return loss, optimizer
        # float32 overflowed: the epoch again, from its start (same order and
        # dropout seed), in scikit-learn's arithmetic, and so on from here
        optimizer = wide.restore(params, optimizer)
        wide.active = True
        return wide.run_epoch(self, params, optimizer, alpha, learning_rate, seed), optimizer


class _ValidationLoss:
    """The loss of the current weights on the validation set, L2 term included.

    With ``float64_backward`` (float32 weights whose targets scikit-learn
    keeps in float64, see _Float64Backward), a loss float32 cannot give
    (targets past its range) is computed again in that arithmetic.
    """

    def __init__(self, network, X_val, Y_val, sw_val, dtype, float64_backward=False):
        self.X = _engine_input(X_val, dtype)
        # targets past float32's range become inf here: the float64 loss below
        with np.errstate(over="ignore"):
            self.Y = np.ascontiguousarray(Y_val, dtype=dtype).reshape(self.X.shape[0], -1)
        self.sw = None if sw_val is None else np.ascontiguousarray(sw_val, dtype=dtype)
        self.trainer = Trainer(network, dtype, max_rows=self.X.shape[0])
        self.wide = None
        if float64_backward:
            self.wide = _Float64Backward(sw_val, active=False)
            self.wide.use_rows(network, self.X, Y_val, sw_val, max_rows=self.X.shape[0])

    def __call__(self, params, alpha):
        loss, _ = self.trainer.loss_grad(self.X, self.Y, self.sw, params, alpha,
                                         with_grad=False)
        if self.wide is not None and not np.isfinite(loss):
            loss, _ = self.wide.loss_grad(params, alpha, with_grad=False)
        return float(loss)


class _Optimizer:
    """A stochastic optimizer's settings and state across epochs and
    partial_fit calls.

    Its settings are read from the estimator once, when it is made, as
    scikit-learn's ``SGDOptimizer`` and ``AdamOptimizer`` read theirs: a
    ``set_params`` between two ``partial_fit`` calls does not reach it, and a
    new fit (``warm_start`` included) makes a new one. The moments live in
    packed buffers shaped like the parameter buffer, so the engine updates
    everything in one pass. On disk (pickle, skops) it is a plain dict of
    numbers, strings and arrays: see :meth:`to_dict` and :meth:`from_dict`.

    Once an optimizer is the estimator's ``_optimizer`` it is not changed:
    training continues on :meth:`with_own_moments` and publishes that.
    """

    # the settings, as named by the estimator's parameters
    SETTINGS = (
        "learning_rate_init", "power_t", "momentum", "nesterovs_momentum",
        "beta_1", "beta_2", "epsilon",
    )

    def __init__(self, est, n_params, dtype):
        self.kind = est.solver
        self.lr_schedule = est.learning_rate
        for name in self.SETTINGS:
            setattr(self, name, _plain(getattr(est, name)))
        self.learning_rate = float(est.learning_rate_init)  # sgd's current rate
        self.t = 0  # adam steps
        self.state1 = np.zeros(n_params, dtype=dtype)  # sgd velocity / adam m
        self.state2 = np.zeros(n_params, dtype=dtype) if est.solver == "adam" else None

    def to_dict(self):
        """The optimizer as plain data (for pickles and skops files)."""
        return dict(vars(self))

    @classmethod
    def from_dict(cls, state, est):
        """Rebuild an optimizer from :meth:`to_dict`'s output, or from the
        attributes of an optimizer pickled by cymlp 0.1.0, which kept fewer
        settings: those it lacks are taken from the estimator's parameters."""
        self = cls.__new__(cls)
        for name in cls.SETTINGS:
            setattr(self, name, _plain(getattr(est, name)))
        vars(self).update(state)
        return self

    def replace(self, **changes):
        """A new optimizer like this one, with these attributes changed."""
        new = _Optimizer.__new__(_Optimizer)
        vars(new).update(vars(self), **changes)
        return new

    def with_own_moments(self):
        """A new optimizer like this one, with copies of its moments for the
        engine to update in place: this one's may be read by other threads
        (or be read-only, from joblib.load(..., mmap_mode="r"))."""
        return self.replace(
            state1=self.state1.copy(),
            state2=None if self.state2 is None else self.state2.copy(),
        )

    def moments(self):
        """The moment buffers: sgd's velocity, or adam's first and second moments."""
        return [self.state1] if self.state2 is None else [self.state1, self.state2]

    def widened(self):
        """A new optimizer like this one, with its moments in float64 (exactly
        their values, in arrays of its own), as scikit-learn's become at the
        first float64 gradient (see _Float64Backward)."""
        return self.replace(
            state1=self.state1.astype(np.float64),
            state2=None if self.state2 is None else self.state2.astype(np.float64),
        )

    def matches(self, n_params, dtype):
        """Whether the moments fit a parameter buffer of this size and dtype."""
        return all(
            isinstance(s, np.ndarray) and s.shape == (n_params,) and s.dtype == dtype
            for s in ([self.state1] if self.kind == "sgd" else [self.state1, self.state2])
        )

    def engine_settings(self):
        """The settings and moments, as :class:`cymlp._engine.Trainer` takes them."""
        settings = {name: getattr(self, name) for name in self.SETTINGS}
        settings.update(kind=self.kind, t=self.t, state1=self.state1, state2=self.state2)
        return settings

    def iteration_ends(self, time_step):
        if self.kind == "sgd" and self.lr_schedule == "invscaling":
            self.learning_rate = (
                float(self.learning_rate_init) / (time_step + 1) ** self.power_t
            )

    def trigger_stopping(self, msg, verbose):
        """True to stop; with sgd's 'adaptive' schedule, divide the rate by 5 first."""
        if self.kind == "adam" or self.lr_schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % self.learning_rate)
        return False


def _plain(value):
    """A parameter as a plain Python number, kept as given otherwise (the
    schedules compute with it as scikit-learn's optimizers do)."""
    return value.item() if isinstance(value, np.generic) else value
