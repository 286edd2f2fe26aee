"""The stochastic solvers' state between epochs: one class per solver.

``SGDOptimizer`` and ``AdamOptimizer`` hold what scikit-learn's optimizers of
the same names hold (``sklearn/neural_network/_stochastic_optimizers.py``):
the settings read from the estimator when the optimizer is made, the moment
buffers and the per-solver bookkeeping of the epoch loop (sgd's learning-rate
schedules, adam's step count). Both also follow cymlp's warm-up + cosine
schedule, ``learning_rate='cosine'`` (:func:`cosine_rate`), which counts the
epochs an optimizer has trained. ``AdamWOptimizer`` is Adam with PyTorch's
decoupled weight decay. Every one reads ``max_grad_norm`` (clipping by the
global norm, in the engine's step). The step itself is the engine's: it updates
the moments in place, inside the epoch's compiled call, from
:meth:`~_StochasticOptimizer.engine_settings`. :func:`new_optimizer` makes
the one a ``solver`` names; :func:`optimizer_from_dict` rebuilds one from a
pickle or a skops file.
"""

import math

import numpy as np


def cosine_rate(epoch, learning_rate_init, warmup_iters, max_iter, min_learning_rate):
    """The rate of epoch ``epoch`` (counted from 0) of ``learning_rate='cosine'``.

    A linear warm-up over the first ``W = warmup_iters`` epochs, then a cosine
    decay from ``learning_rate_init`` towards ``min_learning_rate`` over the
    remaining ``max_iter - W`` epochs::

        e < W:       learning_rate_init * (e + 1) / (W + 1)
        W <= e < T:  min_lr + (learning_rate_init - min_lr) * (1 + cos(pi * (e - W) / (T - W))) / 2
        otherwise:   min_lr

    with ``T = max_iter``. The warm-up climbs in equal steps to the peak,
    which epoch ``W`` reaches (the cosine's start); the cosine's end, the
    floor, is the rate of epoch ``T``: the first epoch after ``max_iter``,
    which only ``partial_fit`` reaches (it stays there). A warm-up of
    ``max_iter`` epochs or more never reaches the cosine. This is PyTorch's
    ``SequentialLR([LinearLR(start_factor=1 / (W + 1), total_iters=W),
    CosineAnnealingLR(T_max=T - W, eta_min=min_lr)], milestones=[W])``
    stepped once per epoch, and Hugging Face's cosine schedule with warm-up
    at epoch granularity (whose warm-up starts at 0, a wasted epoch here).
    """
    lr0, floor = float(learning_rate_init), float(min_learning_rate)
    W, T = int(warmup_iters), int(max_iter)
    if epoch < W:
        return lr0 * (epoch + 1) / (W + 1)
    if epoch >= T:
        return floor
    return floor + (lr0 - floor) * (1 + math.cos(math.pi * (epoch - W) / (T - W))) / 2


class _StochasticOptimizer:
    """A stochastic optimizer's settings and moments across epochs and
    partial_fit calls.

    The settings are read from the estimator once, when the optimizer is
    made, as scikit-learn's are: a ``set_params`` between two ``partial_fit``
    calls does not reach it, and a new fit (``warm_start`` included) makes a
    new one. The moments are packed buffers shaped like the parameter buffer,
    so that the engine updates everything in one pass.

    Once an optimizer is the estimator's ``_optimizer`` it is not changed
    (other threads may read it, and joblib may have mapped its moments
    read-only): training continues on :meth:`with_own_moments` and publishes
    that.
    """

    # the solver's name, as the estimator's `solver` and the engine say it
    kind = None
    # the estimator parameters it reads when made (see _setting)
    SETTINGS = ("learning_rate_init",)
    # ... and those of the 'cosine' schedule, which every solver follows
    SCHEDULE = ("lr_schedule", "warmup_iters", "min_learning_rate", "max_iter")
    # its moment buffers, in the order the engine takes them (state1, state2)
    MOMENTS = ()

    def __init__(self, est, n_params, dtype):
        for name in self.SETTINGS + self.SCHEDULE:
            setattr(self, name, _setting(est, name))
        # the epochs trained: the 'cosine' schedule's clock
        self.epochs = 0
        # the rate the next epoch steps with (sgd's schedules and 'cosine'
        # change it); with the default schedule learning_rate_init as a float,
        # the value the engine's step has always read
        self.learning_rate = float(est.learning_rate_init)
        if self.lr_schedule == "cosine":
            self.learning_rate = self._cosine_rate()
        for name in self.MOMENTS:
            setattr(self, name, np.zeros(n_params, dtype=dtype))

    def _cosine_rate(self):
        return cosine_rate(self.epochs, self.learning_rate_init, self.warmup_iters,
                           self.max_iter, self.min_learning_rate)

    # -- the moments --------------------------------------------------------
    def moments(self):
        """The moment buffers, in the engine's order."""
        return [getattr(self, name) for name in self.MOMENTS]

    def with_moments(self, moments):
        """A new optimizer like this one, training these moment buffers."""
        new = self.copy()
        for name, moment in zip(self.MOMENTS, moments):
            setattr(new, name, moment)
        return new

    def with_own_moments(self):
        """A new optimizer like this one, with copies of its moments for the
        engine to update in place: this one's may be read by other threads
        (or be read-only, from joblib.load(..., mmap_mode="r"))."""
        return self.with_moments([moment.copy() for moment in self.moments()])

    def widened(self):
        """A new optimizer like this one, with its moments in float64 (exactly
        their values), as scikit-learn's become at the first float64 gradient
        (see :class:`cymlp._float64_backward.Float64Backward`)."""
        return self.with_moments([moment.astype(np.float64) for moment in self.moments()])

    def copy(self):
        """A new optimizer like this one, sharing its moment buffers: the
        published optimizer stays as it was when the copy's rate changes."""
        new = type(self).__new__(type(self))
        vars(new).update(vars(self))
        return new

    def moments_dtype(self):
        """The moments' dtype (float64 beside float32 weights in
        scikit-learn's float64 arithmetic)."""
        return self.moments()[0].dtype

    def matches(self, n_params, dtype):
        """Whether the moments fit a parameter buffer of this size and dtype
        (a pickle or a user may have replaced them)."""
        return all(
            isinstance(m, np.ndarray) and m.shape == (n_params,) and m.dtype == dtype
            for m in self.moments()
        )

    # -- what the engine needs, and what an epoch tells it --------------------
    def engine_settings(self):
        """The settings and moments, as :class:`cymlp._engine.Trainer` takes them.

        The Trainer takes every solver's settings; those of other solvers are
        unused by this one's step (0 here).
        """
        settings = dict.fromkeys(
            ("momentum", "nesterovs_momentum", "beta_1", "beta_2", "epsilon", "weight_decay"),
            0,
        )
        settings.update({name: getattr(self, name) for name in self.SETTINGS})
        settings["t"] = self._counters()["t"]
        moments = self.moments()
        settings.update(kind=self.kind, state1=moments[0],
                        state2=moments[1] if len(moments) > 1 else None)
        return settings

    def steps_taken(self, t):
        """The engine's step count after an epoch (adam's bias correction
        counts steps; sgd's does not exist)."""

    def _counters(self):
        """The engine's step count ``t`` for this solver (the engine and the
        on-disk format have one for every solver; it stays 0 for sgd), and
        the epochs trained."""
        return {"t": 0, "epochs": self.epochs}

    def _restore_counters(self, state):
        """Take the counters this solver keeps from a :meth:`to_dict` state
        (a state written before the 'cosine' schedule has no epoch count; it
        trained with another schedule, which does not read it)."""
        self.epochs = state.get("epochs", 0)

    def iteration_ends(self, time_step):
        """An epoch ended after ``time_step`` samples in all (``t_``): the
        epoch count moves on, and with it the 'cosine' schedule's rate."""
        self.epochs += 1
        if self.lr_schedule == "cosine":
            self.learning_rate = self._cosine_rate()

    def trigger_stopping(self, msg, verbose):
        """Training stalled (``msg`` says how): True to stop. Called on a
        :meth:`copy`, never on the published optimizer."""
        if verbose:
            print(msg + " Stopping.")
        return True

    # -- on disk ----------------------------------------------------------------
    def to_dict(self):
        """The optimizer as plain data, for pickles and skops files.

        The format is the one cymlp has written since optimizers were stored
        as data: ``kind``, the settings, ``learning_rate``, ``t`` and the
        moments as ``state1`` and ``state2`` (None for sgd); since the
        'cosine' schedule, also its settings and ``epochs``.
        """
        moments = self.moments()
        state = {name: getattr(self, name) for name in self.SETTINGS + self.SCHEDULE}
        state.update(self._counters())
        state.update(kind=self.kind, learning_rate=self.learning_rate, state1=moments[0],
                     state2=moments[1] if len(moments) > 1 else None)
        return state


class SGDOptimizer(_StochasticOptimizer):
    """Stochastic gradient descent with momentum (Nesterov's, optionally) and
    scikit-learn's learning-rate schedules: 'constant', 'invscaling' (the
    rate decays with the samples seen) and 'adaptive' (divided by 5 when
    training stalls); and cymlp's 'cosine' (:func:`cosine_rate`)."""

    kind = "sgd"
    SETTINGS = ("learning_rate_init", "power_t", "momentum", "nesterovs_momentum",
                "max_grad_norm")
    MOMENTS = ("velocity",)

    def iteration_ends(self, time_step):
        super().iteration_ends(time_step)
        if self.lr_schedule == "invscaling":
            self.learning_rate = (
                float(self.learning_rate_init) / (time_step + 1) ** self.power_t
            )

    def trigger_stopping(self, msg, verbose):
        if self.lr_schedule != "adaptive":
            return super().trigger_stopping(msg, verbose)
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % self.learning_rate)
        return False


class AdamOptimizer(_StochasticOptimizer):
    """Adam: first and second moment estimates with bias correction, at the
    constant rate ``learning_rate_init`` (scikit-learn's schedules are sgd's
    alone, as in scikit-learn) or following 'cosine' (:func:`cosine_rate`):
    the bias correction multiplies the epoch's rate."""

    kind = "adam"
    SETTINGS = ("learning_rate_init", "beta_1", "beta_2", "epsilon", "max_grad_norm")
    MOMENTS = ("first_moment", "second_moment")

    def __init__(self, est, n_params, dtype):
        super().__init__(est, n_params, dtype)
        self.t = 0  # steps taken, for the bias correction

    def steps_taken(self, t):
        self.t = t

    def _counters(self):
        return {**super()._counters(), "t": self.t}

    def _restore_counters(self, state):
        super()._restore_counters(state)
        self.t = state["t"]


class AdamWOptimizer(AdamOptimizer):
    """Adam with decoupled weight decay (Loshchilov & Hutter; PyTorch's
    ``torch.optim.AdamW``): every step first multiplies every weight and
    bias by ``1 - lr * weight_decay`` (lr the epoch's rate: learning_rate_init,
    or the 'cosine' schedule's; PyTorch decays at the scheduled rate too),
    then takes Adam's step (scikit-learn's bias-corrected rate) from the gradient, ``alpha``'s
    L2 term included, at the weights before the decay."""

    kind = "adamw"
    SETTINGS = AdamOptimizer.SETTINGS + ("weight_decay",)


OPTIMIZERS = {cls.kind: cls for cls in (SGDOptimizer, AdamOptimizer, AdamWOptimizer)}


def new_optimizer(est, n_params, dtype):
    """A fresh optimizer for ``est.solver``, its moments zeros of this size and dtype."""
    return OPTIMIZERS[est.solver](est, n_params, dtype)


def optimizer_from_dict(state, est):
    """Rebuild an optimizer from :meth:`~_StochasticOptimizer.to_dict`'s output.

    Also from the attributes of an optimizer pickled by cymlp 0.1.0 (the
    same names, fewer settings): the settings a state lacks are taken from
    the estimator's parameters, which are what that model trained with.
    Keys of another solver's settings (written by versions that kept every
    solver's) are ignored.
    """
    cls = OPTIMIZERS[state["kind"]]
    self = cls.__new__(cls)
    for name in cls.SETTINGS + cls.SCHEDULE:
        setattr(self, name, state[name] if name in state else _setting(est, name))
    self.learning_rate = state["learning_rate"]
    for name, key in zip(cls.MOMENTS, ("state1", "state2")):
        setattr(self, name, state[key])
    self._restore_counters(state)
    return self


def _setting(est, name):
    """The estimator's parameter behind setting ``name``: its own name, but
    for sgd's schedule, the estimator's ``learning_rate`` (as in
    scikit-learn's SGDOptimizer, where ``learning_rate`` is the current rate)."""
    return _plain(getattr(est, "learning_rate" if name == "lr_schedule" else name))


def _plain(value):
    """A parameter as a plain Python number, kept as given otherwise (the
    schedules compute with it as scikit-learn's optimizers do)."""
    return value.item() if isinstance(value, np.generic) else value
