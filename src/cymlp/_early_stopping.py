"""Early stopping and the stall count of the stochastic solvers.

With ``early_stopping=True`` a fit sets aside ``validation_fraction`` of its
rows (stratified for a classifier with one output, as scikit-learn does) or
takes the user's ``X_val``/``y_val``; after every epoch it scores the
published weights, records the validation loss and keeps the best epoch's
weights (:class:`EarlyStopping`). Without it, the training loss decides when
training stalls. Either way ``_no_improvement_count`` counts the epochs
without an improvement of more than ``tol``.
"""

import dataclasses

import numpy as np
from sklearn.base import is_classifier
from sklearn.metrics import check_scoring
from sklearn.model_selection import train_test_split

from ._data import Rows, engine_input
from ._engine import Trainer
from ._float64_backward import Float64Backward


@dataclasses.dataclass
class ValidationSet:
    """The validation rows: as the model's own score reads them (``X``,
    ``y``, ``sample_weight``) and as the engine's loss reads them (``rows``)."""

    X: object
    y: object
    sample_weight: object
    rows: Rows


def validation_split(est, rows, given):
    """The rows that train and the validation set of an early-stopping fit.

    Parameters
    ----------
    est : _BaseMLP
        Its random state draws the split (after the initial weights, before
        the first epoch's shuffle, as in scikit-learn).
    rows : Rows
        The fit's rows.
    given : tuple (X_val, y_val, sample_weight_val) or None
        The user's validation set, validated; None to split one off ``rows``.

    Returns
    -------
    train : Rows
    validation : ValidationSet
    """
    dtype = rows.X.dtype
    if given is not None:
        # all of X trains
        X_val, y_val, sw_val = given
        val_rows = Rows(
            X=engine_input(X_val, dtype),
            # the loss's targets: the training loss's (label smoothing too)
            y=est._training_targets(est._encode_targets(y_val)),
            sample_weight=None if sw_val is None else np.ascontiguousarray(sw_val, dtype=dtype),
            given_weight=sw_val,
        )
        return rows, ValidationSet(X_val, y_val, sw_val, val_rows)
    # the split's draws depend on the number of rows (and the stratification)
    # alone: splitting the row indices splits every array alike
    stratify = rows.y if is_classifier(est) and est.n_outputs_ == 1 else None
    train, val = train_test_split(
        np.arange(rows.n_samples),
        random_state=est._random_state,
        test_size=est.validation_fraction,
        stratify=stratify,
    )
    if len(val) < 2:
        raise ValueError(
            "The validation set is too small. Increase 'validation_fraction' "
            "or the size of your dataset."
        )
    # (with label smoothing the rows' targets are smoothed; decoding them
    # gives back the labels: smoothing keeps each row's largest target the
    # true class's, and binary targets on their side of 0.5)
    val_rows = rows.take(val)
    # the validation loss's float64 arithmetic weighs these rows with the
    # working dtype's weights (those of the user's set, as validated)
    val_rows = dataclasses.replace(val_rows, given_weight=val_rows.sample_weight)
    validation = ValidationSet(val_rows.X, est._decode_targets(val_rows.y),
                               val_rows.sample_weight, val_rows)
    return rows.take(train), validation


class ValidationLoss:
    """The loss of the current weights on the validation set, L2 term included.

    With ``float64_backward`` (float32 weights whose targets scikit-learn
    keeps in float64, see :mod:`cymlp._float64_backward`), a loss float32
    cannot give (targets past its range) is computed again in that
    arithmetic.
    """

    def __init__(self, network, rows, float64_backward=False):
        self.X = rows.X
        # targets past float32's range become inf here: the float64 loss below
        with np.errstate(over="ignore"):
            self.Y = rows.targets().reshape(self.X.shape[0], -1)
        self.sw = rows.sample_weight
        self.trainer = Trainer(network, self.X.dtype, max_rows=self.X.shape[0])
        self.wide = None
        if float64_backward:
            self.wide = Float64Backward(active=False)
            self.wide.use_rows(network, rows, max_rows=self.X.shape[0])

    def __call__(self, params, alpha):
        loss, _ = self.trainer.loss_grad(self.X, self.Y, self.sw, params, alpha,
                                         with_grad=False)
        if self.wide is not None and not np.isfinite(loss):
            loss, _ = self.wide.loss_grad(params, alpha, with_grad=False)
        return float(loss)


@dataclasses.dataclass
class EarlyStopping:
    """An early-stopping fit's validation set, its loss and the best weights so far."""

    validation: ValidationSet
    loss: ValidationLoss
    best_params: np.ndarray
    scorer: object = None  # the scoring= scorer, or None (the model's score / the loss)

    @classmethod
    def start(cls, est, network, params, validation, float64_backward):
        """The state at the first epoch: ``params`` (the starting weights) best."""
        return cls(
            validation=validation,
            loss=ValidationLoss(network, validation.rows, float64_backward=float64_backward),
            best_params=params.copy(),
            scorer=None if est.scoring in (None, "loss")
            else check_scoring(est, scoring=est.scoring),
        )


class _StallMixin:
    """How _BaseMLP's epoch loop judges an epoch: the validation score (early
    stopping) or the training loss, against ``tol``."""

    def _update_validation(self, stopping, params):
        """Score the published weights on the validation set and publish the
        validation curves; True if the score is the best yet.

        The score is scikit-learn's (accuracy / R2) with ``scoring=None``,
        minus the validation loss with ``scoring="loss"`` (higher is better,
        as HistGradientBoosting records it), or the given scorer's.
        """
        loss = stopping.loss(params, float(self.alpha))
        val = stopping.validation
        if self.scoring is None:
            score = self._score(val.X, val.y, sample_weight=val.sample_weight)
        elif self.scoring == "loss":
            score = -loss
        else:
            score = stopping.scorer(self, val.X, val.y, sample_weight=val.sample_weight)
        if self.verbose:
            print("Validation score: %f" % score)
            if self.verbose >= 2:
                print("Validation loss: %.8f" % loss)
        stalled = score < self.best_validation_score_ + self.tol
        best = score > self.best_validation_score_
        self._publish(
            validation_loss_curve_=[*self.validation_loss_curve_, loss],
            validation_scores_=[*self.validation_scores_, score],
            _no_improvement_count=self._no_improvement_count + 1 if stalled else 0,
            best_validation_score_=score if best else self.best_validation_score_,
        )
        return best

    def _training_progress(self, loss):
        """best_loss_ and _no_improvement_count after an epoch of this loss."""
        stalled = loss > self.best_loss_ - self.tol
        return dict(
            _no_improvement_count=self._no_improvement_count + 1 if stalled else 0,
            best_loss_=loss if loss < self.best_loss_ else self.best_loss_,
        )

    def _stall_message(self, early_stopping):
        """What the verbose output and the schedule say when training stalled."""
        if early_stopping:
            return ("Validation score did not improve more than tol=%f for %d "
                    "consecutive epochs." % (self.tol, self.n_iter_no_change))
        return ("Training loss did not improve more than tol=%f for %d "
                "consecutive epochs." % (self.tol, self.n_iter_no_change))
