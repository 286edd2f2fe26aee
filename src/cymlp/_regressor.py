"""The multi-layer perceptron regressor, :class:`cymlp.MLPRegressor`.

Numeric targets (squared error, Poisson, and beyond scikit-learn the
absolute error, Huber and quantile losses) and the R^2 score; training is
``_BaseMLP``'s (``_base.py``).
"""

from __future__ import annotations

from numbers import Real
from typing import TYPE_CHECKING

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils import column_or_1d
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_array, validate_data

# Private scikit-learn imports, each because no public API does the same job:
# - _fit_context validates the parameters once per fit (honouring
#   sklearn.config_context(skip_parameter_validation=True)) exactly as
#   scikit-learn's own estimators do; the public BaseEstimator has no hook.
# - Interval / StrOptions are the constraint language that makes invalid
#   parameters raise scikit-learn's InvalidParameterError with its exact
#   messages.
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval, StrOptions

from ._base import _BaseMLP
from ._engine import LOSS_ROWS
from ._repr import _DocLinkMixin

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    from numpy.typing import ArrayLike, NDArray
    from typing_extensions import Self


class MLPRegressor(_DocLinkMixin, RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor, compiled; a drop-in for scikit-learn's.

    Same parameters, defaults, fitted attributes and errors as
    :class:`sklearn.neural_network.MLPRegressor`, and for the same
    ``random_state`` the same trained weights (to floating-point rounding).

    Parameters
    ----------
    loss : {'squared_error', 'poisson', 'absolute_error', 'huber', 'quantile'}, \
default='squared_error'
        The loss minimised, per target value with residual ``r = y - y_pred``:

        - 'squared_error': ``r**2 / 2``;
        - 'poisson': half the Poisson deviance, with an exponential output
          (log link); needs ``y >= 0``. Unlike scikit-learn, negative targets
          raise a ValueError instead of training to NaN;
        - 'absolute_error' (beyond scikit-learn): ``|r|``; predicts the
          conditional median, robust to outliers;
        - 'huber' (beyond scikit-learn): ``r**2 / 2`` where
          ``|r| <= huber_delta``, ``huber_delta * (|r| - huber_delta / 2)``
          beyond: squared error for small residuals, absolute error (times
          ``huber_delta``) for outliers;
        - 'quantile' (beyond scikit-learn): the pinball loss
          ``quantile * r`` if ``r >= 0`` else ``(quantile - 1) * r``; predicts
          the conditional ``quantile`` (two quantile models give a
          prediction interval).

        All but 'poisson' use the identity output. Where the absolute and
        pinball losses have no derivative (``r == 0``), training uses the
        value scikit-learn's gradient-boosting losses use: the derivative
        with respect to the prediction is -1 (absolute error) and
        ``-quantile`` (pinball). See ``loss_`` for how the loss is averaged.

    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        The ith element is the number of neurons in the ith hidden layer.

    activation : {'identity', 'logistic', 'tanh', 'relu', 'leaky_relu', 'elu', \
'gelu', 'silu', 'softplus'} or list of str, default='relu'
        Activation function for the hidden layers. The last five are not in
        scikit-learn: 'leaky_relu' (slope ``negative_slope`` below zero),
        'elu' (alpha 1), 'gelu' (exact, ``z * Phi(z)``), 'silu'
        (``z * sigmoid(z)``) and 'softplus' (``log(1 + exp(z))``). A list or
        tuple of these names, one per hidden layer (not in scikit-learn),
        gives each hidden layer its own, e.g. ``["relu", "tanh"]`` with
        ``hidden_layer_sizes=(64, 32)``; each layer's initial weights then
        follow its own activation, and the output layer's the last hidden
        layer's. See :ref:`extras_per_layer_activations`.

    solver : {'lbfgs', 'sgd', 'adam', 'adamw'}, default='adam'
        The solver for weight optimization. 'adamw' is Adam with decoupled
        weight decay (``weight_decay``), as PyTorch's ``torch.optim.AdamW``;
        not in scikit-learn.

    alpha : float, default=0.0001
        Strength of the L2 regularization term, divided by the sample size
        when added to the loss.

    batch_size : int, default='auto'
        Size of minibatches for stochastic optimizers; 'auto' is
        ``min(200, n_samples)``.

    learning_rate : {'constant', 'invscaling', 'adaptive', 'cosine'}, default='constant'
        Learning rate schedule for weight updates, used by solver='sgd'.
        'cosine' (not in scikit-learn; sgd and adam): a linear warm-up over
        ``warmup_iters`` epochs, then a cosine decay to ``min_learning_rate``
        by epoch ``max_iter``; lbfgs refuses it. See :ref:`extras_schedules`.

    learning_rate_init : float, default=0.001
        The initial learning rate, for solver='sgd', 'adam' or 'adamw'.

    power_t : float, default=0.5
        The exponent for the 'invscaling' learning rate.

    max_iter : int, default=200
        Maximum number of epochs.

    shuffle : bool, default=True
        Whether to shuffle samples in each epoch.

    random_state : int, RandomState instance, default=None
        Random number generation for weight initialization, the early-stopping
        split and minibatch shuffling. Same seed, same draws as scikit-learn.

    tol : float, default=1e-4
        Tolerance for the optimization.

    verbose : bool, default=False
        Whether to print progress messages to stdout.

    warm_start : bool, default=False
        When True, reuse the solution of the previous call to fit.

    momentum : float, default=0.9
        Momentum for gradient descent update, for solver='sgd'.

    nesterovs_momentum : bool, default=True
        Whether to use Nesterov's momentum, for solver='sgd'.

    early_stopping : bool, default=False
        Whether to stop training when the validation score (R^2) stops
        improving.

    validation_fraction : float, default=0.1
        Proportion of the training data set aside for early stopping.

    beta_1 : float, default=0.9
        Exponential decay rate of adam's first moment estimates.

    beta_2 : float, default=0.999
        Exponential decay rate of adam's second moment estimates.

    epsilon : float, default=1e-8
        Value for numerical stability in adam.

    n_iter_no_change : int, default=10
        Maximum number of epochs without ``tol`` improvement.

    max_fun : int, default=15000
        Maximum number of loss function calls, for solver='lbfgs'.

    negative_slope : float, default=0.01
        Slope of ``activation='leaky_relu'`` for negative inputs. Not in
        scikit-learn.

    dropout : float or array-like of shape (n_layers - 2,), default=0.0
        Inverted dropout during training with the stochastic solvers: each
        hidden unit is zeroed with this probability (one rate for all hidden
        layers, or one per hidden layer) and the others scaled by
        1 / (1 - rate). Masks are drawn from a generator seeded by
        ``random_state`` once per epoch, so fits are reproducible. Prediction
        never drops. Not in scikit-learn; 0 keeps its results exactly.

    weight_decay : float, default=0.01
        Decoupled weight decay of solver='adamw' (torch.optim.AdamW; :ref:`extras_adamw`).

    max_grad_norm : float or None, default=None
        Clip each minibatch gradient to this global norm (torch's ``clip_grad_norm_``;
        :ref:`extras_clipping`); None: no clipping; lbfgs raises a ValueError.

    callbacks : callable or list of callables, default=None
        Plain functions called after every epoch (every lbfgs iteration) with
        a dict holding ``epoch``, ``loss``, ``validation_score``,
        ``validation_loss`` and ``estimator``. Training stops when one returns
        True (no ConvergenceWarning then). See :class:`cymlp.ProgressBar`.
        scikit-learn's own callbacks (``sklearn.callback``, scikit-learn >=
        1.9) are set with ``set_callbacks`` instead. Not in scikit-learn.

    scoring : str, callable or None, default=None
        What early stopping watches on the validation set: None for
        scikit-learn's choice (accuracy for the classifier, R^2 for the
        regressor), ``"loss"`` for the validation loss (the kept weights are
        those of the lowest loss; ``validation_scores_`` then holds minus the
        loss, higher being better), or any scorer name or callable of
        :func:`sklearn.metrics.get_scorer`. Used with ``early_stopping=True``
        only. Not in scikit-learn (HistGradientBoosting's convention).

    warmup_iters : int, default=0
        Epochs of linear warm-up of ``learning_rate='cosine'``, from
        ``learning_rate_init / (warmup_iters + 1)`` up. Not in scikit-learn.

    min_learning_rate : float, default=0.0
        The floor of ``learning_rate='cosine'``. Not in scikit-learn.

    quantile : float, default=0.5
        The quantile that ``loss='quantile'`` estimates, in (0, 1) (named as
        in :class:`~sklearn.ensemble.HistGradientBoostingRegressor`); 0.5
        estimates the median, like 'absolute_error' (with half its loss).
        Ignored by the other losses.

    huber_delta : float, default=1.0
        The threshold of ``loss='huber'``, > 0, in the units of ``y``: the
        residual beyond which the loss grows linearly instead of
        quadratically. It is fixed, not re-estimated during training as
        :class:`~sklearn.ensemble.GradientBoostingRegressor` re-estimates its
        threshold from the ``alpha`` quantile of the residuals; scale ``y``
        (e.g. with :class:`~sklearn.compose.TransformedTargetRegressor`) or
        choose it from the expected noise level. Ignored by the other losses.

    Attributes
    ----------
    loss_ : float
        The current loss computed with the loss function: the mean over the
        samples (weighted by ``sample_weight``) of the per-sample loss, plus
        the L2 term ``alpha / 2 * sum of squared coefs_`` divided by the
        number of samples (or the sum of the sample weights). The per-sample
        loss of 'squared_error', 'absolute_error', 'huber' and 'quantile' is
        the *mean* over the outputs of the per-value losses given under
        ``loss`` (so squared error is half the mean squared error, as in
        scikit-learn, and absolute error the mean absolute error); that of
        'poisson' is the sum over the outputs, as in scikit-learn. The
        gradients of 'absolute_error', 'huber' and 'quantile' are exactly
        those of ``loss_``; squared error keeps scikit-learn's convention,
        whose gradient is that of the sum over the outputs.

    best_loss_ : float or None
        The minimum loss reached during fitting (None with early stopping).

    loss_curve_ : list of shape (`n_iter_`,)
        The loss at the end of each epoch (stochastic solvers).

    validation_scores_ : list of shape (`n_iter_`,) or None
        R^2 on the held-out set at each epoch, with early stopping (the
        ``scoring`` score when it is set).

    best_validation_score_ : float or None
        Best validation R^2, with early stopping.

    validation_loss_curve_ : list of shape (`n_iter_`,) or None
        The loss on the held-out set at each epoch, with early stopping.

    t_ : int
        The number of training samples seen by the solver during fitting.

    coefs_ : list of shape (n_layers - 1,)
        The weight matrix of each layer (views into one packed buffer).

    intercepts_ : list of shape (n_layers - 1,)
        The bias vector of each layer after the input.

    n_features_in_ : int
        Number of features seen during fit.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when X has string feature names.

    n_iter_ : int
        The number of iterations the solver has run.

    n_layers_ : int
        Number of layers.

    n_outputs_ : int
        Number of outputs.

    out_activation_ : str
        Name of the output activation function.

    See Also
    --------
    sklearn.neural_network.MLPRegressor : The reference implementation.

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from cymlp import MLPRegressor
    >>> X, y = make_regression(n_samples=200, n_features=5, noise=1, random_state=0)
    >>> reg = MLPRegressor(hidden_layer_sizes=(20,), solver="lbfgs",
    ...                    max_iter=500, random_state=0).fit(X, y)
    >>> reg.score(X, y) > 0.95
    True

    sgd with a linear warm-up over 5 epochs, then a cosine decay to 1e-4:

    >>> sched = MLPRegressor(hidden_layer_sizes=(20,), solver="sgd", learning_rate="cosine",
    ...                      learning_rate_init=0.01, warmup_iters=5,
    ...                      min_learning_rate=1e-4, max_iter=100,
    ...                      random_state=0).fit(X / X.std(), y / y.std())
    >>> sched.score(X / X.std(), y / y.std()) > 0.9
    True

    The 0.9 quantile: about 90% of the targets lie below its predictions.

    >>> import numpy as np
    >>> rng = np.random.RandomState(0)
    >>> X = rng.uniform(0, 1, size=(2000, 1))
    >>> y = X[:, 0] + rng.normal(scale=0.2, size=2000)
    >>> q90 = MLPRegressor(loss="quantile", quantile=0.9, hidden_layer_sizes=(16,),
    ...                    solver="lbfgs", max_iter=500, random_state=0).fit(X, y)
    >>> coverage = np.mean(y <= q90.predict(X))
    >>> bool(0.85 < coverage < 0.95)
    True

    AdamW's decoupled weight decay, with the gradient clipped to norm 1:

    >>> reg = MLPRegressor(hidden_layer_sizes=(16,), solver="adamw", weight_decay=0.01,
    ...                    max_grad_norm=1.0, learning_rate_init=0.01, max_iter=300,
    ...                    random_state=0).fit(X, y)
    >>> reg.score(X, y) > 0.5
    True

    One activation per hidden layer:

    >>> reg = MLPRegressor(hidden_layer_sizes=(16, 8), activation=("gelu", "tanh"),
    ...                    solver="lbfgs", max_iter=300, random_state=0).fit(X, y)
    >>> reg.score(X, y) > 0.5
    True
    """

    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        "loss": [
            # every loss of the vocabulary whose output activation a
            # regressor's output can be (the classifier's are log losses)
            StrOptions({row.name for row in LOSS_ROWS if row.link in ("identity", "exp")})
        ],
        # beyond scikit-learn
        "quantile": [Interval(Real, 0, 1, closed="neither")],
        "huber_delta": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        loss: str = "squared_error",
        hidden_layer_sizes: ArrayLike | int = (100,),
        activation: str | Sequence[str] = "relu",
        *,
        solver: str = "adam",
        alpha: float = 0.0001,
        batch_size: int | str = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 0.001,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: int | np.random.RandomState | None = None,
        tol: float = 1e-4,
        verbose: bool | int = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int | float = 10,
        max_fun: int = 15000,
        negative_slope: float = 0.01,
        dropout: float | ArrayLike = 0.0,
        weight_decay: float = 0.01,
        max_grad_norm: float | None = None,
        callbacks: Callable[[dict], Any] | Sequence[Callable[[dict], Any]] | None = None,
        scoring: str | Callable | None = None,
        warmup_iters: int = 0,
        min_learning_rate: float = 0.0,
        quantile: float = 0.5,
        huber_delta: float = 1.0,
    ):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            loss=loss,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            negative_slope=negative_slope,
            dropout=dropout,
            weight_decay=weight_decay,
            max_grad_norm=max_grad_norm,
            callbacks=callbacks,
            scoring=scoring,
            warmup_iters=warmup_iters,
            min_learning_rate=min_learning_rate,
        )
        self.quantile = quantile
        self.huber_delta = huber_delta

    def _loss_param(self):
        if self.loss == "huber":
            return float(self.huber_delta)
        if self.loss == "quantile":
            return float(self.quantile)
        return None

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            y_numeric=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        if y.dtype.kind in "USV":
            # sklearn fails on such targets in its first subtraction
            raise TypeError(
                "MLPRegressor needs numeric targets; y has dtype %s." % y.dtype
            )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError(
                "Some value(s) of y are negative which is not allowed for "
                "loss='poisson'."
            )
        return X, y

    def _decode_targets(self, y):
        return y

    def _targets_promote(self, y):
        # scikit-learn keeps the targets in their own dtype: float32
        # activations minus float64 (or int32, int64, ...) targets is float64
        return np.result_type(np.float32, y.dtype) != np.float32

    def _validate_validation_targets(self, y_val):
        y_val = check_array(
            y_val, ensure_2d=False, dtype="numeric", input_name="y_val"
        )
        if y_val.ndim == 2 and y_val.shape[1] == 1:
            y_val = column_or_1d(y_val, warn=True)
        return y_val

    def _encode_targets(self, y):
        return y.reshape(y.shape[0], -1)

    def predict(self, X: ArrayLike) -> NDArray:
        """Predict using the multi-layer perceptron model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The predicted values.
        """
        self._check_is_fitted()
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if y_pred.shape[1] == 1:
            return y_pred.ravel()
        return y_pred

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(
            X, y, sample_weight=sample_weight, score_function=r2_score
        )

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(
        self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> Self:
        """Update the model with a single epoch over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The target values.

        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        self : object
            Trained MLP model.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)
