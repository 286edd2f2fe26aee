"""The estimators' shared base class, ``_BaseMLP``: parameters and the way of a fit.

``_BaseMLP`` holds the parameters (scikit-learn's, with their constraints,
and cymlp's own), the initial weights, and ``_fit``, the one path of fit,
partial_fit and warm starts. Its other concerns are mixins, one a module:

- ``_fitted._FittedNetworkMixin``: the fitted network, its checks, its
  publication, prediction;
- ``_epochs._StochasticMixin``: the sgd/adam epoch loop (with
  ``_early_stopping`` and the solvers of ``_optimizers``);
- ``_lbfgs._LbfgsMixin``: the lbfgs loop;
- ``_persistence._PersistenceMixin``: pickling;
- ``_hidden._HiddenLayersMixin``: transform and hidden activations.

The targets are handled in ``_classifier.py`` and ``_regressor.py``.
"""

# Everything a user can pass is checked here, with scikit-learn's own validation
# functions, before the compiled engine (:mod:`cymlp._engine`) sees it. The
# engine trusts shapes and dtypes; this layer makes sure they are right.
#
# Python runs once per epoch: the shuffling draw (the same RandomState calls as
# scikit-learn, so the same seed gives the same weights), convergence and
# early-stopping checks, learning-rate schedules and verbose lines. The epoch
# itself is one call into the engine.

from __future__ import annotations

from numbers import Integral, Real
from typing import TYPE_CHECKING

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import validate_data

# Private scikit-learn imports, each because no public API does the same job:
# - _fit_context validates the parameters once per fit (honouring
#   sklearn.config_context(skip_parameter_validation=True)) exactly as
#   scikit-learn's own estimators do; the public BaseEstimator has no hook.
# - Interval / StrOptions / Options are the constraint language that makes
#   invalid parameters raise scikit-learn's InvalidParameterError with its
#   exact messages; Hidden marks a constraint that they leave out of the
#   message (activation's list or tuple).
# - _check_sample_weight gives scikit-learn's exact sample_weight checks
#   and messages; there is no public equivalent.
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Hidden, Interval, Options, StrOptions
from sklearn.utils.validation import _check_sample_weight

from ._callbacks import FitTask, as_callback_list
from ._data import Rows, engine_input
from ._engine import HIDDEN_ACTIVATIONS, SOLVERS, STOCHASTIC_SOLVERS
from ._epochs import _StochasticMixin
from ._fitted import _FittedNetworkMixin, hidden_activation_names
from ._float64_backward import Float64Backward, beyond_float32
from ._hidden import _HiddenLayersMixin
from ._lbfgs import _LbfgsMixin
from ._optimizers import OPTIMIZERS
from ._persistence import _PersistenceMixin

# the stochastic solvers, named in the errors of options only they take
# (from the vocabulary, so a new solver row is named without an edit here)
_STOCHASTIC = ", ".join(map(repr, STOCHASTIC_SOLVERS))

if TYPE_CHECKING:
    from numpy.typing import ArrayLike
    from typing_extensions import Self

try:  # scikit-learn >= 1.9: its callback framework (set_callbacks, fit tasks)
    from sklearn.callback import CallbackSupportMixin
except ImportError:  # older scikit-learn: only the callbacks= function hook

    class CallbackSupportMixin:
        """Stands in for scikit-learn's mixin where it does not exist."""


class _BaseMLP(
    _HiddenLayersMixin,
    _FittedNetworkMixin,
    _StochasticMixin,
    _LbfgsMixin,
    _PersistenceMixin,
    CallbackSupportMixin,
    BaseEstimator,
):
    """Shared by MLPClassifier and MLPRegressor. Not for direct use.

    Parameters and the way of a fit; the rest is in the mixins (see the
    module's docstring). The estimators add the targets' handling:
    ``_validate_input``, ``_encode_targets``, ``_decode_targets``,
    ``_validate_validation_targets``, ``_score`` and ``_predict``.
    """

    _parameter_constraints: dict = {
        "hidden_layer_sizes": [
            "array-like",
            Interval(Integral, 1, None, closed="left"),
        ],
        # or a list or tuple: one name per hidden layer, each checked by
        # hidden_activation_names at the start of fit. Hidden: the message
        # for a bad value stays scikit-learn's (the parity tests compare it)
        "activation": [StrOptions(set(HIDDEN_ACTIVATIONS)), Hidden(list), Hidden(tuple)],
        "solver": [StrOptions(set(SOLVERS))],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [
            StrOptions({"auto"}),
            Interval(Integral, 1, None, closed="left"),
        ],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive", "cosine"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [
            Interval(Integral, 1, None, closed="left"),
            Options(Real, {np.inf}),
        ],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        # beyond scikit-learn
        "negative_slope": [Interval(Real, 0, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left"), "array-like"],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "max_grad_norm": [Interval(Real, 0, None, closed="neither"), None],
        # checked at the start of fit by as_callback_list, whose message
        # points a scikit-learn callback object to set_callbacks
        "callbacks": "no_validation",
        "scoring": [StrOptions({"loss"}), str, callable, None],
        "warmup_iters": [Interval(Integral, 0, None, closed="left")],
        "min_learning_rate": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        hidden_layer_sizes,
        activation,
        solver,
        alpha,
        batch_size,
        learning_rate,
        learning_rate_init,
        power_t,
        max_iter,
        loss,
        shuffle,
        random_state,
        tol,
        verbose,
        warm_start,
        momentum,
        nesterovs_momentum,
        early_stopping,
        validation_fraction,
        beta_1,
        beta_2,
        epsilon,
        n_iter_no_change,
        max_fun,
        negative_slope,
        dropout,
        callbacks,
        scoring=None,
        warmup_iters=0,
        min_learning_rate=0.0,
        weight_decay=0.01,
        max_grad_norm=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.loss = loss
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.negative_slope = negative_slope
        self.dropout = dropout
        self.callbacks = callbacks
        self.scoring = scoring
        self.warmup_iters = warmup_iters
        self.min_learning_rate = min_learning_rate
        self.weight_decay = weight_decay
        self.max_grad_norm = max_grad_norm

    # ------------------------------------------------------------------
    # The way of a fit
    # ------------------------------------------------------------------
    def _fit(
        self,
        X,
        y,
        sample_weight=None,
        incremental=False,
        X_val=None,
        y_val=None,
        sample_weight_val=None,
    ):
        """Train on X, y: fit, partial_fit (``incremental``) and warm starts.

        The data goes one way: scikit-learn's checks (the estimator's
        ``_validate_input`` for X and y), the starting weights, X converted
        for the engine once, in the weights' dtype, then the solver's loop.
        """
        callbacks = as_callback_list(self.callbacks)
        X_given, y_given = X, y  # what scikit-learn's callbacks score on
        hidden_layer_sizes = self.hidden_layer_sizes
        if not hasattr(hidden_layer_sizes, "__iter__"):
            hidden_layer_sizes = [hidden_layer_sizes]
        hidden_layer_sizes = list(hidden_layer_sizes)
        if np.any(np.array(hidden_layer_sizes) <= 0):
            raise ValueError(
                "hidden_layer_sizes must be > 0, got %s." % hidden_layer_sizes
            )
        dropout = self._dropout_rates(len(hidden_layer_sizes))
        hidden_activation_names(self.activation, len(hidden_layer_sizes))
        self._check_schedule()
        if self.max_grad_norm is not None and self.solver == "lbfgs":
            raise ValueError(
                "max_grad_norm clips the minibatch gradients of the stochastic "
                "solvers (%s); lbfgs minimises the full-batch loss with a line "
                "search. Set max_grad_norm=None for lbfgs." % _STOCHASTIC
            )
        if X_val is not None or y_val is not None or sample_weight_val is not None:
            if X_val is None or y_val is None:
                raise ValueError("X_val and y_val must be given together.")
            if not self.early_stopping:
                raise ValueError(
                    "X_val and y_val are used for early stopping only: set "
                    "early_stopping=True to use them."
                )

        first_pass = not hasattr(self, "coefs_") or (
            not self.warm_start and not incremental
        )
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)
        sample_weight = self._apply_class_weight(y, sample_weight, incremental)
        y = self._training_targets(y)
        given_validation = None
        if X_val is not None:
            given_validation = self._user_validation_set(
                X_val, y_val, sample_weight_val, X.dtype
            )
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        layer_units = [X.shape[1]] + hidden_layer_sizes + [y.shape[1]]

        self._random_state = check_random_state(self.random_state)
        network, params, float64_backward = self._starting_weights(
            layer_units, X.dtype, y, sample_weight, first_pass, incremental
        )
        dtype = params.dtype
        rows = Rows(
            X=engine_input(X, dtype),
            y=y,
            sample_weight=None if sample_weight is None
            else np.ascontiguousarray(sample_weight, dtype=dtype),
            given_weight=sample_weight,
        )

        if self.solver == "lbfgs":
            # one subtask per iteration, and one that scipy never runs
            task = FitTask(self, X_given, y_given, rows.sample_weight, self.max_iter + 1)
            self._fit_lbfgs(rows, network, params, callbacks, task, float64_backward)
        else:
            task = FitTask(self, X_given, y_given, rows.sample_weight,
                           1 if incremental else self.max_iter)
            self._fit_stochastic(
                rows, given_validation, network, params, incremental, dropout,
                callbacks, task, float64_backward,
            )

        if not np.isfinite(self._params).all():
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may"
                " contain large values and need to be preprocessed."
            )
        task.end()
        return self

    def _starting_weights(self, layer_units, X_dtype, y, sample_weight, first_pass,
                          incremental):
        """The training network and the weights this fit starts from, packed.

        A first fit draws them (:meth:`_initialize`) and trains in X's dtype;
        a continued one (warm_start, partial_fit) checks the fitted ones and
        keeps their dtype, as scikit-learn does (weights that are neither
        float32 nor float64 continue in float64).

        Returns
        -------
        network : Network
        params : ndarray
            A new buffer, this fit's own.
        float64_backward : Float64Backward or None
            For float32 weights whose gradients scikit-learn computes in
            float64.
        """
        if first_pass:
            self._initialize(y, layer_units, X_dtype)
            coefs, intercepts = self.coefs_, self.intercepts_
        else:
            fitted_units, coefs, intercepts = self._fitted_weights(training=True)
            if fitted_units != layer_units:
                raise ValueError(
                    "The network's layers %s do not match what the data and "
                    "hidden_layer_sizes ask for, %s: warm_start and partial_fit "
                    "need the same hidden_layer_sizes and outputs as before."
                    % (fitted_units, layer_units)
                )
            self.n_outputs_ = y.shape[1]
        dtype = X_dtype if first_pass else coefs[0].dtype
        if dtype != np.float32:
            dtype = np.float64
        float64_backward = None
        if dtype == np.float32:
            widened = self._moments_widened(incremental)
            if widened or self._targets_promote(y):
                # trained in float32 until that overflows, in float64 from the
                # start for data float32 cannot hold or moments that already
                # are float64
                float64_backward = Float64Backward(
                    active=widened or beyond_float32(y) or beyond_float32(sample_weight),
                )
        network, params = self._packed_params(layer_units, coefs, intercepts, dtype)
        return network, params, float64_backward

    def _dropout_rates(self, n_hidden):
        """Dropout rate of every layer (input and output 0), or None without dropout."""
        rates = np.asarray(self.dropout, dtype=np.float64)
        if rates.ndim == 0:
            rates = np.full(n_hidden, float(rates))
        elif rates.shape != (n_hidden,):
            raise ValueError(
                "dropout must be a float or have one rate per hidden layer "
                "(%d), got %d." % (n_hidden, rates.size)
            )
        if not np.all((rates >= 0) & (rates < 1)):
            raise ValueError("dropout rates must be in [0, 1), got %s." % rates)
        if not np.any(rates > 0):
            return None
        if self.solver == "lbfgs":
            raise ValueError(
                "dropout needs a stochastic solver (%s); lbfgs minimises a "
                "deterministic full-batch loss." % _STOCHASTIC
            )
        return np.concatenate([[0.0], rates, [0.0]])

    def _check_schedule(self):
        """What the parameter constraints cannot say about learning_rate='cosine'."""
        if self.learning_rate != "cosine":
            return
        if self.solver == "lbfgs":
            raise ValueError(
                "learning_rate='cosine' schedules the rate of the stochastic "
                "solvers (%s); lbfgs takes no learning rate." % _STOCHASTIC
            )
        if self.min_learning_rate > self.learning_rate_init:
            raise ValueError(
                "min_learning_rate (%r) must not exceed learning_rate_init (%r): "
                "the cosine decays from learning_rate_init down to it."
                % (self.min_learning_rate, self.learning_rate_init)
            )

    def _apply_class_weight(self, y, sample_weight, incremental):
        """Hook for MLPClassifier's class_weight; regressors have none."""
        return sample_weight

    def _training_targets(self, y):
        """The encoded targets as the loss sees them: MLPClassifier's label
        smoothing; as they are here."""
        return y

    def _targets_promote(self, y):
        """Whether scikit-learn's output delta ``activations[-1] - y`` is
        float64 beside float32 weights (see :mod:`cymlp._float64_backward`).

        Parameters
        ----------
        y : ndarray
            The validated targets.

        Returns
        -------
        promote : bool
            False here: a classifier's targets are encoded as booleans, and
            its arithmetic stays float32. MLPRegressor overrides it.
        """
        return False

    def _user_validation_set(self, X_val, y_val, sample_weight_val, dtype):
        """Validate a user's validation set like the training data."""
        X_val = validate_data(
            self, X_val, accept_sparse=["csr", "csc"], dtype=dtype, reset=False
        )
        y_val = self._validate_validation_targets(y_val)
        if y_val.shape[0] != X_val.shape[0]:
            raise ValueError(
                "X_val and y_val have different numbers of samples: %d and %d."
                % (X_val.shape[0], y_val.shape[0])
            )
        if sample_weight_val is not None:
            sample_weight_val = _check_sample_weight(sample_weight_val, X_val)
        return X_val, y_val, sample_weight_val

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        sample_weight: ArrayLike | None = None,
        *,
        X_val: ArrayLike | None = None,
        y_val: ArrayLike | None = None,
        sample_weight_val: ArrayLike | None = None,
    ) -> Self:
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The target values (class labels in classification, real numbers in
            regression).

        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        X_val : {array-like, sparse matrix} of shape (n_val, n_features), default=None
            A validation set for early stopping, used instead of setting aside
            ``validation_fraction`` of X (all of X then trains). Needs
            ``early_stopping=True``. In a Pipeline, let the pipeline transform
            it like X: ``Pipeline(..., transform_input=["X_val"])`` with
            metadata routing enabled.

        y_val : array-like of shape (n_val,) or (n_val, n_outputs), default=None
            Targets of ``X_val``.

        sample_weight_val : array-like of shape (n_val,), default=None
            Sample weights of ``X_val``, for the validation score and loss.

        Returns
        -------
        self : object
            Returns a trained MLP model.
        """
        return self._fit(
            X,
            y,
            sample_weight=sample_weight,
            incremental=False,
            X_val=X_val,
            y_val=y_val,
            sample_weight_val=sample_weight_val,
        )

    def _check_solver(self):
        if self.solver not in OPTIMIZERS:  # the stochastic solvers
            raise AttributeError(
                "partial_fit is only available for stochastic"
                " optimizers. %s is not stochastic." % self.solver
            )
        return True

    @classmethod
    def _get_param_names(cls):
        # Overrides a private scikit-learn classmethod, as no public hook
        # serves: BaseEstimator reads the constructor's signature with inspect
        # on every get_params call (about 0.1 ms), and clone, set_params and
        # each fit's parameter validation call it, several times per fit of a
        # grid search. A class's signature does not change: it is read once
        # per class (a subclass of the user's gets its own entry).
        names = cls.__dict__.get("_param_names_cache")
        if names is None:
            names = tuple(super()._get_param_names())
            cls._param_names_cache = names
        return list(names)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags
