"""The stochastic solvers' epoch loop (sgd, adam, adamw).

``_StochasticMixin._fit_stochastic`` sets a fit up -- the optimizer (new, or
continued by partial_fit), the early-stopping split, the batch size, the
engine's Trainer -- and ``_run_epochs`` runs it: one compiled call per epoch,
then Python's once-per-epoch work in scikit-learn's order (the shuffling
draw before, then the loss curve, the learning-rate schedule, the validation
score, callbacks, the stall count and the convergence warning), each epoch's
result published whole.
"""

import contextlib
import dataclasses
import signal
import threading
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from ._callbacks import callbacks_say_stop
from ._data import Rows
from ._early_stopping import EarlyStopping, _StallMixin, validation_split
from ._engine import Trainer
from ._float64_backward import Float64Backward
from ._optimizers import new_optimizer


@contextlib.contextmanager
def deferred_keyboard_interrupt():
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


@dataclasses.dataclass
class EpochRun:
    """What the epoch loop of one stochastic fit works on."""

    network: object             # the training Network
    trainer: Trainer            # float32 epochs' (None: float64_backward from the start)
    optimizer: object           # the first epoch's, with moments of its own
    params: np.ndarray          # the packed weights the first epoch trains in place
    rows: Rows                  # the rows that train
    Y: np.ndarray               # their targets in params' dtype (None without a trainer)
    order: object               # rows' visiting order, shuffled per epoch; None: no shuffle
    dropout: bool               # draw a dropout seed per epoch
    early_stopping: EarlyStopping = None
    # float32 weights that may need scikit-learn's float64 arithmetic, or None
    float64_backward: Float64Backward = None

    def epoch(self, params, optimizer, alpha, learning_rate, seed):
        """Train one epoch of the epoch's own weights and moments, in place.

        Parameters
        ----------
        params : ndarray
            The weights this epoch trains (not yet published).
        optimizer : cymlp._optimizers._StochasticOptimizer
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
        optimizer : cymlp._optimizers._StochasticOptimizer
            The optimizer trained: ``optimizer``, or one with float64
            moments if the epoch went over to scikit-learn's arithmetic.
        """
        wide = self.float64_backward
        if wide is not None and wide.active:
            return wide.run_epoch(self.order, params, optimizer, alpha, learning_rate,
                                  seed), optimizer
        self.trainer.set_moments(*optimizer.moments())
        if wide is not None:
            wide.save(params, optimizer)
        loss = self.trainer.run_epoch(self.rows.X, self.Y, self.rows.sample_weight, self.order,
                                      params, alpha, learning_rate, dropout_seed=seed)
        if wide is None or self.trainer.state_finite(params):
            optimizer.steps_taken(self.trainer.t)
            return loss, optimizer
        # float32 overflowed: the epoch again, from its start (same order and
        # dropout seed), in scikit-learn's arithmetic, and so on from here
        optimizer = wide.restore(params, optimizer)
        wide.active = True
        return wide.run_epoch(self.order, params, optimizer, alpha, learning_rate,
                              seed), optimizer


class _StochasticMixin(_StallMixin):
    """The sgd and adam training of _BaseMLP."""

    def _fit_stochastic(self, rows, given_validation, network, params, incremental,
                        dropout, callbacks, task, float64_backward=None):
        """Train ``params`` (this fit's own buffer) on ``rows`` epoch by epoch.

        ``given_validation`` is the user's validation set (validated), or
        None; ``float64_backward`` a :class:`Float64Backward` for float32
        weights that may need scikit-learn's float64 arithmetic, or None.
        """
        wide = float64_backward
        optimizer = self._continued_optimizer(params, incremental, wide)
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        validation = None
        if self.early_stopping:
            rows, validation = validation_split(self, rows, given_validation)

        n_samples = rows.n_samples
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn(
                    "Got `batch_size` less than 1 or larger than "
                    "sample size. It is going to be clipped"
                )
            batch_size = int(np.clip(self.batch_size, 1, n_samples))

        # shuffled dense minibatches are gathered by index; CSR rows are read in place
        gather = self.shuffle and not sp.issparse(rows.X)
        settings = dict(max_rows=batch_size, gather=gather, dropout=dropout)
        if wide is not None:
            wide.use_rows(network, rows, **settings)
        float32_epochs = wide is None or not wide.active
        run = EpochRun(
            network=network,
            trainer=Trainer(
                network, params.dtype, optimizer=optimizer.engine_settings(), **settings
            ) if float32_epochs else None,
            optimizer=optimizer,
            params=params,
            rows=rows,
            Y=rows.targets() if float32_epochs else None,
            order=np.arange(n_samples, dtype=np.intp) if self.shuffle else None,
            dropout=dropout is not None,
            float64_backward=wide,
        )
        if validation is not None:
            run.early_stopping = EarlyStopping.start(self, network, params, validation,
                                                     float64_backward=wide is not None)
        with deferred_keyboard_interrupt() as interrupted:
            self._run_epochs(run, callbacks, task, incremental, interrupted)

    def _continued_optimizer(self, params, incremental, float64_backward):
        """The first epoch's optimizer, with moments of its own.

        As scikit-learn: a new optimizer for every fit (warm_start too), and
        partial_fit continues the last one, settings included. A continued
        model whose weights changed dtype starts new moments.
        """
        wide = float64_backward
        # moments in float64 beside float32 weights: scikit-learn's arithmetic
        moments_dtype = np.float64 if wide is not None and wide.active else params.dtype
        optimizer = getattr(self, "_optimizer", None)
        if (incremental and optimizer is not None and moments_dtype == np.float64
                and params.dtype == np.float32 and optimizer.moments_dtype() == np.float32):
            # float32 moments continued in scikit-learn's arithmetic
            optimizer = optimizer.widened()
        if not incremental or optimizer is None or optimizer.moments_dtype() != moments_dtype:
            return new_optimizer(self, params.size, moments_dtype)
        if not optimizer.matches(params.size, moments_dtype):
            raise ValueError(
                "The optimizer state (_optimizer) does not match the network: "
                "its moments must have %d entries of dtype %s."
                % (params.size, moments_dtype)
            )
        return optimizer.with_own_moments()

    def _moments_widened(self, incremental):
        """Whether partial_fit continues an optimizer whose moments are
        float64 beside float32 weights: scikit-learn's moments stay float64
        once a float64 gradient made them so, and so does cymlp's training
        in scikit-learn's arithmetic (see :mod:`cymlp._float64_backward`)."""
        optimizer = getattr(self, "_optimizer", None) if incremental else None
        moments = [] if optimizer is None else optimizer.moments()
        return (bool(moments) and isinstance(moments[0], np.ndarray)
                and moments[0].dtype == np.float64)

    def _run_epochs(self, run, callbacks, task, incremental, interrupted):
        """The epoch loop: one compiled call per epoch, then the bookkeeping.

        Each epoch trains buffers of its own -- the first this fit's packed
        weights and moments, the next ones copies of what the last epoch
        published -- and publishes them whole when it is done, with the
        epoch's counters and loss curve.
        """
        n_samples = run.rows.n_samples
        network, stopping = run.network, run.early_stopping
        params, optimizer = run.params, run.optimizer

        def weights():
            return network.views(params)

        try:
            self.n_iter_ = 0
            for epoch in range(self.max_iter):
                if interrupted():
                    raise KeyboardInterrupt
                subtask = task.begin_subtask(weights, "epoch")
                if epoch:
                    # the last epoch's buffers are published: train copies
                    params, optimizer = params.copy(), optimizer.with_own_moments()
                if run.order is not None:
                    # scikit-learn's shuffle(sample_idx, random_state) draws a
                    # permutation with RandomState.shuffle(arange(n)) and indexes
                    # sample_idx with it. Shuffling the order in place makes the
                    # same swaps from the same draws, so the same seed visits the
                    # rows in the same order -- without ~0.25 ms of per-epoch
                    # validation and indexing overhead.
                    self._random_state.shuffle(run.order)
                seed = None
                if run.dropout:
                    # one draw per epoch seeds the masks (only with dropout, so
                    # the default keeps scikit-learn's random stream)
                    seed = int(self._random_state.randint(0, 2**63 - 1, dtype=np.int64))
                # alpha is read per epoch, as scikit-learn reads it per batch
                loss_sum, optimizer = run.epoch(params, optimizer, float(self.alpha),
                                                optimizer.learning_rate, seed)
                # numpy.float64 whatever the dtype, as sklearn (its losses go
                # through float64 targets or scipy.special.xlogy)
                loss = np.float64(loss_sum / n_samples)
                t = self.t_ + n_samples
                # the next epoch's rate, published with this epoch's moments
                optimizer.iteration_ends(t)
                # The curve is a new list, as old ones are never written: a
                # copy per epoch (15 us at 10,000 entries).
                progress = {} if stopping is not None else self._training_progress(loss)
                self._publish_params(
                    network, params, _optimizer=optimizer, n_iter_=self.n_iter_ + 1,
                    loss_=loss, t_=t, loss_curve_=[*self.loss_curve_, loss], **progress,
                )
                if self.verbose:
                    print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))

                # The validation score is the model's own (self.predict, or
                # the scorer's call on self), so it follows the publication
                # of the weights it scores, in a second one.
                if stopping is not None and self._update_validation(stopping, params):
                    stopping.best_params = params

                stop = task.end_subtask(subtask, weights)
                if callbacks_say_stop(callbacks, self) or stop:
                    if self.verbose:
                        print("A callback asked to stop. Stopping.")
                    break

                if self._no_improvement_count > self.n_iter_no_change:
                    msg = self._stall_message(stopping is not None)
                    # the published optimizer is not changed: a copy with
                    # the new rate (sharing its published moments) replaces it
                    optimizer = optimizer.copy()
                    if optimizer.trigger_stopping(msg, self.verbose):
                        break
                    self._publish(_optimizer=optimizer, _no_improvement_count=0)

                if incremental:
                    break

                if self.n_iter_ == self.max_iter:
                    warnings.warn(
                        "Stochastic Optimizer: Maximum iterations (%d) "
                        "reached and the optimization hasn't converged yet."
                        % self.max_iter,
                        ConvergenceWarning,
                    )
            if interrupted():
                raise KeyboardInterrupt
        except KeyboardInterrupt:
            # scikit-learn warns and returns as if training had ended. We warn
            # the same way but let the interrupt through: a Ctrl-C in a grid
            # search or a script should stop it, not just this one fit. Ctrl-C
            # is held until the epoch's bookkeeping is done, so the weights,
            # n_iter_, t_ and the curves always describe the same epochs.
            warnings.warn("Training interrupted by user.")
            raise
        finally:
            if stopping is not None:
                # the best epoch's buffer was published (or is this fit's
                # starting copy, never written): published again, not copied
                self._publish_params(network, stopping.best_params)
