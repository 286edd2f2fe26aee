"""The list of activations is defined once, in the engine, and everything
else follows it: the estimators' parameter constraints, their docstrings, the
user guide, the ONNX converter; and each activation computed through a numpy
or scipy ufunc really found that ufunc's inner loop (a silent fall-back to
libm would break bit parity with scikit-learn unnoticed)."""

import pathlib
import re

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

import cymlp
from cymlp import _engine
from cymlp._engine import HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning")

DOCS = pathlib.Path(__file__).parents[1] / "docs"
SKLEARN_HIDDEN = {"identity", "logistic", "tanh", "relu"}


def test_every_ufunc_loop_was_found():
    found = _engine._ufunc_loops_found()
    # tanh, logistic, exp and softmax, in both precisions
    assert len(found) == 8
    assert all(found.values()), {k: v for k, v in found.items() if not v}


def test_activation_codes_are_distinct():
    codes = list(HIDDEN_ACTIVATIONS.values()) + [
        c for n, c in OUTPUT_ACTIVATIONS.items() if n not in HIDDEN_ACTIVATIONS]
    assert len(codes) == len(set(codes))
    for name in set(HIDDEN_ACTIVATIONS) & set(OUTPUT_ACTIVATIONS):
        assert HIDDEN_ACTIVATIONS[name] == OUTPUT_ACTIVATIONS[name]


@pytest.mark.parametrize("cls", [cymlp.MLPClassifier, cymlp.MLPRegressor])
def test_parameter_constraints_follow_the_engine(cls):
    X, y = np.random.RandomState(0).normal(size=(20, 3)), np.arange(20) % 2
    for name in HIDDEN_ACTIVATIONS:
        cls(activation=name, max_iter=1, hidden_layer_sizes=(3,)).fit(X, y)
    for name in set(OUTPUT_ACTIVATIONS) - set(HIDDEN_ACTIVATIONS):
        with pytest.raises(InvalidParameterError):
            cls(activation=name, max_iter=1).fit(X, y)


@pytest.mark.parametrize("cls", [cymlp.MLPClassifier, cymlp.MLPRegressor])
def test_docstrings_list_every_activation(cls):
    doc = cls.__doc__
    section = doc[doc.index("activation :"):doc.index("solver :")]
    options = re.search(r"\{([^}]*)\}", section.replace("\\\n", "")).group(1)
    listed = {o.strip().strip("'\"") for o in options.split(",")}
    assert listed == set(HIDDEN_ACTIVATIONS)
    if cls is cymlp.MLPRegressor:
        return  # it refers to MLPClassifier's description
    for name in set(HIDDEN_ACTIVATIONS) - SKLEARN_HIDDEN:
        assert "'%s'" % name in section.split("default=")[1], name


def test_user_guide_lists_every_activation_beyond_sklearn():
    text = (DOCS / "user_guide" / "extras.rst").read_text()
    table = text[text.index("More activations"):text.index("Dropout")]
    listed = set(re.findall(r'``"([a-z_]+)"``', table))
    assert listed == set(HIDDEN_ACTIVATIONS) - SKLEARN_HIDDEN


def test_onnx_converter_covers_every_activation():
    # the converter's dispatch, driven by a graph that only records: every
    # activation the engine has must be expressible (no "cannot express")
    pytest.importorskip("onnx")
    from cymlp import _onnx

    for name in sorted(set(HIDDEN_ACTIVATIONS) | set(OUTPUT_ACTIVATIONS)):
        for np_dtype in (np.float32, np.float64):
            _onnx._activation(_RecordingGraph(np_dtype), "x", name, 0.01)


class _RecordingGraph:
    def __init__(self, np_dtype):
        self.np_dtype = np_dtype

    def node(self, op, inputs, **kwargs):
        return op

    def constant(self, name, value):
        return name
