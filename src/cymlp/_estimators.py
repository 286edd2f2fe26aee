"""The scikit-learn layer: parameters, data validation, targets, and the epoch loop.

Everything a user can pass is checked here, with scikit-learn's own validation
functions, before the compiled engine (:mod:`cymlp._engine`) sees it. The
engine trusts shapes and dtypes; this module makes sure they are right.

Python runs once per epoch: the shuffling draw (the same RandomState calls as
scikit-learn, so the same seed gives the same weights), convergence and
early-stopping checks, learning-rate schedules and verbose lines. The epoch
itself is one call into the engine.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import warnings
from numbers import Integral, Real
from typing import TYPE_CHECKING

import numpy as np
import scipy.optimize
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.class_weight import compute_class_weight, compute_sample_weight
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

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

from ._engine import Network

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    from numpy.typing import ArrayLike, NDArray
    from typing_extensions import Self

_STOCHASTIC_SOLVERS = ("sgd", "adam")


def _engine_input(X, dtype):
    """X as the engine reads it: C-contiguous rows, or CSR, of the given dtype.

    No copy when X already is (the common case: float32 or float64 C arrays);
    CSC input is converted to CSR once per fit or predict call.
    """
    if sp.issparse(X):
        # The compiled product reads X.indices as row offsets into the weights:
        # a hand-made matrix with an index out of range must raise here, not
        # read out of bounds (sklearn's validation does not look at indices),
        # and before scipy's own CSC -> CSR conversion, which trusts them too.
        X.check_format(full_check=True)
        return X.tocsr().astype(dtype, copy=False)
    return np.ascontiguousarray(X, dtype=dtype)


@contextlib.contextmanager
def _deferred_keyboard_interrupt():
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


def _as_callback_list(callbacks):
    if callbacks is None:
        return []
    if callable(callbacks):
        return [callbacks]
    return list(callbacks)


def _callbacks_say_stop(callbacks, est):
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


class _ValidationLoss:
    """The loss of the current weights on the validation set, L2 term included."""

    def __init__(self, network, X_val, Y_val, sw_val, dtype):
        self.network = network
        self.X = _engine_input(X_val, dtype)
        self.Y = np.ascontiguousarray(Y_val, dtype=dtype).reshape(self.X.shape[0], -1)
        self.sw = None if sw_val is None else np.ascontiguousarray(sw_val, dtype=dtype)
        self.work = network.workspace(self.X.shape[0], False, dtype)

    def __call__(self, params, alpha):
        return float(self.network.loss_grad(self.X, self.Y, self.sw, params, None,
                                            self.work, alpha))


class _Optimizer:
    """State of a stochastic optimizer across epochs (and partial_fit calls).

    The moments live in packed buffers shaped like the parameter buffer, so the
    engine updates everything in one pass. Plain numpy arrays: it pickles.
    """

    def __init__(self, est, n_params, dtype):
        self.kind = est.solver
        self.learning_rate_init = est.learning_rate_init
        self.learning_rate = float(est.learning_rate_init)
        self.lr_schedule = est.learning_rate
        self.power_t = est.power_t
        self.t = 0  # adam steps
        self.state1 = np.zeros(n_params, dtype=dtype)  # sgd velocity / adam m
        self.state2 = np.zeros(n_params, dtype=dtype) if est.solver == "adam" else None

    def make_writable(self):
        """The engine updates the moments in place: a model loaded from a
        read-only memory map (joblib.load(..., mmap_mode="r")) gets copies."""
        if not self.state1.flags.writeable:
            self.state1 = self.state1.copy()
        if self.state2 is not None and not self.state2.flags.writeable:
            self.state2 = self.state2.copy()

    def engine_args(self, est):
        return {
            "kind": self.kind,
            "alpha": float(est.alpha),
            # adam rescales learning_rate_init itself at every step
            "lr": float(self.learning_rate_init)
            if self.kind == "adam"
            else self.learning_rate,
            "momentum": float(est.momentum),
            "nesterov": bool(est.nesterovs_momentum),
            "beta_1": float(est.beta_1),
            "beta_2": float(est.beta_2),
            "epsilon": float(est.epsilon),
            "t": self.t,
        }

    def iteration_ends(self, time_step):
        if self.kind == "sgd" and self.lr_schedule == "invscaling":
            self.learning_rate = (
                float(self.learning_rate_init) / (time_step + 1) ** self.power_t
            )

    def trigger_stopping(self, msg, verbose):
        """True to stop; with sgd's 'adaptive' schedule, divide the rate by 5 first."""
        if self.kind == "adam" or self.lr_schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % self.learning_rate)
        return False


class _BaseMLP(BaseEstimator):
    """Shared by MLPClassifier and MLPRegressor. Not for direct use."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": [
            "array-like",
            Interval(Integral, 1, None, closed="left"),
        ],
        "activation": [
            StrOptions(
                {"identity", "logistic", "tanh", "relu"}
                | {"leaky_relu", "elu", "gelu", "silu", "softplus"}
            )
        ],
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
        "callbacks": [None, callable, list, tuple],
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

    # ------------------------------------------------------------------
    # The network
    # ------------------------------------------------------------------
    def _loss_name(self):
        """The engine's loss for this model's output activation."""
        if self.out_activation_ == "logistic":
            return "binary_log_loss"
        return self.loss

    def _network(self, layer_units):
        return Network(
            layer_units,
            self.activation,
            self.out_activation_,
            self._loss_name(),
            negative_slope=float(self.negative_slope),
        )

    def _layer_units(self):
        return [self.coefs_[0].shape[0]] + [c.shape[1] for c in self.coefs_]

    def _initialize(self, y, layer_units, dtype):
        """Set the fitted attributes of a fresh model and draw the initial weights."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)

        if not is_classifier(self):
            self.out_activation_ = "exp" if self.loss == "poisson" else "identity"
        elif self._label_binarizer.y_type_ == "multiclass":
            self.out_activation_ = "softmax"
        else:
            self.out_activation_ = "logistic"

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
        # _fit packs them into the parameter buffer
        self.coefs_, self.intercepts_ = coefs, intercepts

        if self.solver in _STOCHASTIC_SOLVERS:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.validation_loss_curve_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.validation_loss_curve_ = None
                self.best_validation_score_ = None

    def _set_params_buffer(self, layer_units, coefs, intercepts, dtype):
        """Pack the weights into one buffer and make coefs_ / intercepts_ views of it.

        Called at the start of every fit: after unpickling, or if a user
        assigned new arrays to coefs_, the lists are no longer views of the
        buffer, so it is always rebuilt from them (one copy of the weights).
        """
        network = self._network(layer_units)
        params = np.empty(network.n_params, dtype=dtype)
        self.coefs_, self.intercepts_ = network.views(params)
        for dst, src in zip(self.coefs_ + self.intercepts_, coefs + intercepts):
            dst[...] = src
        self._params = params
        return network

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
        self.n_outputs_ = y.shape[1]

        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(y, layer_units, X.dtype)
        elif self._layer_units() != layer_units:
            raise ValueError(
                "The network's layers %s do not match what the data and "
                "hidden_layer_sizes ask for, %s: warm_start and partial_fit "
                "need the same hidden_layer_sizes and outputs as before."
                % (self._layer_units(), layer_units)
            )
        # A first fit trains in X's dtype; a continued one (warm_start,
        # partial_fit) keeps the weights' dtype, as sklearn does.
        dtype = X.dtype if first_pass else self.coefs_[0].dtype
        if dtype == np.float32 and y.dtype.kind == "f" and np.any(
            np.abs(y) > np.finfo(np.float32).max
        ):
            # regression targets beyond float32's range: train in float64
            # (sklearn keeps such targets in float64 beside float32 weights)
            dtype = np.float64
        self._set_params_buffer(layer_units, self.coefs_, self.intercepts_, dtype)

        X = _engine_input(X, dtype)
        if sample_weight is not None:
            sample_weight = np.ascontiguousarray(sample_weight, dtype=dtype)

        if self.solver == "lbfgs":
            self._fit_lbfgs(X, y, sample_weight, layer_units)
        else:
            self._fit_stochastic(
                X, y, sample_weight, layer_units, incremental, dropout, validation
            )

        if not np.isfinite(self._params).all():
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may"
                " contain large values and need to be preprocessed."
            )
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

    def _fit_lbfgs(self, X, y, sample_weight, layer_units):
        """Minimise the full-data loss with scipy's L-BFGS-B.

        scipy hands each candidate point ``x`` (packed like our parameter
        buffer, in its dtype) straight to the engine: no unpacking, no copy of
        the weights per evaluation.
        """
        network = self._network(layer_units)
        params = self._params
        Y = np.ascontiguousarray(y, dtype=params.dtype)
        grad = np.empty_like(params)
        work = network.workspace(X.shape[0], False, params.dtype)
        alpha = float(self.alpha)

        def loss_grad(x):
            loss = network.loss_grad(X, Y, sample_weight, x, grad, work, alpha)
            # scipy may keep the gradient it was given: hand over a copy
            return loss, grad.copy()

        callbacks = _as_callback_list(self.callbacks)
        iteration = 0

        def after_iteration(intermediate_result):
            nonlocal iteration
            iteration += 1
            if self.verbose:
                print("Iteration %d, loss = %.8f" % (iteration, intermediate_result.fun))
            # what the callbacks see, as after a stochastic epoch
            self.n_iter_, self.loss_ = iteration, intermediate_result.fun
            if _callbacks_say_stop(callbacks, self):
                raise StopIteration  # scipy ends the minimisation there

        result = scipy.optimize.minimize(
            loss_grad,
            params,
            method="L-BFGS-B",
            jac=True,
            options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol},
            callback=after_iteration if self.verbose or callbacks else None,
        )
        self.n_iter_ = min(result.nit, self.max_iter)
        stopped_by_callback = result.status == 99  # StopIteration from a callback
        if result.status != 0 and not stopped_by_callback:
            msg = (
                "lbfgs failed to converge after %d iteration(s) (status=%d):\n%s\n"
                % (self.n_iter_, result.status, result.message)
            )
            if self.n_iter_ == self.max_iter:
                msg += (
                    "\nIncrease the number of iterations to improve the "
                    "convergence (max_iter=%d)." % self.max_iter
                )
            msg += (
                "\nYou might also want to scale the data as shown in:\n"
                "    https://scikit-learn.org/stable/modules/preprocessing.html"
            )
            warnings.warn(msg, ConvergenceWarning, stacklevel=3)
        self.loss_ = np.float64(result.fun)
        # scipy evaluates the loss at points of x0's dtype but returns float64
        # weights; scikit-learn keeps those, so float32 data ends with float64
        # coefs_ here, and so do we.
        coefs, intercepts = network.views(result.x)
        self._set_params_buffer(layer_units, coefs, intercepts, result.x.dtype)

    def _fit_stochastic(
        self, X, y, sample_weight, layer_units, incremental, dropout, validation
    ):
        network = self._network(layer_units)
        params = self._params
        if (
            not incremental
            or not hasattr(self, "_optimizer")
            or self._optimizer.state1.dtype != params.dtype
        ):
            self._optimizer = _Optimizer(self, params.size, params.dtype)
        optimizer = self._optimizer
        optimizer.make_writable()

        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        early_stopping = self.early_stopping
        if early_stopping and validation is not None:
            # the user's validation set: all of X trains
            X_train, y_train, sw_train = X, y, sample_weight
            X_val, y_val, sw_val = validation
            Y_val = self._encode_targets(y_val)
        elif early_stopping:
            # stratified split for classifiers, except for multilabel targets
            should_stratify = is_classifier(self) and self.n_outputs_ == 1
            stratify = y if should_stratify else None
            arrays = (X, y) if sample_weight is None else (X, y, sample_weight)
            split = train_test_split(
                *arrays,
                random_state=self._random_state,
                test_size=self.validation_fraction,
                stratify=stratify,
            )
            X_train, X_val, y_train, Y_val = split[:4]
            sw_train, sw_val = split[4:] if sample_weight is not None else (None, None)
            if X_val.shape[0] < 2:
                raise ValueError(
                    "The validation set is too small. Increase 'validation_fraction' "
                    "or the size of your dataset."
                )
            y_val = self._decode_targets(Y_val)
            X_train = _engine_input(X_train, params.dtype)
        else:
            X_train, y_train, sw_train = X, y, sample_weight
        if early_stopping:
            best_params = params.copy()
            val_loss = _ValidationLoss(network, X_val, Y_val, sw_val, params.dtype)
        Y_train = np.ascontiguousarray(y_train, dtype=params.dtype)

        n_samples = X_train.shape[0]
        sample_idx = np.arange(n_samples, dtype=np.intp)
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn(
                    "Got `batch_size` less than 1 or larger than "
                    "sample size. It is going to be clipped"
                )
            batch_size = int(np.clip(self.batch_size, 1, n_samples))

        grad = np.empty_like(params)
        gather = self.shuffle and not sp.issparse(X_train)
        work = network.workspace(batch_size, gather, params.dtype, dropout is not None)
        callbacks = _as_callback_list(self.callbacks)
        if not early_stopping:
            X_val = y_val = sw_val = None

        with _deferred_keyboard_interrupt() as interrupted:
            self._run_epochs(
                network, optimizer, params, X_train, Y_train, sw_train, sample_idx,
                batch_size, grad, work, dropout, callbacks, incremental,
                early_stopping, X_val, y_val, sw_val,
                val_loss if early_stopping else None,
                best_params if early_stopping else None,
                interrupted,
            )

    def _run_epochs(
        self, network, optimizer, params, X_train, Y_train, sw_train, sample_idx,
        batch_size, grad, work, dropout, callbacks, incremental, early_stopping,
        X_val, y_val, sw_val, val_loss, best_params, interrupted,
    ):
        """The epoch loop: one compiled call per epoch, then the bookkeeping."""
        n_samples = X_train.shape[0]
        state2 = optimizer.state2
        try:
            self.n_iter_ = 0
            for _ in range(self.max_iter):
                if interrupted():
                    raise KeyboardInterrupt
                if self.shuffle:
                    # scikit-learn's shuffle(sample_idx, random_state) draws a
                    # permutation with RandomState.shuffle(arange(n)) and indexes
                    # sample_idx with it. Shuffling sample_idx in place makes the
                    # same swaps from the same draws, so the same seed visits the
                    # rows in the same order -- without ~0.25 ms of per-epoch
                    # validation and indexing overhead.
                    self._random_state.shuffle(sample_idx)
                if dropout is not None:
                    # one draw per epoch seeds the masks (only with dropout, so
                    # the default keeps scikit-learn's random stream)
                    seed = int(self._random_state.randint(0, 2**63 - 1, dtype=np.int64))
                loss_sum, optimizer.t = network.train_epoch(
                    X_train,
                    Y_train,
                    sw_train,
                    sample_idx if self.shuffle else None,
                    batch_size,
                    params,
                    grad,
                    optimizer.state1,
                    state2,
                    work,
                    optimizer.engine_args(self),
                    None if dropout is None else (dropout, seed),
                )
                self.n_iter_ += 1
                # numpy.float64 whatever the dtype, as sklearn (its losses go
                # through float64 targets or scipy.special.xlogy)
                self.loss_ = np.float64(loss_sum / n_samples)
                self.t_ += n_samples
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))

                if early_stopping:
                    if self._update_validation(X_val, y_val, sw_val, val_loss, params):
                        best_params[...] = params
                else:
                    self._update_training_loss()

                optimizer.iteration_ends(self.t_)

                if _callbacks_say_stop(callbacks, self):
                    if self.verbose:
                        print("A callback asked to stop. Stopping.")
                    break

                if self._no_improvement_count > self.n_iter_no_change:
                    if early_stopping:
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
                    if optimizer.trigger_stopping(msg, self.verbose):
                        break
                    self._no_improvement_count = 0

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
            if early_stopping:
                params[...] = best_params

    def _update_validation(self, X_val, y_val, sw_val, val_loss, params):
        """Record the validation score and loss; True if the score is the best yet."""
        score = self._score(X_val, y_val, sample_weight=sw_val)
        self.validation_scores_.append(score)
        self.validation_loss_curve_.append(val_loss(params, float(self.alpha)))
        if self.verbose:
            print("Validation score: %f" % score)
            if self.verbose >= 2:
                print("Validation loss: %.8f" % self.validation_loss_curve_[-1])
        if score < self.best_validation_score_ + self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        if score > self.best_validation_score_:
            self.best_validation_score_ = score
            return True
        return False

    def _update_training_loss(self):
        if self.loss_curve_[-1] > self.best_loss_ - self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        if self.loss_curve_[-1] < self.best_loss_:
            self.best_loss_ = self.loss_curve_[-1]

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
    def _forward_pass_fast(self, X, check_input=True):
        """Output-layer activations for X, through the compiled forward pass."""
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
        dtype = np.result_type(X.dtype, self.coefs_[0].dtype)
        if dtype != np.float32:
            dtype = np.float64
        X_in = _engine_input(X, dtype)
        coefs = [np.ascontiguousarray(c, dtype=dtype) for c in self.coefs_]
        intercepts = [np.ascontiguousarray(b, dtype=dtype) for b in self.intercepts_]
        network = self._network(self._layer_units())
        # A plain array's finiteness is checked by the engine, chunk by chunk,
        # as it reads X anyway; only if that finds a NaN or an infinity does
        # validate_data run, to raise scikit-learn's own error.
        out = network.predict(X_in, coefs, intercepts, check_finite=plain)
        if out is None:
            validate_data(self, X, reset=False)
            raise RuntimeError("cymlp: the engine found non-finite values in X that validate_data accepted")
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
        state = super().__getstate__()
        # coefs_ and intercepts_ are views of the packed buffer; pickle would
        # store the weights twice. The buffer is rebuilt from them at the next fit.
        state.pop("_params", None)
        return state

    def _score_with_function(self, X, y, sample_weight, score_function):
        """Score without input validation (validation would drop feature names)."""
        y_pred = self._predict(X, check_input=False)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return score_function(y, y_pred, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier, compiled; a drop-in for scikit-learn's.

    Same parameters, defaults, fitted attributes and errors as
    :class:`sklearn.neural_network.MLPClassifier`, and for the same
    ``random_state`` the same trained weights (to floating-point rounding).
    Each training epoch runs as one compiled call without the GIL.

    Parameters
    ----------
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        The ith element is the number of neurons in the ith hidden layer.

    activation : {'identity', 'logistic', 'tanh', 'relu', 'leaky_relu', 'elu', \
'gelu', 'silu', 'softplus'}, default='relu'
        Activation function for the hidden layers. The last five are not in
        scikit-learn: 'leaky_relu' (slope ``negative_slope`` below zero),
        'elu' (alpha 1), 'gelu' (exact, ``z * Phi(z)``), 'silu'
        (``z * sigmoid(z)``) and 'softplus' (``log(1 + exp(z))``).

    solver : {'lbfgs', 'sgd', 'adam'}, default='adam'
        The solver for weight optimization.

    alpha : float, default=0.0001
        Strength of the L2 regularization term, divided by the sample size
        when added to the loss.

    batch_size : int, default='auto'
        Size of minibatches for stochastic optimizers; 'auto' is
        ``min(200, n_samples)``.

    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        Learning rate schedule for weight updates, used by solver='sgd'.

    learning_rate_init : float, default=0.001
        The initial learning rate, for solver='sgd' or 'adam'.

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
        Whether to stop training when the validation score stops improving.

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

    callbacks : callable or list of callables, default=None
        Called after every epoch (every lbfgs iteration) with a dict holding
        ``epoch``, ``loss``, ``validation_score``, ``validation_loss`` and
        ``estimator``. Training stops when one returns True (no
        ConvergenceWarning then). See :class:`cymlp.ProgressBar`. Not in
        scikit-learn.

    class_weight : dict, 'balanced' or None, default=None
        Weights of the classes, multiplied into ``sample_weight``: a dict
        ``{class_label: weight}``, or 'balanced' for
        ``n_samples / (n_classes * np.bincount(y))`` (counting each sample by
        its sample_weight). For multilabel targets, 'balanced' weighs each
        label as a binary output, or pass a list of ``{0: w, 1: w}`` dicts,
        one per label, as :func:`sklearn.utils.class_weight.compute_sample_weight`
        takes them. 'balanced' is refused by partial_fit (the class
        frequencies of one batch are not those of the data). Not in
        scikit-learn.

    Attributes
    ----------
    classes_ : ndarray or list of ndarray of shape (n_classes,)
        Class labels for each output.

    loss_ : float
        The current loss computed with the loss function.

    best_loss_ : float or None
        The minimum loss reached during fitting (None with early stopping).

    loss_curve_ : list of shape (`n_iter_`,)
        The loss at the end of each epoch.

    validation_scores_ : list of shape (`n_iter_`,) or None
        Accuracy on the held-out set at each epoch, with early stopping.

    best_validation_score_ : float or None
        Best validation accuracy, with early stopping.

    validation_loss_curve_ : list of shape (`n_iter_`,) or None
        The loss (L2 term included) on the held-out set at each epoch, with
        early stopping. Not in scikit-learn.

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
        The number of epochs the solver has run.

    n_layers_ : int
        Number of layers.

    n_outputs_ : int
        Number of outputs.

    out_activation_ : str
        Name of the output activation function.

    See Also
    --------
    sklearn.neural_network.MLPClassifier : The reference implementation.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from cymlp import MLPClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=30,
    ...                     random_state=0).fit(X / 16, y)
    >>> clf.predict(X[:3] / 16)
    array([0, 1, 2])
    >>> round(clf.score(X / 16, y), 2) > 0.9
    True
    """

    def __init__(
        self,
        hidden_layer_sizes: ArrayLike | int = (100,),
        activation: str = "relu",
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
        callbacks: Callable[[dict], Any] | Sequence[Callable[[dict], Any]] | None = None,
        class_weight: dict | str | None = None,
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
            loss="log_loss",
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
            callbacks=callbacks,
        )
        self.class_weight = class_weight

    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }

    def _apply_class_weight(self, y, sample_weight, incremental):
        """Fold class_weight into the sample weights (multiplicatively)."""
        if self.class_weight is None:
            return sample_weight
        if incremental and self.class_weight == "balanced":
            raise ValueError(
                "class_weight 'balanced' is not supported for partial_fit: the "
                "class frequencies of one batch are not those of the data. Use "
                "sklearn.utils.class_weight.compute_class_weight('balanced', "
                "classes=classes, y=y) on (a large sample of) the full targets "
                "and pass the resulting dict as class_weight."
            )
        if self._label_binarizer.y_type_.startswith("multilabel"):
            # each label a binary output, weighted as sklearn weighs multi-output
            # targets: 'balanced' per label, or a list of {0: w0, 1: w1} dicts
            weights = compute_sample_weight(self.class_weight, y.astype(int))
        else:
            labels = self._label_binarizer.inverse_transform(y)
            classes, index = np.unique(labels, return_inverse=True)
            # 'balanced' counts each sample by its weight, so that weights and
            # repeated samples stay equivalent
            with np.errstate(divide="ignore"):
                per_class = compute_class_weight(
                    self.class_weight, classes=classes, y=labels,
                    sample_weight=sample_weight,
                )
            # a class whose samples all weigh 0 gets an infinite 'balanced'
            # weight; its samples keep weight 0
            per_class[~np.isfinite(per_class)] = 0
            weights = per_class[index.ravel()]
        if sample_weight is None:
            return weights
        return sample_weight * weights

    def _validate_validation_targets(self, y_val):
        y_val = check_array(y_val, ensure_2d=False, dtype=None, input_name="y_val")
        if y_val.ndim == 2 and y_val.shape[1] == 1:
            y_val = column_or_1d(y_val, warn=True)
        unknown = np.setdiff1d(unique_labels(y_val), self.classes_)
        if len(unknown):
            raise ValueError(
                "y_val has classes not seen in y: %s (classes_ is %s)."
                % (unknown, self.classes_)
            )
        return y_val

    def _encode_targets(self, y):
        """Labels to the 0/1 indicator matrix the network is trained on.

        The same matrix as LabelBinarizer.transform, which costs milliseconds
        of repeated target-type checks per call (a third of a small fit);
        plain labels take a searchsorted instead, anything else the binarizer.
        """
        lb = self._label_binarizer
        classes = lb.classes_
        if lb.y_type_ in ("binary", "multiclass") and y.ndim == 1 and len(classes) >= 2:
            index = np.searchsorted(classes, y)
            if np.all(index < len(classes)) and np.array_equal(classes[index], y):
                if len(classes) == 2:
                    return (index == 1).reshape(-1, 1)
                Y = np.zeros((y.shape[0], len(classes)), dtype=bool)
                Y[np.arange(y.shape[0]), index] = True
                return Y
        return lb.transform(y).astype(bool)

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)

        # A fresh fit (re)defines the classes; warm_start needs the same set;
        # partial_fit accepts any subset of the classes of its first call.
        if (not hasattr(self, "classes_")) or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same "
                        "classes as in the previous call to fit. Previously "
                        f"got {self.classes_}, `y` has {classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    "`y` has classes not in `self.classes_`. "
                    f"`self.classes_` has {self.classes_}. 'y' has {classes}."
                )
        return X, self._encode_targets(y)

    def _decode_targets(self, Y):
        return self._label_binarizer.inverse_transform(Y)

    def predict(self, X: ArrayLike) -> NDArray:
        """Predict using the multi-layer perceptron classifier.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray, shape (n_samples,) or (n_samples, n_classes)
            The predicted classes.
        """
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return self._label_binarizer.inverse_transform(y_pred)

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(
            X, y, sample_weight=sample_weight, score_function=accuracy_score
        )

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        sample_weight: ArrayLike | None = None,
        classes: ArrayLike | None = None,
    ) -> Self:
        """Update the model with a single epoch over the given data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The input data.

        y : array-like of shape (n_samples,)
            The target values.

        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        classes : array of shape (n_classes,), default=None
            Classes across all calls to partial_fit; required on the first call.

        Returns
        -------
        self : object
            Trained MLP model.
        """
        if self._first_partial_fit(classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def _first_partial_fit(self, classes):
        """Check ``classes`` against earlier calls; True on the first call."""
        known = getattr(self, "classes_", None)
        if known is None and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        if classes is None:
            return False
        if known is not None:
            if not np.array_equal(known, unique_labels(classes)):
                raise ValueError(
                    "`classes=%r` is not the same as on last call "
                    "to partial_fit, was: %r" % (classes, known)
                )
            return False
        self.classes_ = unique_labels(classes)
        return True

    def predict_log_proba(self, X: ArrayLike) -> NDArray:
        """Return the log of probability estimates.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        log_y_prob : ndarray of shape (n_samples, n_classes)
            The log-probability of each class, ordered as in `classes_`.
        """
        y_prob = self.predict_proba(X)
        return np.log(y_prob, out=y_prob)

    def predict_proba(self, X: ArrayLike) -> NDArray:
        """Probability estimates.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y_prob : ndarray of shape (n_samples, n_classes)
            The probability of each class, ordered as in `classes_`.
        """
        check_is_fitted(self)
        y_pred = self._forward_pass_fast(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor, compiled; a drop-in for scikit-learn's.

    Same parameters, defaults, fitted attributes and errors as
    :class:`sklearn.neural_network.MLPRegressor`, and for the same
    ``random_state`` the same trained weights (to floating-point rounding).

    Parameters
    ----------
    loss : {'squared_error', 'poisson'}, default='squared_error'
        'squared_error' is half the squared error; 'poisson' is half the
        Poisson deviance with an exponential output (log link) and needs
        ``y >= 0``. Unlike scikit-learn, negative targets with 'poisson' raise
        a ValueError instead of training to NaN.

    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        The ith element is the number of neurons in the ith hidden layer.

    activation : {'identity', 'logistic', 'tanh', 'relu', 'leaky_relu', 'elu', \
'gelu', 'silu', 'softplus'}, default='relu'
        Activation function for the hidden layers (see :class:`MLPClassifier`).

    solver : {'lbfgs', 'sgd', 'adam'}, default='adam'
        The solver for weight optimization.

    alpha, batch_size, learning_rate, learning_rate_init, power_t, max_iter, \
shuffle, random_state, tol, verbose, warm_start, momentum, \
nesterovs_momentum, early_stopping, validation_fraction, beta_1, beta_2, \
epsilon, n_iter_no_change, max_fun, negative_slope, dropout, callbacks
        As in :class:`MLPClassifier`. With early stopping the validation
        score is R^2.

    Attributes
    ----------
    loss_ : float
        The current loss computed with the loss function.

    best_loss_ : float or None
        The minimum loss reached during fitting (None with early stopping).

    loss_curve_ : list of shape (`n_iter_`,)
        The loss at the end of each epoch (stochastic solvers).

    validation_scores_ : list of shape (`n_iter_`,) or None
        R^2 on the held-out set at each epoch, with early stopping.

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
    """

    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    def __init__(
        self,
        loss: str = "squared_error",
        hidden_layer_sizes: ArrayLike | int = (100,),
        activation: str = "relu",
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
        callbacks: Callable[[dict], Any] | Sequence[Callable[[dict], Any]] | None = None,
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
            callbacks=callbacks,
        )

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
        check_is_fitted(self)
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
