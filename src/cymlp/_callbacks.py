"""Callbacks: the ``callbacks`` parameter's functions and scikit-learn's protocol.

``ProgressBar``, the ready-made callback; the checks of ``callbacks=`` at the
start of a fit and the calls after every epoch or lbfgs iteration
(:func:`callbacks_say_stop`); one fit as a task of scikit-learn's callback
framework, >= 1.9 (:class:`FitTask`).
"""

import sys

# InvalidParameterError: scikit-learn's exception class for a bad parameter
# value; it has no public import path.
from sklearn.utils._param_validation import InvalidParameterError


class ProgressBar:
    """Show training progress, one step per epoch (or lbfgs iteration).

    Uses ``tqdm`` when it is installed, else rewrites a plain text line on
    stderr. Pass an instance as ``callbacks=ProgressBar()``; it never asks
    training to stop.

    Parameters
    ----------
    file : file-like, default=sys.stderr
        Where to write the progress.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from cymlp import MLPClassifier, ProgressBar
    >>> X, y = load_iris(return_X_y=True)
    >>> bar = ProgressBar()
    >>> clf = MLPClassifier(max_iter=5, callbacks=bar).fit(X, y)  # doctest: +SKIP
    """

    def __init__(self, file=None):
        self.file = file

    def __call__(self, info):
        est = info["estimator"]
        if info["epoch"] == 1 or not hasattr(self, "_bar"):
            self._open(est.max_iter)
        text = "loss=%.5g" % info["loss"]
        if info.get("validation_score") is not None:
            text += " val_score=%.4f" % info["validation_score"]
        self._update(info["epoch"], text)
        return False

    def _open(self, total):
        self.close()
        try:
            from tqdm.auto import tqdm
        except ImportError:
            self._bar = None
        else:
            self._bar = tqdm(total=total, unit="epoch", file=self.file, leave=False)
        self._total = total
        self._shown = 0

    def _update(self, epoch, text):
        if self._bar is not None:
            self._bar.update(epoch - self._shown)
            self._bar.set_postfix_str(text, refresh=False)
        else:
            out = self.file or sys.stderr
            out.write("\repoch %d/%d %s" % (epoch, self._total, text))
            out.flush()
        self._shown = epoch

    def close(self):
        """Close the bar (done by the next fit's first epoch, or by hand)."""
        bar = getattr(self, "_bar", None)
        if bar is not None:
            bar.close()
        self._bar = None

    def __getstate__(self):
        # a live tqdm bar does not pickle; the estimator holding us must
        state = self.__dict__.copy()
        state.pop("_bar", None)
        return state


def as_callback_list(callbacks):
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


class FitTask:
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


def callbacks_say_stop(callbacks, est):
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
