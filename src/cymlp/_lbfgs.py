"""The lbfgs solver: scipy's L-BFGS-B over the engine's loss and gradient.

``_LbfgsMixin._fit_lbfgs`` hands scipy the packed parameter buffer as its
starting point and the engine's full-batch loss and gradient as the
function it minimises; scipy's callback after each iteration prints the
verbose line, publishes ``n_iter_`` and ``loss_`` for the callbacks and asks
them whether to stop.
"""

import warnings

import numpy as np
import scipy.optimize
from sklearn.exceptions import ConvergenceWarning

from ._callbacks import callbacks_say_stop
from ._engine import Trainer


class _LbfgsMixin:
    """The lbfgs training of _BaseMLP."""

    def _fit_lbfgs(self, rows, network, params, callbacks, task, float64_backward=None):
        """Minimise the loss over ``rows`` with scipy's L-BFGS-B, from ``params``.

        scipy hands each candidate point ``x`` (packed like our parameter
        buffer, in its dtype) straight to the engine: no unpacking, no copy of
        the weights per evaluation. The result is published at the end. With
        ``float64_backward`` (a
        :class:`cymlp._float64_backward.Float64Backward`), a point where float32
        overflows is evaluated again in scikit-learn's float64 arithmetic.
        """
        wide = float64_backward
        X, sample_weight = rows.X, rows.sample_weight
        if wide is not None:
            wide.use_rows(network, rows, max_rows=max(rows.n_samples, 1))
        Y = None
        if wide is None or not wide.active:
            Y = rows.targets()
            trainer = Trainer(network, params.dtype, max(rows.n_samples, 1))
        alpha = float(self.alpha)

        def loss_grad(x):
            if Y is not None:
                loss, grad = trainer.loss_grad(X, Y, sample_weight, x, alpha)
                if wide is None or (np.isfinite(loss) and np.isfinite(grad).all()):
                    # scipy may keep the gradient it was given: hand over a copy
                    return loss, grad.copy()
            return wide.loss_grad(x, alpha)

        iteration = 0
        subtask = task.begin_subtask(lambda: network.views(params), "lbfgs-iteration")

        def after_iteration(intermediate_result):
            nonlocal iteration, subtask
            iteration += 1
            if self.verbose:
                print("Iteration %d, loss = %.8f" % (iteration, intermediate_result.fun))
            # what the callbacks see, as after a stochastic epoch
            self._publish(n_iter_=iteration, loss_=intermediate_result.fun)
            x = intermediate_result.x
            stop = task.end_subtask(subtask, lambda: network.views(x))
            subtask = task.begin_subtask(lambda: network.views(x), "lbfgs-iteration")
            if callbacks_say_stop(callbacks, self) or stop:
                raise StopIteration  # scipy ends the minimisation there

        # scipy's L-BFGS-B does its vector arithmetic in scipy's BLAS, at the
        # user's thread setting, as scikit-learn's does: the engine never
        # changes that setting (see csrc/blas.h), so a fit gives the same bits
        # whether it runs alone or beside others in threads; the loss and
        # gradient are the engine's, the same bits for any thread count.
        result = scipy.optimize.minimize(
            loss_grad,
            params,
            method="L-BFGS-B",
            jac=True,
            options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol},
            callback=after_iteration if self.verbose or callbacks or task.per_epoch
            else None,
        )
        if subtask is not None:
            # the iteration opened after the last one never ran: an empty task
            subtask.call_on_fit_task_end(estimator=self)
        n_iter = min(result.nit, self.max_iter)
        stopped_by_callback = result.status == 99  # StopIteration from a callback
        if result.status != 0 and not stopped_by_callback:
            msg = (
                "lbfgs failed to converge after %d iteration(s) (status=%d):\n%s\n"
                % (n_iter, result.status, result.message)
            )
            if n_iter == self.max_iter:
                msg += (
                    "\nIncrease the number of iterations to improve the "
                    "convergence (max_iter=%d)." % self.max_iter
                )
            msg += (
                "\nYou might also want to scale the data as shown in:\n"
                "    https://scikit-learn.org/stable/modules/preprocessing.html"
            )
            warnings.warn(msg, ConvergenceWarning, stacklevel=3)
        # scipy evaluates the loss at points of x0's dtype but returns float64
        # weights; scikit-learn keeps those, so float32 data ends with float64
        # coefs_ here, and so do we. result.x is scipy's own array, which
        # nothing writes once minimize has returned: published as it is.
        self._publish_params(network, result.x, n_iter_=n_iter, loss_=np.float64(result.fun))
