"""The fitted network: its weights, their checks and publication, and prediction.

``_FittedNetworkMixin`` holds what a trained model is and what it does with
new rows: the engine's network for this model's geometry and loss, the
fitted attributes of a fresh model (the initial weights drawn as
scikit-learn draws them), the checks of the fitted weights before any
compiled code reads them, their publication (all at once, for the threads
that read a model while it trains), the packed parameter buffer that
``coefs_`` and ``intercepts_`` are views of, and the compiled forward pass
behind predict, predict_proba, transform and score.
"""

import functools

import numpy as np
from sklearn import get_config
from sklearn.base import is_classifier
from sklearn.utils.validation import check_is_fitted, validate_data

from ._data import engine_input
from ._engine import HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS, Network
from ._optimizers import OPTIMIZERS

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


def hidden_activation_names(activation, n_hidden):
    """The activation of each of n_hidden hidden layers, as a tuple of names.

    ``activation`` is an estimator's parameter: one name for every hidden
    layer, or a list or tuple of names, one per hidden layer. ValueError for
    a sequence of another length, an empty one, or an entry that is not a
    hidden activation's name (the string form is checked, as scikit-learn
    checks it, by the parameter constraints; here again for fitted models
    whose parameter was changed since).
    """
    if isinstance(activation, str):
        if activation not in HIDDEN_ACTIVATIONS:
            raise ValueError(
                "activation=%r is not one of %s."
                % (activation, sorted(HIDDEN_ACTIVATIONS))
            )
        return (activation,) * n_hidden
    if not isinstance(activation, (list, tuple)):
        raise ValueError(
            "activation must be a str or a list or tuple of str, one per "
            "hidden layer; got %s." % type(activation).__name__
        )
    if len(activation) == 0:
        raise ValueError(
            "activation is an empty %s: give one activation per hidden layer, "
            "or a single name." % type(activation).__name__
        )
    for i, name in enumerate(activation):
        if not isinstance(name, str) or name not in HIDDEN_ACTIVATIONS:
            raise ValueError(
                "activation[%d]=%r is not one of %s."
                % (i, name, sorted(HIDDEN_ACTIVATIONS))
            )
    if len(activation) != n_hidden:
        raise ValueError(
            "activation has %d entries but the network has %d hidden layer(s) "
            "(hidden_layer_sizes): give one activation per hidden layer, or a "
            "single name for all of them." % (len(activation), n_hidden)
        )
    return tuple(activation)


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


class _FittedNetworkMixin:
    """The fitted network of _BaseMLP: drawn, checked, published, predicting."""

    def _loss_name(self):
        """The engine's loss for this model's output activation."""
        if self.out_activation_ == "logistic":
            return "binary_log_loss"
        return self.loss

    def _loss_param(self):
        """The parameter of this model's loss, if it takes one (the regressor's
        Huber threshold or quantile)."""
        return None

    def _network(self, layer_units, forward_only=False, out_activation=None, hidden=None):
        """The engine's network over layer_units.

        A training network has this model's loss. A forward-only network has
        none (prediction does not depend on the loss's settings) and may end
        in out_activation and have the hidden activations ``hidden``, e.g.
        the first hidden layers of this model, ending in the next one's
        activation (transform). By default, this model's hidden activations.
        """
        if hidden is None:
            hidden = hidden_activation_names(self.activation, len(layer_units) - 2)
        if forward_only:
            return _forward_network(
                tuple(layer_units),
                hidden,
                out_activation or self.out_activation_,
                float(self.negative_slope),
            )
        return Network(
            layer_units,
            hidden,
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
        hidden_activation_names(self.activation, len(units) - 2)
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
        # Its factor, 2 for logistic and 6 otherwise, is the activation of the
        # layer's outputs: for the output layer, the last hidden layer's
        # (scikit-learn's one activation for every layer, when all are equal).
        hidden = hidden_activation_names(self.activation, len(layer_units) - 2)
        # (without a hidden layer, activation is one name: a sequence is refused)
        factors = [2.0 if name == "logistic" else 6.0
                   for name in hidden or (self.activation,)]
        factors.append(factors[-1])
        coefs, intercepts = [], []
        for factor, fan_in, fan_out in zip(factors, layer_units[:-1], layer_units[1:]):
            bound = np.sqrt(factor / (fan_in + fan_out))
            coef = self._random_state.uniform(-bound, bound, (fan_in, fan_out))
            intercept = self._random_state.uniform(-bound, bound, fan_out)
            coefs.append(coef.astype(dtype, copy=False))
            intercepts.append(intercept.astype(dtype, copy=False))
        # _fit packs them into a parameter buffer for training
        fresh.update(coefs_=coefs, intercepts_=intercepts)

        if self.solver in OPTIMIZERS:  # the stochastic solvers
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
        out_activation = hidden = None
        if hidden_layer is not _OUTPUT_LAYER:
            hidden_layer = self._hidden_layer_index(hidden_layer, layer_units)
            # the first k + 1 weight layers, ending in hidden layer k's activation
            names = hidden_activation_names(self.activation, len(layer_units) - 2)
            hidden, out_activation = names[:hidden_layer], names[hidden_layer]
            layer_units = layer_units[: hidden_layer + 2]
            coefs, intercepts = coefs[: hidden_layer + 1], intercepts[: hidden_layer + 1]
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
        X_in = engine_input(X, dtype)
        coefs = [np.ascontiguousarray(c, dtype=dtype) for c in coefs]
        intercepts = [np.ascontiguousarray(b, dtype=dtype) for b in intercepts]
        network = self._network(layer_units, forward_only=True,
                                out_activation=out_activation, hidden=hidden)
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

    def _score_with_function(self, X, y, sample_weight, score_function):
        """Score without input validation (validation would drop feature names)."""
        y_pred = self._predict(X, check_input=False)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return score_function(y, y_pred, sample_weight=sample_weight)

