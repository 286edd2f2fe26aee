"""The multi-layer perceptron classifier, :class:`cymlp.MLPClassifier`.

Class labels to and from the network's outputs, class_weight, partial_fit's
classes and the class probabilities; training is ``_BaseMLP``'s (``_base.py``).
"""

from __future__ import annotations

from numbers import Real
from typing import TYPE_CHECKING

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.metrics import accuracy_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import column_or_1d
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.class_weight import compute_class_weight, compute_sample_weight
from sklearn.utils.validation import check_array, validate_data

# Private scikit-learn imports, each because no public API does the same job:
# - _fit_context validates the parameters once per fit (honouring
#   sklearn.config_context(skip_parameter_validation=True)) exactly as
#   scikit-learn's own estimators do; the public BaseEstimator has no hook.
# - Interval / StrOptions are part of the constraint language that makes invalid
#   parameters raise scikit-learn's InvalidParameterError with its exact
#   messages.
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval, StrOptions

from ._base import _BaseMLP
from ._repr import _DocLinkMixin

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    from numpy.typing import ArrayLike, NDArray
    from typing_extensions import Self


def _fitted_label_binarizer(y):
    """``LabelBinarizer().fit(y)``, without its checks where they cannot fail.

    For a non-empty 1-D integer array, LabelBinarizer.fit's target-type checks
    (about a millisecond, a tenth of a small fit, and held under the GIL) can
    only conclude "binary" (at most two values) or "multiclass", and its
    classes are the sorted distinct values. Anything else is fitted by
    LabelBinarizer itself. tests/test_labels.py checks that both ways give a
    binarizer with the same attributes.
    """
    lb = LabelBinarizer()
    if type(y) is np.ndarray and y.ndim == 1 and y.dtype.kind in "iu" and y.shape[0]:
        # the three fitted attributes LabelBinarizer documents and fit sets
        lb.classes_ = np.unique(y)
        lb.y_type_ = "binary" if len(lb.classes_) <= 2 else "multiclass"
        lb.sparse_input_ = False
        return lb
    return lb.fit(y)


def _decode_labels(lb, Y):
    """``lb.inverse_transform(Y)``, directly for float scores of one label.

    The same arithmetic as LabelBinarizer's (the first maximum of each row
    for multiclass, score > 0.5 for binary) without its per-call checks,
    which cost three times a one-row forward pass. Other cases (multilabel,
    sparse targets, non-float Y) go through the binarizer.
    """
    if type(Y) is np.ndarray and Y.dtype.kind == "f" and not lb.sparse_input_:
        classes = lb.classes_
        if lb.y_type_ == "multiclass" and Y.ndim == 2 and Y.shape[1] == len(classes):
            return classes.take(Y.argmax(axis=1), mode="clip")
        if lb.y_type_ == "binary" and (Y.ndim == 1 or Y.shape[1] == 1):
            if len(classes) == 1:
                return np.repeat(classes[0], Y.shape[0])
            return classes[(Y > 0.5).reshape(-1).astype(np.intp)]
    return lb.inverse_transform(Y)


class MLPClassifier(_DocLinkMixin, ClassifierMixin, _BaseMLP):
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

    label_smoothing : float in [0, 1), default=0.0
        Label smoothing of the log loss, ``eps``: training targets move
        towards uniform. Multiclass (softmax output, ``K`` classes): the
        one-hot targets become ``(1 - eps) * onehot + eps / K``, as PyTorch's
        ``CrossEntropyLoss(label_smoothing=eps)``. Binary and multilabel
        (logistic outputs, one per label): each 0/1 target ``y`` becomes
        ``y * (1 - eps) + eps / 2``, as Keras's
        ``BinaryCrossentropy(label_smoothing=eps)`` (for two classes the
        multiclass rule gives the same targets). ``loss_``, ``loss_curve_``
        and ``validation_loss_curve_`` report the loss against the smoothed
        targets (the loss minimised, as PyTorch reports it; it does not reach
        0); early stopping's default score, accuracy, is not affected
        (``scoring="neg_log_loss"`` watches the plain log loss). Applies to
        every solver, lbfgs included. Not in scikit-learn; 0 keeps its
        results exactly. See :ref:`extras_label_smoothing`.

    Attributes
    ----------
    classes_ : ndarray or list of ndarray of shape (n_classes,)
        Class labels for each output.

    loss_ : float
        The current loss computed with the loss function (against the
        smoothed targets with ``label_smoothing``).

    best_loss_ : float or None
        The minimum loss reached during fitting (None with early stopping).

    loss_curve_ : list of shape (`n_iter_`,)
        The loss at the end of each epoch.

    validation_scores_ : list of shape (`n_iter_`,) or None
        Accuracy on the held-out set at each epoch, with early stopping (the
        ``scoring`` score when it is set).

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
    >>> clf = MLPClassifier(hidden_layer_sizes=(32,), learning_rate_init=0.01,
    ...                     max_iter=30, random_state=0).fit(X / 16, y)
    >>> clf.predict(X[:3] / 16)
    array([0, 1, 2])
    >>> round(clf.score(X / 16, y), 2) > 0.9
    True

    Today's recipe: a warm-up and cosine decay of the learning rate, and
    label smoothing.

    >>> modern = MLPClassifier(hidden_layer_sizes=(32,), learning_rate="cosine",
    ...                        learning_rate_init=0.01, warmup_iters=3,
    ...                        label_smoothing=0.1, max_iter=30,
    ...                        random_state=0).fit(X / 16, y)
    >>> modern.score(X / 16, y) > 0.9
    True
    >>> bool(modern.predict_proba(X[:1] / 16).max() < 0.99)
    True

    The modern recipe: AdamW's decoupled weight decay and gradient clipping.

    >>> clf = MLPClassifier(hidden_layer_sizes=(32,), solver="adamw", weight_decay=0.05,
    ...                     max_grad_norm=1.0, learning_rate_init=0.01, max_iter=30,
    ...                     random_state=0).fit(X / 16, y)
    >>> round(clf.score(X / 16, y), 2) > 0.9
    True

    One activation per hidden layer:

    >>> deep = MLPClassifier(hidden_layer_sizes=(32, 16), activation=["tanh", "relu"],
    ...                      learning_rate_init=0.01, max_iter=30,
    ...                      random_state=0).fit(X / 16, y)
    >>> deep.hidden_activations(X[:2] / 16, layer=0).shape
    (2, 32)
    >>> deep.score(X / 16, y) > 0.9
    True
    """

    def __init__(
        self,
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
        class_weight: dict | str | None = None,
        label_smoothing: float = 0.0,
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
            weight_decay=weight_decay,
            max_grad_norm=max_grad_norm,
            callbacks=callbacks,
            scoring=scoring,
            warmup_iters=warmup_iters,
            min_learning_rate=min_learning_rate,
        )
        self.class_weight = class_weight
        self.label_smoothing = label_smoothing

    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
    }

    def _training_targets(self, Y):
        """The 0/1 indicator targets, label-smoothed (float64) if
        ``label_smoothing`` is set; as they are (booleans) otherwise.

        Softmax outputs (multiclass, K columns): ``(1 - eps) * Y + eps / K``;
        logistic outputs (binary, multilabel): ``(1 - eps) * Y + eps / 2``.
        The engine's log-loss kernels take fractional targets: the delta is
        ``p - t`` and the loss ``-sum t log p`` (``- (1 - t) log(1 - p)``
        too for logistic outputs), the gradient and value of the
        cross-entropy against the smoothed targets.
        """
        eps = float(self.label_smoothing)
        if not eps:
            return Y
        n_classes = Y.shape[1] if self._label_binarizer.y_type_ == "multiclass" else 2
        return (1 - eps) * Y.astype(np.float64) + eps / n_classes

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
            self._label_binarizer = _fitted_label_binarizer(y)
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
        return _decode_labels(self._label_binarizer, Y)

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
        self._check_is_fitted()
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return self._decode_targets(y_pred)

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
        self._check_is_fitted()
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
