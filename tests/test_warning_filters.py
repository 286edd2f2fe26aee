"""Silencing cymlp's warnings the way the documentation says.

scikit-learn's examples silence its ConvergenceWarning with
``warnings.filterwarnings("ignore", category=ConvergenceWarning,
module="sklearn")``. cymlp raises the same warning class, but from its own
modules, so the documentation (README, docs/user_guide/drop_in.rst) tells
users to widen the filter to ``module="sklearn|cymlp"``. These tests hold
cymlp to that advice, with scikit-learn's own estimator as the reference: the
documented filter silences both.
"""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor

import cymlp

DOCUMENTED_FILTER = "sklearn|cymlp"

# pairs of (cymlp class, scikit-learn class), each stopped before converging
CASES = [
    pytest.param(cymlp.MLPClassifier, SkMLPClassifier, "adam", id="classifier-adam"),
    pytest.param(cymlp.MLPClassifier, SkMLPClassifier, "lbfgs", id="classifier-lbfgs"),
    pytest.param(cymlp.MLPRegressor, SkMLPRegressor, "sgd", id="regressor-sgd"),
    pytest.param(cymlp.MLPRegressor, SkMLPRegressor, "lbfgs", id="regressor-lbfgs"),
]


def _convergence_warnings(cls, solver, module=None):
    """The ConvergenceWarnings of a 3-iteration fit, under an optional filter."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if module is not None:
            warnings.filterwarnings("ignore", category=ConvergenceWarning, module=module)
        cls(hidden_layer_sizes=(4,), solver=solver, max_iter=3, random_state=0).fit(X, y)
    return [w for w in caught if issubclass(w.category, ConvergenceWarning)]


@pytest.mark.parametrize("ours, theirs, solver", CASES)
def test_documented_filter_silences_cymlp_as_sklearn(ours, theirs, solver):
    # both warn without a filter: the test below is not vacuous
    assert _convergence_warnings(theirs, solver)
    assert _convergence_warnings(ours, solver)
    assert _convergence_warnings(theirs, solver, DOCUMENTED_FILTER) == []
    assert _convergence_warnings(ours, solver, DOCUMENTED_FILTER) == []


@pytest.mark.parametrize("ours, theirs, solver", CASES)
def test_warnings_name_a_cymlp_module(ours, theirs, solver):
    # Why the filter needs "cymlp": the warning comes from cymlp's code, and
    # scikit-learn's examples' module="sklearn" lets it through.
    assert _convergence_warnings(theirs, solver, "sklearn") == []
    assert _convergence_warnings(ours, solver, "sklearn")
    assert _convergence_warnings(ours, solver, "cymlp") == []
