"""Export fitted cymlp estimators to ONNX, through skl2onnx.

Importing this module registers a shape calculator and a converter for
:class:`cymlp.MLPClassifier` and :class:`cymlp.MLPRegressor` with skl2onnx,
so that ``skl2onnx.to_onnx`` also converts pipelines that contain them.
The converter is cymlp's own: it writes every hidden activation cymlp has
(scikit-learn's four and leaky_relu, elu, gelu, silu, softplus), the
Poisson regressor's exponential output, multi-output regression and
multilabel classification.
"""

import numbers

import numpy as np
from scipy import sparse

try:
    import onnx  # noqa: F401  (skl2onnx needs it; checked here for the message)
    from skl2onnx import to_onnx as _skl2onnx_to_onnx
    from skl2onnx import update_registered_converter
    from skl2onnx.common.data_types import (
        DoubleTensorType,
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )
    from skl2onnx.common.utils import check_input_and_output_numbers
    from skl2onnx.proto import onnx_proto
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError(
        "cymlp.to_onnx needs the optional packages skl2onnx and onnx (and "
        "onnxruntime to run the exported model). Install them with: "
        "pip install 'cymlp[onnx]'. (The import failed with: %s)" % exc
    ) from exc

from sklearn.utils.validation import check_is_fitted

from ._classifier import MLPClassifier
from ._fitted import hidden_activation_names
from ._regressor import MLPRegressor

__all__ = ["to_onnx"]

_CLASSIFIER_ALIAS = "CymlpMLPClassifier"
_REGRESSOR_ALIAS = "CymlpMLPRegressor"

_ERF_TERMS = 100
_ERF_CLIP = 6.0

# One ONNX operator per activation that ONNX has; the others are composed.
_PLAIN_ACTIVATIONS = {
    "tanh": "Tanh",
    "logistic": "Sigmoid",
    "relu": "Relu",
    "softplus": "Softplus",
    "exp": "Exp",
}


# ---------------------------------------------------------------- shapes


def _float_type(operator):
    """The tensor type the network computes in: float for float input, else double.

    As cymlp computes: float32 data in float32, anything else (float64,
    integers, booleans) in float64.
    """
    if isinstance(operator.inputs[0].type, FloatTensorType):
        return FloatTensorType
    return DoubleTensorType


def _label_kind(classes):
    """'int' or 'str': how the class labels are written into the graph."""
    classes = np.asarray(classes)
    if classes.dtype == np.bool_ or np.issubdtype(classes.dtype, np.integer):
        return "int"
    if np.issubdtype(classes.dtype, np.floating):
        # scikit-learn's classifiers accept integral floats only ("continuous"
        # targets are refused in fit), so these convert to int64 exactly
        return "int"
    if all(isinstance(c, str) for c in classes):
        return "str"
    if all(isinstance(c, numbers.Integral) for c in classes):
        return "int"
    raise ValueError(
        "Cannot export a classifier with class labels of type %s to ONNX: "
        "ONNX labels are all integers or all strings." % classes.dtype
    )


def _is_multilabel(model):
    return model._label_binarizer.y_type_ == "multilabel-indicator"


def _classifier_shapes(operator):
    check_input_and_output_numbers(
        operator, input_count_range=1, output_count_range=2
    )
    model = operator.raw_operator
    n = operator.inputs[0].get_first_dimension()
    n_classes = len(model.classes_)
    nocl = operator.scope_inst.get_options(model, dict(nocl=False))["nocl"]
    if _is_multilabel(model):
        operator.outputs[0].set_type(Int64TensorType([n, n_classes]))
    elif _label_kind(model.classes_) == "str" and not nocl:
        operator.outputs[0].set_type(StringTensorType([n]))
    else:
        operator.outputs[0].set_type(Int64TensorType([n]))
    operator.outputs[1].set_type(_float_type(operator)([n, n_classes]))


def _regressor_shapes(operator):
    check_input_and_output_numbers(
        operator, input_count_range=1, output_count_range=1
    )
    model = operator.raw_operator
    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].set_type(_float_type(operator)([n, model.n_outputs_]))


# ---------------------------------------------------------------- graph


class _Graph:
    """Small helper over skl2onnx's scope and container: unique names, typed constants."""

    def __init__(self, scope, container, proto_dtype, np_dtype):
        self.scope = scope
        self.container = container
        self.proto_dtype = proto_dtype
        self.np_dtype = np_dtype

    def name(self, hint):
        return self.scope.get_unique_variable_name(hint)

    def constant(self, hint, value, proto_dtype=None):
        value = np.asarray(value)
        if proto_dtype is None:
            proto_dtype = self.proto_dtype
            value = value.astype(self.np_dtype)
        name = self.name(hint)
        self.container.add_initializer(
            name, proto_dtype, list(value.shape), value.ravel().tolist()
        )
        return name

    def node(self, op_type, inputs, output=None, op_domain="", op_version=None, **attrs):
        if isinstance(inputs, str):
            inputs = [inputs]
        if output is None:
            output = self.name(op_type.lower())
        self.container.add_node(
            op_type,
            inputs,
            output,
            op_domain=op_domain,
            op_version=op_version,
            name=self.scope.get_unique_operator_name(op_type),
            **attrs,
        )
        return output


def _erf_double(g, z):
    """erf(z) in float64 from elementary operators (onnxruntime has no double Erf).

    erf(z) = 2 / sqrt(pi) * exp(-z^2) * z * sum_n 2^n z^(2n) / (1 * 3 * ... * (2n + 1)),
    a series of positive terms (no cancellation), with z clipped to [-6, 6]
    where erf is +-1 in double precision. Horner's rule runs in u = z^2 / 36
    (in [0, 1]) so that no coefficient is tiny: onnxruntime's optimizer takes
    an addition of a double constant below float32's range for "add zero" and
    removes it. 100 terms keep the error below 1e-14 over the whole range.
    """
    z = g.node("Clip", [z, g.constant("lo", -_ERF_CLIP), g.constant("hi", _ERF_CLIP)])
    z2 = g.node("Mul", [z, z])
    u = g.node("Mul", [z2, g.constant("inv_clip2", 1 / _ERF_CLIP**2)])
    coefs = [1.0]
    for n in range(1, _ERF_TERMS + 1):
        coefs.append(coefs[-1] * 2 * _ERF_CLIP**2 / (2 * n + 1))
    acc = g.node("Mul", [u, g.constant("erf_coef", coefs[-1])])
    for c in reversed(coefs[1:-1]):
        acc = g.node("Mul", [g.node("Add", [acc, g.constant("erf_coef", c)]), u])
    acc = g.node("Add", [acc, g.constant("erf_coef", coefs[0])])
    scale = g.node("Mul", [g.node("Exp", g.node("Neg", z2)), z])
    series = g.node("Mul", [scale, acc])
    return g.node("Mul", [series, g.constant("two_over_sqrt_pi", 2 / np.sqrt(np.pi))])


def _activation(g, x, activation, negative_slope):
    """Append the nodes of one activation function to the graph; return its output.

    onnxruntime implements LeakyRelu, Elu, Softplus and Erf for float32 only;
    float64 graphs compose them from operators it has in double precision.
    (silu too, for older onnxruntimes that rewrite x * Sigmoid(x) into a
    float32-only kernel.)
    """
    double = g.np_dtype == np.float64
    if activation == "identity":
        return x
    if activation == "softplus" and double:
        # max(x, 0) + log(1 + exp(-|x|)), the overflow-free form cymlp trains with
        soft = g.node("Log", g.node("Add", [
            g.constant("one", 1.0), g.node("Exp", g.node("Neg", g.node("Abs", x)))
        ]))
        return g.node("Add", [g.node("Relu", x), soft])
    if activation in _PLAIN_ACTIVATIONS:
        return g.node(_PLAIN_ACTIVATIONS[activation], x)
    if activation == "softmax":
        return g.node("Softmax", x, axis=1)
    if activation == "leaky_relu":
        if not double:
            return g.node("LeakyRelu", x, alpha=float(negative_slope))
        # relu(x) - slope * relu(-x): exactly x or slope * x
        negative = g.node("Mul", [
            g.node("Relu", g.node("Neg", x)), g.constant("slope", negative_slope)
        ])
        return g.node("Sub", [g.node("Relu", x), negative])
    if activation == "elu":
        if not double:
            return g.node("Elu", x, alpha=1.0)
        # relu(x) + exp(min(x, 0)) - 1
        below = g.node("Min", [x, g.constant("zero", 0.0)])
        expm1 = g.node("Sub", [g.node("Exp", below), g.constant("one", 1.0)])
        return g.node("Add", [g.node("Relu", x), expm1])
    if activation == "silu":
        if not double:
            return g.node("Mul", [x, g.node("Sigmoid", x)])
        # x / (1 + exp(-x)): older onnxruntimes fuse x * Sigmoid(x) into a
        # float-only kernel even in a float64 graph, and then cannot run it
        denominator = g.node("Add", [
            g.constant("one", 1.0), g.node("Exp", g.node("Neg", x))
        ])
        return g.node("Div", [x, denominator])
    if activation == "gelu":
        # exact gelu, as cymlp trains it: 0.5 * x * (1 + erf(x / sqrt(2)))
        scaled = g.node("Mul", [x, g.constant("inv_sqrt2", 1 / np.sqrt(2))])
        erf = _erf_double(g, scaled) if double else g.node("Erf", scaled)
        one_plus = g.node("Add", [erf, g.constant("one", 1.0)])
        half_x = g.node("Mul", [x, g.constant("half", 0.5)])
        return g.node("Mul", [half_x, one_plus])
    raise ValueError(
        "cymlp.to_onnx cannot express the activation %r in ONNX." % (activation,)
    )


def _forward(g, x, model):
    """The network's forward pass, from the (already cast) input to the output layer."""
    # the weights as the estimators' own entry points check them
    _, coefs, intercepts = model._fitted_weights()
    # each hidden layer's activation, then the output's
    activations = hidden_activation_names(model.activation, len(coefs) - 1) + (
        model.out_activation_,)
    for coef, intercept, activation in zip(coefs, intercepts, activations):
        product = g.node("MatMul", [x, g.constant("coefficient", coef)])
        x = g.node("Add", [product, g.constant("intercept", intercept[np.newaxis, :])])
        x = _activation(g, x, activation, getattr(model, "negative_slope", 0.01))
    return x


def _start(scope, operator, container):
    """The graph helper and the network input cast to the computing type."""
    if _float_type(operator) is FloatTensorType:
        proto_dtype, np_dtype = onnx_proto.TensorProto.FLOAT, np.float32
    else:
        proto_dtype, np_dtype = onnx_proto.TensorProto.DOUBLE, np.float64
    g = _Graph(scope, container, proto_dtype, np_dtype)
    x = operator.inputs[0].full_name
    if not isinstance(operator.inputs[0].type, (DoubleTensorType, FloatTensorType)):
        x = g.node("Cast", x, to=proto_dtype)
    return g, x


def _convert_classifier(scope, operator, container):
    model = operator.raw_operator
    options = container.get_options(model, dict(zipmap=False, nocl=False))
    g, x = _start(scope, operator, container)
    out = _forward(g, x, model)
    label_name, proba_name = operator.outputs[0].full_name, operator.outputs[1].full_name

    if _is_multilabel(model):
        # independent logistic outputs; predict thresholds each at 0.5
        g.node("Identity", out, proba_name)
        above = g.node("Greater", [out, g.constant("threshold", 0.5)])
        g.node("Cast", above, label_name, to=onnx_proto.TensorProto.INT64)
        return

    if model.n_outputs_ == 1:
        # binary: one logistic output p, probabilities [1 - p, p]
        negative = g.node("Sub", [g.constant("one", 1.0), out])
        g.node("Concat", [negative, out], proba_name, axis=1)
    else:
        g.node("Identity", out, proba_name)

    index = g.node("ArgMax", proba_name, axis=1, keepdims=0)
    if options.get("nocl"):
        g.node("Identity", index, label_name)
        return
    if _label_kind(model.classes_) == "str":
        classes = np.array([str(c) for c in model.classes_])
        name = g.name("classes")
        container.add_initializer(
            name,
            onnx_proto.TensorProto.STRING,
            [len(classes)],
            [c.encode("utf-8") for c in classes],
        )
    else:
        classes = np.asarray(model.classes_).astype(np.int64)
        name = g.constant("classes", classes, proto_dtype=onnx_proto.TensorProto.INT64)
    g.node("Gather", [name, index], label_name, axis=0)


def _convert_regressor(scope, operator, container):
    model = operator.raw_operator
    g, x = _start(scope, operator, container)
    out = _forward(g, x, model)
    g.node("Identity", out, operator.outputs[0].full_name)


update_registered_converter(
    MLPClassifier,
    _CLASSIFIER_ALIAS,
    _classifier_shapes,
    _convert_classifier,
    options={"zipmap": [True, False, "columns"], "nocl": [False, True]},
)
update_registered_converter(
    MLPRegressor, _REGRESSOR_ALIAS, _regressor_shapes, _convert_regressor
)


# ---------------------------------------------------------------- public


def to_onnx(estimator, X_sample, *, target_opset=None, options=None, name=None):
    """Convert a fitted cymlp estimator (or a pipeline holding one) to ONNX.

    Needs the ``onnx`` extra (``pip install 'cymlp[onnx]'``: skl2onnx, onnx,
    and onnxruntime to run the result). The graph computes what ``predict``
    and ``predict_proba`` compute, for every activation cymlp offers.

    Parameters
    ----------
    estimator : MLPClassifier, MLPRegressor or a scikit-learn pipeline
        A fitted estimator. Pipelines and other scikit-learn objects are
        converted by skl2onnx, with cymlp's estimators registered in it.
    X_sample : array-like of shape (n_samples, n_features)
        A few rows of input. Their dtype sets the input type of the graph and
        the precision it computes in: float32 data gives a float32 graph,
        float64 data a float64 graph. Sparse rows are made dense (the graph
        takes dense input).
    target_opset : int, default=None
        The ONNX opset to write; None for the newest skl2onnx supports.
    options : dict, default=None
        skl2onnx conversion options. By default cymlp's classifiers output
        the probabilities as a tensor (``{"zipmap": False}``); pass
        ``{cymlp.MLPClassifier: {"zipmap": True}}`` for skl2onnx's list of
        dictionaries, or ``{"nocl": True}`` for class indices as labels.
    name : str, default=None
        The name of the ONNX graph.

    Returns
    -------
    onnx_model : onnx.ModelProto
        For a classifier the outputs are ``label`` (shape (n_samples,), or
        (n_samples, n_labels) for multilabel targets) and ``probabilities``
        (n_samples, n_classes); for a regressor ``variable``
        (n_samples, n_outputs), also with a single output.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from cymlp import MLPClassifier, to_onnx
    >>> X, y = load_iris(return_X_y=True)
    >>> X = X.astype(np.float32)
    >>> clf = MLPClassifier(max_iter=300, random_state=0).fit(X, y)
    >>> model = to_onnx(clf, X[:1])
    >>> import onnxruntime as ort  # doctest: +SKIP
    >>> sess = ort.InferenceSession(model.SerializeToString())  # doctest: +SKIP
    >>> labels, proba = sess.run(None, {"X": X})  # doctest: +SKIP
    """
    if isinstance(estimator, (MLPClassifier, MLPRegressor)):
        check_is_fitted(estimator)
        estimator._fitted_weights()  # edited or stale attributes fail here
        if sparse.issparse(X_sample):
            X_sample = X_sample.toarray()
        X_sample = np.asarray(X_sample)
        if X_sample.ndim != 2 or X_sample.shape[1] != estimator.n_features_in_:
            raise ValueError(
                "X_sample must be a 2-D array with %d columns, the number of "
                "features seen in fit; got shape %r."
                % (estimator.n_features_in_, X_sample.shape)
            )
        if estimator.n_features_in_ == 0:
            raise ValueError("Cannot export a model with no input features.")
    all_options = {MLPClassifier: {"zipmap": False}}
    if options:
        for key, value in options.items():
            if isinstance(key, str):
                # a plain {"zipmap": False}: for cymlp's classifiers
                all_options[MLPClassifier] = {**all_options[MLPClassifier], key: value}
            else:
                all_options[key] = value
    return _skl2onnx_to_onnx(
        estimator,
        X_sample[:1] if hasattr(X_sample, "shape") else X_sample,
        name=name,
        target_opset=target_opset,
        options=all_options,
    )
