"""The estimators' shared base class, ``_BaseMLP``.

Parameters, data checks, the lbfgs and stochastic training loops, prediction
and pickling; the targets are handled in ``_classifier.py`` and ``_regressor.py``.
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

import functools
import inspect
import warnings
from numbers import Integral, Real
from typing import TYPE_CHECKING

import numpy as np
import scipy.optimize
import scipy.sparse as sp
from sklearn import get_config
from sklearn.base import BaseEstimator, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import check_scoring
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

# Private scikit-learn imports, each because no public API does the same job:
# - _fit_context validates the parameters once per fit (honouring
#   sklearn.config_context(skip_parameter_validation=True)) exactly as
#   scikit-learn's own estimators do; the public BaseEstimator has no hook.
# - Interval / StrOptions / Options are the constraint language that makes
#   invalid parameters raise scikit-learn's InvalidParameterError with its
#   exact messages.
# - _check_sample_weight gives scikit-learn's exact sample_weight checks
#   and messages; there is no public equivalent.
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import _check_sample_weight

from ._engine import HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS, Network, Trainer
from ._hidden import _HiddenLayersMixin
from ._training import (
    _as_callback_list,
    _beyond_float32,
    _callbacks_say_stop,
    _deferred_keyboard_interrupt,
    _EarlyStopping,
    _engine_input,
    _EpochRun,
    _FitTask,
    _Float64Backward,
    _Optimizer,
    _ValidationLoss,
)

if TYPE_CHECKING:
    from numpy.typing import ArrayLike
    from typing_extensions import Self

_STOCHASTIC_SOLVERS = ("sgd", "adam")
# _forward_pass_fast's default: the output layer (None is a user's bad index)
_OUTPUT_LAYER = object()


@functools.lru_cache(maxsize=64)
def _forward_network(layer_units, activation, out_activation, negative_slope):
    """A forward-only network, made once per geometry: predicting one row
    would otherwise spend a fifth of its time making it. Networks are
    immutable, so sharing them between estimators and threads is safe, and
    the estimators' __dict__ stays unchanged by predict."""
    return Network(layer_units, activation, out_activation, None,
                   negative_slope=negative_slope)


def _numeric_array(value, name):
    """A fitted weight as an array of numbers; an error naming it otherwise."""
    if type(value) is np.ndarray and value.dtype.kind in "biuf":
        return value  # the common case, without np.asarray's overhead
    try:
        array = np.asarray(value)
    except ValueError as exc:  # ragged nested lists
        raise ValueError("%s is not an array of numbers: %s" % (name, exc)) from exc
    if array.dtype.kind not in "biuf":
        raise ValueError("%s must hold real numbers; got dtype %s." % (name, array.dtype))
    return array


def _broadcast_intercept(intercept, fan_out, i, training):
    """An intercept of another shape than (fan_out,), broadcast over the layer
    where scikit-learn's prediction would broadcast it; ValueError otherwise."""
    if not training and intercept.ndim <= 2:
        try:
            return np.broadcast_to(intercept, (1, fan_out)).reshape(fan_out)
        except ValueError:
            pass
    raise ValueError(
        "intercepts_[%d] has shape %s; expected (%d,) to match coefs_[%d]."
        % (i, intercept.shape, fan_out, i)
    )


try:  # scikit-learn >= 1.9: its callback framework (set_callbacks, fit tasks)
    from sklearn.callback import CallbackSupportMixin
except ImportError:  # older scikit-learn: only the callbacks= function hook

    class CallbackSupportMixin:
        """Stands in for scikit-learn's mixin where it does not exist."""


class _BaseMLP(_HiddenLayersMixin, CallbackSupportMixin, BaseEstimator):
    """Shared by MLPClassifier and MLPRegressor. Not for direct use."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": [
            "array-like",
            Interval(Integral, 1, None, closed="left"),
        ],
        "activation": [StrOptions(set(HIDDEN_ACTIVATIONS))],
        "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [
            StrOptions({"auto"}),
            Interval(Integral, 1, None, closed="left"),
        ],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
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
        # checked at the start of fit by _as_callback_list, whose message
        # points a scikit-learn callback object to set_callbacks
        "callbacks": "no_validation",
        "scoring": [StrOptions({"loss"}), str, callable, None],
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

    # ------------------------------------------------------------------
    # The network
    # ------------------------------------------------------------------
    def _loss_name(self):
        """The engine's loss for this model's output activation."""
        if self.out_activation_ == "logistic":
            return "binary_log_loss"
        return self.loss

    def _loss_param(self):
        """The parameter of this model's loss, if it takes one (the regressor's
        Huber threshold or quantile)."""
        return None

    def _network(self, layer_units, forward_only=False, out_activation=None):
        """The engine's network over layer_units.

        A training network has this model's loss. A forward-only network has
        none (prediction does not depend on the loss's settings) and may end
        in out_activation, e.g. the hidden one (transform).
        """
        if forward_only:
            return _forward_network(
                tuple(layer_units),
                self.activation,
                out_activation or self.out_activation_,
                float(self.negative_slope),
            )
        return Network(
            layer_units,
            self.activation,
            self.out_activation_,
            self._loss_name(),
            negative_slope=float(self.negative_slope),
            loss_param=self._loss_param(),
        )

    def _fitted_weights(self, training=False):
        """The fitted network, checked before any compiled code reads it.

        Users edit fitted weights (pruning, transfer, loading weights trained
        elsewhere) and pickles outlive versions, while the engine runs on raw
        pointers: so every entry point checks, in O(number of layers), that
        ``coefs_`` and ``intercepts_`` chain from ``n_features_in_`` to
        ``n_outputs_`` with the shapes a network has, and that the
        activations are known. Returns ``(layer_units, coefs, intercepts)``,
        the weights as numeric arrays (not yet in the working dtype).
        A mismatch (non-numeric weights included) raises ValueError naming
        the attribute.

        For prediction, an intercept that broadcasts over its layer (shape
        ``(1,)``, say) is used broadcast, as scikit-learn's ``+=`` uses it;
        ``training=True`` refuses it, as scikit-learn's in-place updates do.
        """
        # one statement, two attribute loads: under the GIL no other thread
        # runs between them, so a fit in another thread (see _publish) cannot
        # give us the coefs_ of one epoch with the intercepts_ of the next
        coefs, intercepts = self.coefs_, self.intercepts_
        for name, value in (("coefs_", coefs), ("intercepts_", intercepts)):
            if not isinstance(value, (list, tuple)):
                raise ValueError(
                    "%s must be a list of arrays, one per layer; got %s."
                    % (name, type(value).__name__)
                )
        n_layers = getattr(self, "n_layers_", len(coefs) + 1)
        if len(coefs) != n_layers - 1 or len(intercepts) != n_layers - 1:
            raise ValueError(
                "n_layers_=%r needs %r coefficient matrices and intercept "
                "vectors; coefs_ has %d and intercepts_ %d."
                % (n_layers, n_layers - 1, len(coefs), len(intercepts))
            )
        if not coefs:
            raise ValueError("coefs_ is empty: the network has no layers.")
        fan_in = getattr(self, "n_features_in_", None)
        units, checked_coefs, checked_intercepts = [], [], []
        for i, (coef, intercept) in enumerate(zip(coefs, intercepts)):
            coef = _numeric_array(coef, "coefs_[%d]" % i)
            intercept = _numeric_array(intercept, "intercepts_[%d]" % i)
            if fan_in is None:
                fan_in = coef.shape[0] if coef.ndim == 2 else -1
            units.append(fan_in)
            if coef.ndim != 2 or coef.shape[0] != fan_in or coef.shape[1] < 1:
                raise ValueError(
                    "coefs_[%d] has shape %s; expected (%d, n_units) with "
                    "n_units >= 1, as the layer before it has %d units."
                    % (i, coef.shape, fan_in, fan_in)
                )
            fan_in = coef.shape[1]
            if intercept.shape != (fan_in,):
                intercept = _broadcast_intercept(intercept, fan_in, i, training)
            checked_coefs.append(coef)
            checked_intercepts.append(intercept)
        units.append(fan_in)
        n_outputs = getattr(self, "n_outputs_", fan_in)
        if fan_in != n_outputs:
            raise ValueError(
                "coefs_[-1] has %d output units; n_outputs_ is %r." % (fan_in, n_outputs)
            )
        if self.out_activation_ not in OUTPUT_ACTIVATIONS:
            raise ValueError(
                "out_activation_=%r is not one of %s."
                % (self.out_activation_, sorted(OUTPUT_ACTIVATIONS))
            )
        if self.activation not in HIDDEN_ACTIVATIONS:
            raise ValueError(
                "activation=%r is not one of %s."
                % (self.activation, sorted(HIDDEN_ACTIVATIONS))
            )
        return units, checked_coefs, checked_intercepts

    def _initialize(self, y, layer_units, dtype):
        """Set the fitted attributes of a fresh model and draw the initial weights."""
        fresh = dict(n_iter_=0, t_=0, n_outputs_=y.shape[1], n_layers_=len(layer_units))
        if not is_classifier(self):
            fresh["out_activation_"] = "exp" if self.loss == "poisson" else "identity"
        elif self._label_binarizer.y_type_ == "multiclass":
            fresh["out_activation_"] = "softmax"
        else:
            fresh["out_activation_"] = "logistic"

        # Glorot initialisation, drawn layer by layer (coef, then intercept) in
        # the same order and with the same RandomState calls as scikit-learn.
        factor = 2.0 if self.activation == "logistic" else 6.0
        coefs, intercepts = [], []
        for fan_in, fan_out in zip(layer_units[:-1], layer_units[1:]):
            bound = np.sqrt(factor / (fan_in + fan_out))
            coef = self._random_state.uniform(-bound, bound, (fan_in, fan_out))
            intercept = self._random_state.uniform(-bound, bound, fan_out)
            coefs.append(coef.astype(dtype, copy=False))
            intercepts.append(intercept.astype(dtype, copy=False))
        # _fit packs them into a parameter buffer for training
        fresh.update(coefs_=coefs, intercepts_=intercepts)

        if self.solver in _STOCHASTIC_SOLVERS:
            fresh.update(loss_curve_=[], _no_improvement_count=0)
            if self.early_stopping:
                fresh.update(validation_scores_=[], validation_loss_curve_=[],
                             best_validation_score_=-np.inf, best_loss_=None)
            else:
                fresh.update(best_loss_=np.inf, validation_scores_=None,
                             validation_loss_curve_=None, best_validation_score_=None)
        self._publish(**fresh)

    def _publish(self, **attributes):
        """Bind fitted attributes all at once, to complete values.

        Other threads may predict, copy or pickle this model while it
        trains. They must see each array whole and all attributes from one
        moment, so what is bound here is never written again (training works
        on copies; a thread that still holds an old array keeps its values),
        and the binding is one ``dict.update``: with string keys it runs in
        C, calling no Python code, so the GIL stays with this thread until
        all are bound -- another thread sees none of them or all of them (a
        pickle or deepcopy takes its copy of ``__dict__`` in one C call too,
        in ``__getstate__``).
        """
        # The values replaced stay referenced until the update is over:
        # freeing one inside it could run Python code (a finalizer), and
        # another thread with it.
        replaced = [self.__dict__.get(name) for name in attributes]
        self.__dict__.update(attributes)
        del replaced

    def _publish_params(self, network, params, **attributes):
        """Publish a filled parameter buffer, with coefs_ and intercepts_ as
        views of it, and other attributes along with it."""
        coefs, intercepts = network.views(params)
        self._publish(_params=params, coefs_=coefs, intercepts_=intercepts, **attributes)

    def _packed_params(self, layer_units, coefs, intercepts, dtype):
        """The training network and the weights packed into a new buffer.

        Done at the start of every fit: after unpickling, or if a user
        assigned new arrays to coefs_, the lists are no longer views of the
        buffer, so it is always rebuilt from them (one copy of the weights).
        The buffer is not published: the fit trains it, and publishes what
        it trained.
        """
        network = self._network(layer_units)
        params = np.empty(network.n_params, dtype=dtype)
        packed_coefs, packed_intercepts = network.views(params)
        for dst, src in zip(packed_coefs + packed_intercepts, coefs + intercepts):
            dst[...] = src
        return network, params

    # ------------------------------------------------------------------
    # Fitting
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
        callbacks = _as_callback_list(self.callbacks)
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
        validation = None
        if X_val is not None:
            validation = self._user_validation_set(X_val, y_val, sample_weight_val, X.dtype)
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        n_features = X.shape[1]
        layer_units = [n_features] + hidden_layer_sizes + [y.shape[1]]

        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(y, layer_units, X.dtype)
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
        # A first fit trains in X's dtype; a continued one (warm_start,
        # partial_fit) keeps the weights' dtype, as sklearn does (weights
        # that are neither float32 nor float64 continue in float64).
        dtype = X.dtype if first_pass else coefs[0].dtype
        if dtype != np.float32:
            dtype = np.float64
        float64_backward = None
        if dtype == np.float32:
            widened = self._moments_widened(incremental)
            if widened or self._targets_promote(y):
                # float32 weights whose gradients scikit-learn computes in
                # float64: trained in float32 until that overflows, in
                # float64 from the start for data float32 cannot hold or
                # moments that already are float64
                float64_backward = _Float64Backward(
                    sample_weight,
                    active=widened or _beyond_float32(y) or _beyond_float32(sample_weight),
                )
        network, params = self._packed_params(layer_units, coefs, intercepts, dtype)

        X = _engine_input(X, dtype)
        if sample_weight is not None:
            sample_weight = np.ascontiguousarray(sample_weight, dtype=dtype)

        if self.solver == "lbfgs":
            # one subtask per iteration, and one that scipy never runs
            task = _FitTask(self, X_given, y_given, sample_weight, self.max_iter + 1)
            self._fit_lbfgs(X, y, sample_weight, network, params, callbacks, task,
                            float64_backward)
        else:
            task = _FitTask(self, X_given, y_given, sample_weight,
                            1 if incremental else self.max_iter)
            self._fit_stochastic(
                X, y, sample_weight, network, params, incremental, dropout, validation,
                callbacks, task, float64_backward,
            )

        if not np.isfinite(self._params).all():
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may"
                " contain large values and need to be preprocessed."
            )
        task.end()
        return self

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
                "dropout needs a stochastic solver ('sgd' or 'adam'); lbfgs "
                "minimises a deterministic full-batch loss."
            )
        return np.concatenate([[0.0], rates, [0.0]])

    def _apply_class_weight(self, y, sample_weight, incremental):
        """Hook for MLPClassifier's class_weight; regressors have none."""
        return sample_weight

    def _targets_promote(self, y):
        """Whether scikit-learn's output delta ``activations[-1] - y`` is
        float64 beside float32 weights (see _training._Float64Backward).

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

    def _moments_widened(self, incremental):
        """Whether partial_fit continues an optimizer whose moments are
        float64 beside float32 weights: scikit-learn's moments stay float64
        once a float64 gradient made them so, and so does cymlp's training
        in scikit-learn's arithmetic (see _training._Float64Backward)."""
        optimizer = getattr(self, "_optimizer", None) if incremental else None
        state1 = getattr(optimizer, "state1", None)
        return isinstance(state1, np.ndarray) and state1.dtype == np.float64

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

    def _fit_lbfgs(self, X, y, sample_weight, network, params, callbacks, task,
                   float64_backward=None):
        """Minimise the full-data loss with scipy's L-BFGS-B, from ``params``.

        scipy hands each candidate point ``x`` (packed like our parameter
        buffer, in its dtype) straight to the engine: no unpacking, no copy of
        the weights per evaluation. The result is published at the end. With
        ``float64_backward`` (a _Float64Backward), a point where float32
        overflows is evaluated again in scikit-learn's float64 arithmetic.
        """
        wide = float64_backward
        if wide is not None:
            wide.use_rows(network, X, y, wide.sample_weight, max_rows=max(X.shape[0], 1))
        Y = None
        if wide is None or not wide.active:
            Y = np.ascontiguousarray(y, dtype=params.dtype)
            trainer = Trainer(network, params.dtype, max(X.shape[0], 1))
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
            if _callbacks_say_stop(callbacks, self) or stop:
                raise StopIteration  # scipy ends the minimisation there

        # scipy's L-BFGS-B does its vector arithmetic in scipy's BLAS, at the
        # user's thread setting, as scikit-learn's does: the engine never
        # changes that setting (see _blas.h), so a fit gives the same bits
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

    def _fit_stochastic(
        self, X, y, sample_weight, network, params, incremental, dropout, validation,
        callbacks, task, float64_backward=None,
    ):
        """Train ``params`` (this fit's own buffer) epoch by epoch."""
        wide = float64_backward
        # moments in float64 beside float32 weights: scikit-learn's arithmetic
        moments_dtype = np.float64 if wide is not None and wide.active else params.dtype
        # As scikit-learn: a new optimizer for every fit (warm_start too), and
        # partial_fit continues the last one, settings included. A continued
        # model whose weights changed dtype starts new moments.
        optimizer = getattr(self, "_optimizer", None)
        if (incremental and optimizer is not None and moments_dtype == np.float64
                and params.dtype == np.float32 and optimizer.state1.dtype == np.float32):
            # float32 moments continued in scikit-learn's arithmetic
            optimizer = optimizer.widened()
        if not incremental or optimizer is None or optimizer.state1.dtype != moments_dtype:
            optimizer = _Optimizer(self, params.size, moments_dtype)
        elif not optimizer.matches(params.size, moments_dtype):
            raise ValueError(
                "The optimizer state (_optimizer) does not match the network: "
                "its moments must have %d entries of dtype %s."
                % (params.size, moments_dtype)
            )
        else:
            optimizer = optimizer.with_own_moments()

        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        early_stopping = self.early_stopping
        if early_stopping and validation is not None:
            # the user's validation set: all of X trains
            X_train, y_train, sw_train = X, y, sample_weight
            X_val, y_val, sw_val = validation
            Y_val = self._encode_targets(y_val)
            sw_wide = None if wide is None else wide.sample_weight
        elif early_stopping:
            # stratified split for classifiers, except for multilabel targets
            should_stratify = is_classifier(self) and self.n_outputs_ == 1
            stratify = y if should_stratify else None
            arrays = (X, y) if sample_weight is None else (X, y, sample_weight)
            if wide is not None and sample_weight is not None:
                # the weights as given, split with the rest (the split's
                # draws depend on the number of rows alone)
                arrays += (wide.sample_weight,)
            split = train_test_split(
                *arrays,
                random_state=self._random_state,
                test_size=self.validation_fraction,
                stratify=stratify,
            )
            X_train, X_val, y_train, Y_val = split[:4]
            sw_train, sw_val = split[4:6] if sample_weight is not None else (None, None)
            sw_wide = split[6] if len(split) > 6 else None
            if X_val.shape[0] < 2:
                raise ValueError(
                    "The validation set is too small. Increase 'validation_fraction' "
                    "or the size of your dataset."
                )
            y_val = self._decode_targets(Y_val)
            X_train = _engine_input(X_train, params.dtype)
        else:
            X_train, y_train, sw_train = X, y, sample_weight
            sw_wide = None if wide is None else wide.sample_weight

        n_samples = X_train.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn(
                    "Got `batch_size` less than 1 or larger than "
                    "sample size. It is going to be clipped"
                )
            batch_size = int(np.clip(self.batch_size, 1, n_samples))

        gather = self.shuffle and not sp.issparse(X_train)
        settings = dict(max_rows=batch_size, gather=gather, dropout=dropout)
        if wide is not None:
            wide.use_rows(network, X_train, y_train, sw_wide, **settings)
        float32_epochs = wide is None or not wide.active
        run = _EpochRun(
            network=network,
            trainer=Trainer(
                network, params.dtype, optimizer=optimizer.engine_settings(), **settings
            ) if float32_epochs else None,
            optimizer=optimizer,
            params=params,
            X=X_train,
            Y=np.ascontiguousarray(y_train, dtype=params.dtype) if float32_epochs else None,
            sample_weight=sw_train,
            order=np.arange(n_samples, dtype=np.intp) if self.shuffle else None,
            dropout=dropout is not None,
            float64_backward=wide,
        )
        if early_stopping:
            run.validation = _EarlyStopping(
                X=X_val,
                y=y_val,
                sample_weight=sw_val,
                loss=_ValidationLoss(network, X_val, Y_val, sw_val, params.dtype,
                                     float64_backward=wide is not None),
                best_params=params.copy(),
                scorer=None if self.scoring in (None, "loss")
                else check_scoring(self, scoring=self.scoring),
            )
        with _deferred_keyboard_interrupt() as interrupted:
            self._run_epochs(run, callbacks, task, incremental, interrupted)

    def _run_epochs(self, run, callbacks, task, incremental, interrupted):
        """The epoch loop: one compiled call per epoch, then the bookkeeping.

        Each epoch trains buffers of its own -- the first this fit's packed
        weights and moments, the next ones copies of what the last epoch
        published -- and publishes them whole when it is done, with the
        epoch's counters and loss curve.
        """
        n_samples = run.X.shape[0]
        network, validation = run.network, run.validation
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
                progress = {} if validation is not None else self._training_progress(loss)
                self._publish_params(
                    network, params, _optimizer=optimizer, n_iter_=self.n_iter_ + 1,
                    loss_=loss, t_=t, loss_curve_=[*self.loss_curve_, loss], **progress,
                )
                if self.verbose:
                    print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))

                # The validation score is the model's own (self.predict, or
                # the scorer's call on self), so it follows the publication
                # of the weights it scores, in a second one.
                if validation is not None and self._update_validation(validation, params):
                    validation.best_params = params

                stop = task.end_subtask(subtask, weights)
                if _callbacks_say_stop(callbacks, self) or stop:
                    if self.verbose:
                        print("A callback asked to stop. Stopping.")
                    break

                if self._no_improvement_count > self.n_iter_no_change:
                    if validation is not None:
                        msg = (
                            "Validation score did not improve more than "
                            "tol=%f for %d consecutive epochs."
                            % (self.tol, self.n_iter_no_change)
                        )
                    else:
                        msg = (
                            "Training loss did not improve more than tol=%f"
                            " for %d consecutive epochs."
                            % (self.tol, self.n_iter_no_change)
                        )
                    # the published optimizer is not changed: a new one with
                    # the new rate (sharing its published moments) replaces it
                    optimizer = optimizer.replace()
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
            if validation is not None:
                # the best epoch's buffer was published (or is this fit's
                # starting copy, never written): published again, not copied
                self._publish_params(network, validation.best_params)

    def _update_validation(self, validation, params):
        """Score the published weights on the validation set and publish the
        validation curves; True if the score is the best yet.

        The score is scikit-learn's (accuracy / R2) with ``scoring=None``,
        minus the validation loss with ``scoring="loss"`` (higher is better,
        as HistGradientBoosting records it), or the given scorer's.
        """
        loss = validation.loss(params, float(self.alpha))
        if self.scoring is None:
            score = self._score(
                validation.X, validation.y, sample_weight=validation.sample_weight
            )
        elif self.scoring == "loss":
            score = -loss
        else:
            score = validation.scorer(
                self, validation.X, validation.y, sample_weight=validation.sample_weight
            )
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
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError(
                "partial_fit is only available for stochastic"
                " optimizers. %s is not stochastic." % self.solver
            )
        return True

    # ------------------------------------------------------------------
    # Prediction
    # ------------------------------------------------------------------
    def _check_is_fitted(self):
        """scikit-learn's ``check_is_fitted(self)``, without its scan of every
        attribute when ``coefs_`` is set (a third of a one-row prediction):
        an attribute ending in "_" then exists, so the check passes, unless a
        subclass decides by ``__sklearn_is_fitted__``. Otherwise the check
        itself runs, for scikit-learn's own outcome and message."""
        if "coefs_" not in vars(self) or hasattr(type(self), "__sklearn_is_fitted__"):
            check_is_fitted(self)

    def _forward_pass_fast(self, X, check_input=True, hidden_layer=_OUTPUT_LAYER):
        """Output-layer activations for X, through the compiled forward pass;
        with hidden_layer=k (indexed as hidden_layer_sizes), those of hidden
        layer k instead."""
        layer_units, coefs, intercepts = self._fitted_weights()
        out_activation = None
        if hidden_layer is not _OUTPUT_LAYER:
            hidden_layer = self._hidden_layer_index(hidden_layer, layer_units)
            # the first k + 1 weight layers, ending in the hidden activation
            layer_units = layer_units[: hidden_layer + 2]
            coefs, intercepts = coefs[: hidden_layer + 1], intercepts[: hidden_layer + 1]
            out_activation = self.activation
        plain = check_input and self._is_plain_array(X)
        if check_input and not plain:
            X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
        if X.dtype.kind not in "biuf":
            # e.g. categorical string columns: sklearn's product fails with a
            # TypeError, and so do we (not a ValueError from a float cast)
            raise TypeError(
                "X must be numeric to predict; got dtype %s." % X.dtype
            )
        # numpy's promotion of X @ coef decides the working dtype, as in sklearn:
        # float32 only when both the data and the weights are float32.
        dtype = np.result_type(X.dtype, coefs[0].dtype)
        if dtype != np.float32:
            dtype = np.float64
        X_in = _engine_input(X, dtype)
        coefs = [np.ascontiguousarray(c, dtype=dtype) for c in coefs]
        intercepts = [np.ascontiguousarray(b, dtype=dtype) for b in intercepts]
        network = self._network(layer_units, forward_only=True, out_activation=out_activation)
        # A plain array's finiteness is checked by the engine, chunk by chunk,
        # as it reads X anyway; only if that finds a NaN or an infinity does
        # validate_data run, to raise scikit-learn's own error. Under
        # sklearn.set_config(assume_finite=True) nothing is checked, and a
        # row with a NaN predicts NaN, as in scikit-learn.
        check_finite = plain and not get_config()["assume_finite"]
        out = network.predict(X_in, coefs, intercepts, check_finite=check_finite)
        if out is None:
            validate_data(self, X, reset=False)
            raise RuntimeError(
                "cymlp: the engine found non-finite values in X that validate_data accepted"
            )
        return out

    def _is_plain_array(self, X):
        """True when X is an ndarray that validate_data would pass through as
        is, provided its values are finite.

        validate_data costs tens of microseconds, more than the whole forward
        pass of a few rows, and its finiteness check is a separate pass over
        X (a fifth of the time of predicting 60,000 MNIST rows). A float
        ndarray of the fitted width, fitted without feature names, needs none
        of its conversions and can raise none of its errors or warnings but
        that one; the engine checks finiteness itself. Anything else takes the
        full validation, so errors stay exactly scikit-learn's.
        """
        return (
            type(X) is np.ndarray
            and X.ndim == 2
            and X.dtype in (np.float64, np.float32)
            and X.shape[0] > 0
            and X.shape[1] == getattr(self, "n_features_in_", -1)
            and not hasattr(self, "feature_names_in_")
        )

    def __getstate__(self):
        # a copy: on Python >= 3.11 the base class returns the live __dict__
        state = dict(super().__getstate__())
        # coefs_ and intercepts_ are views of the packed buffer; pickle would
        # store the weights twice. The buffer is rebuilt from them at the next fit.
        state.pop("_params", None)
        # the optimizer as plain data, so that skops loads it without trusting
        # a private class
        if isinstance(state.get("_optimizer"), _Optimizer):
            state["_optimizer"] = state["_optimizer"].to_dict()
        return state

    def __setstate__(self, state):
        # a model pickled before a parameter existed (cymlp 0.1.0 had no
        # scoring, quantile, huber_delta) gets its default, which is what it
        # was trained with
        for name, param in inspect.signature(type(self).__init__).parameters.items():
            if param.default is not param.empty:
                state.setdefault(name, param.default)
        super().__setstate__(state)
        optimizer = getattr(self, "_optimizer", None)
        if isinstance(optimizer, dict):
            self._optimizer = _Optimizer.from_dict(optimizer, self)
        elif isinstance(optimizer, _Optimizer):
            # pickled by cymlp 0.1.0, as the object itself
            self._optimizer = _Optimizer.from_dict(vars(optimizer), self)

    def _score_with_function(self, X, y, sample_weight, score_function):
        """Score without input validation (validation would drop feature names)."""
        y_pred = self._predict(X, check_input=False)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return score_function(y, y_pred, sample_weight=sample_weight)

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
