"""The estimators as transformers: the activations of their hidden layers.

``transform`` gives the last hidden layer's activations, so that a trained
network is a feature step of a Pipeline; ``hidden_activations`` gives any
hidden layer's. Both run the engine's forward pass over the first layers of
the network only (``_BaseMLP._forward_pass_fast``): in chunks, without the
GIL, computing nothing past the requested layer.
"""

from __future__ import annotations

from numbers import Integral
from typing import TYPE_CHECKING

from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray


class _HiddenLayersMixin(ClassNamePrefixFeaturesOutMixin, TransformerMixin):
    """transform / hidden_activations / get_feature_names_out for _BaseMLP.

    TransformerMixin brings ``fit_transform`` and ``set_output``; the
    class-name prefix gives scikit-learn's feature names for a transformer
    whose outputs are new features (``mlpclassifier0``, ``mlpclassifier1``,
    ...), one per unit of the last hidden layer.
    """

    def transform(self, X: ArrayLike) -> NDArray:
        """The activations of the last hidden layer: the features the network learned.

        With it, a fitted MLP is a feature step of a Pipeline, e.g.
        ``make_pipeline(MLPClassifier(), LogisticRegression())``;
        ``set_output(transform="pandas")`` returns a DataFrame whose columns
        are :meth:`get_feature_names_out`.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        X_new : ndarray of shape (n_samples, hidden_layer_sizes[-1])
            The last hidden layer's activations, in float32 when X and the
            weights are float32 (as :meth:`predict` computes), else float64.

        Raises
        ------
        ValueError
            If the network has no hidden layer (``hidden_layer_sizes=()``):
            it has no learned features to give.

        See Also
        --------
        hidden_activations : The activations of any hidden layer.

        Examples
        --------
        A regressor's last hidden layer, of 3 units:

        >>> from sklearn.datasets import make_regression
        >>> from cymlp import MLPRegressor
        >>> X, y = make_regression(n_samples=100, n_features=4, random_state=0)
        >>> reg = MLPRegressor(hidden_layer_sizes=(8, 3), solver="lbfgs",
        ...                    max_iter=300, random_state=0).fit(X, y)
        >>> reg.transform(X[:2]).shape
        (2, 3)
        >>> reg.get_feature_names_out().tolist()
        ['mlpregressor0', 'mlpregressor1', 'mlpregressor2']

        A classifier's, the same way:

        >>> from sklearn.datasets import load_iris
        >>> from cymlp import MLPClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = MLPClassifier(hidden_layer_sizes=(8, 3), solver="lbfgs",
        ...                     max_iter=300, random_state=0).fit(X, y)
        >>> clf.get_feature_names_out().tolist()
        ['mlpclassifier0', 'mlpclassifier1', 'mlpclassifier2']
        """
        self._check_is_fitted()
        return self._forward_pass_fast(X, hidden_layer=-1)

    def hidden_activations(self, X: ArrayLike, layer: int = -1) -> NDArray:
        """The activations of one hidden layer.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        layer : int, default=-1
            Which hidden layer, indexed as ``hidden_layer_sizes``: 0 is the
            first, -1 the last (then the result is :meth:`transform`'s).

        Returns
        -------
        activations : ndarray of shape (n_samples, hidden_layer_sizes[layer])
            The layer's activations (after the activation function), in the
            dtype :meth:`transform` uses. Always an ndarray: ``set_output``
            applies to :meth:`transform` only.

        Raises
        ------
        ValueError
            If ``layer`` is not an integer in
            ``[-len(hidden_layer_sizes), len(hidden_layer_sizes))``, or the
            network has no hidden layer.

        Examples
        --------
        A regressor's first hidden layer, of 8 units:

        >>> import numpy as np
        >>> from cymlp import MLPRegressor
        >>> X = np.linspace(0, 1, 50).reshape(-1, 1)
        >>> reg = MLPRegressor(hidden_layer_sizes=(8, 4), solver="lbfgs",
        ...                    random_state=0).fit(X, X.ravel() ** 2)
        >>> reg.hidden_activations(X[:3], layer=0).shape
        (3, 8)
        """
        self._check_is_fitted()
        return self._forward_pass_fast(X, hidden_layer=layer)

    def _hidden_layer_index(self, layer, layer_units):
        """The 0-based index of hidden layer `layer` of the fitted network
        whose (checked) widths are layer_units."""
        n_hidden = len(layer_units) - 2
        if n_hidden == 0:
            raise ValueError(
                "This %s has no hidden layer (hidden_layer_sizes=()): there are "
                "no hidden activations to transform X into." % type(self).__name__
            )
        if (
            not isinstance(layer, Integral)
            or isinstance(layer, bool)
            or not -n_hidden <= layer < n_hidden
        ):
            raise ValueError(
                "layer must be an integer in [%d, %d) for a network with %d "
                "hidden layer(s); got %r." % (-n_hidden, n_hidden, n_hidden, layer)
            )
        return int(layer) % n_hidden

    @property
    def _n_features_out(self):
        # Read by ClassNamePrefixFeaturesOutMixin.get_feature_names_out through
        # check_is_fitted: an AttributeError (hasattr False) means unfitted.
        if not hasattr(self, "coefs_"):
            raise AttributeError("_n_features_out")
        layer_units, _, _ = self._fitted_weights()
        return layer_units[self._hidden_layer_index(-1, layer_units) + 1]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # transform computes in the weights' dtype: float32 data gives float32
        # features, except after lbfgs, whose weights are float64 (scipy's
        # result, which scikit-learn keeps, and so does cymlp).
        tags.transformer_tags.preserves_dtype = (
            ["float64"] if self.solver == "lbfgs" else ["float64", "float32"]
        )
        return tags
