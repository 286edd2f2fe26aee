"""Plotting the course of training, after scikit-learn's Display objects."""

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._engine.vocabulary import STOCHASTIC_SOLVERS


class TrainingCurveDisplay:
    """Training loss per epoch, with the validation loss and score when recorded.

    Build it with :meth:`from_estimator`; :meth:`plot` draws it with
    matplotlib (which is needed only then).

    Parameters
    ----------
    loss_curve : array-like of shape (n_epochs,)
        The training loss at each epoch (``loss_curve_``).
    validation_loss_curve : array-like of shape (n_epochs,), default=None
        The validation loss (``validation_loss_curve_``).
    validation_scores : array-like of shape (n_epochs,), default=None
        The validation score (``validation_scores_``), drawn on a second axis.
    estimator_name : str, default=None
        Used in the title.

    Attributes
    ----------
    ax_ : matplotlib Axes
        The axes with the loss curves.
    score_ax_ : matplotlib Axes or None
        The twin axes with the validation score.
    figure_ : matplotlib Figure
    lines_ : dict of matplotlib Line2D
        Keyed by 'loss', 'validation_loss', 'validation_score'.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from cymlp import MLPClassifier, TrainingCurveDisplay
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = MLPClassifier(early_stopping=True, max_iter=20).fit(X / 16, y)
    >>> TrainingCurveDisplay.from_estimator(clf)  # doctest: +SKIP
    """

    def __init__(self, loss_curve, validation_loss_curve=None, validation_scores=None,
                 estimator_name=None):
        self.loss_curve = loss_curve
        self.validation_loss_curve = validation_loss_curve
        self.validation_scores = validation_scores
        self.estimator_name = estimator_name

    @classmethod
    def from_estimator(cls, estimator, *, ax=None, **kwargs):
        """Plot the curves a fitted cymlp estimator recorded.

        Parameters
        ----------
        estimator : MLPClassifier or MLPRegressor
            Fitted with a stochastic solver ('sgd', 'adam' or 'adamw').
        ax : matplotlib Axes, default=None
            Where to draw; a new figure when None.
        **kwargs
            Passed to :meth:`plot`.

        Returns
        -------
        display : TrainingCurveDisplay
        """
        check_is_fitted(estimator)
        if getattr(estimator, "loss_curve_", None) is None:
            raise ValueError(
                "%s has no loss_curve_: the curves are recorded by the stochastic "
                "solvers (%s), not by lbfgs."
                % (type(estimator).__name__, ", ".join(map(repr, STOCHASTIC_SOLVERS)))
            )
        display = cls(
            loss_curve=estimator.loss_curve_,
            validation_loss_curve=getattr(estimator, "validation_loss_curve_", None),
            validation_scores=getattr(estimator, "validation_scores_", None),
            estimator_name=type(estimator).__name__,
        )
        return display.plot(ax=ax, **kwargs)

    def plot(self, ax=None, *, log_scale=False):
        """Draw the curves.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Where to draw; a new figure when None.
        log_scale : bool, default=False
            Logarithmic loss axis.

        Returns
        -------
        display : TrainingCurveDisplay
            This object, with ``ax_``, ``score_ax_``, ``figure_``, ``lines_``.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots()
        epochs = np.arange(1, len(self.loss_curve) + 1)
        self.lines_ = {}
        (self.lines_["loss"],) = ax.plot(epochs, self.loss_curve, label="training loss")
        if self.validation_loss_curve is not None:
            (self.lines_["validation_loss"],) = ax.plot(
                epochs, self.validation_loss_curve, label="validation loss"
            )
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        if log_scale:
            ax.set_yscale("log")
        self.score_ax_ = None
        handles = list(self.lines_.values())
        if self.validation_scores is not None:
            self.score_ax_ = ax.twinx()
            (self.lines_["validation_score"],) = self.score_ax_.plot(
                epochs, self.validation_scores, color="C2", linestyle="--",
                label="validation score",
            )
            self.score_ax_.set_ylabel("validation score")
            handles.append(self.lines_["validation_score"])
        ax.legend(handles=handles, loc="best")
        if self.estimator_name:
            ax.set_title("%s training curves" % self.estimator_name)
        self.ax_ = ax
        self.figure_ = ax.figure
        return self
