"""Ready-made training callbacks (see the ``callbacks`` parameter)."""

import sys


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
