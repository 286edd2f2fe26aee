"""The vocabulary is defined once, in the engine (csrc/vocabulary.h: one row
per activation, loss and optimizer), and everything else follows it: the
estimators' parameter constraints, their docstrings, the user guide, the ONNX
converter, the kernels and their numpy references; and each activation
computed through a numpy or scipy ufunc really found that ufunc's inner loop
(a silent fall-back to libm would break bit parity with scikit-learn
unnoticed). docs/developer/vocabulary.rst lists the places a new row needs."""

import pathlib
import re

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

import _kernel_reference as ref
import cymlp
from cymlp._engine import (
    ACTIVATION_ROWS, HIDDEN_ACTIVATIONS, LOSS_ROWS, LOSSES, OPTIMIZER_ROWS, OUTPUT_ACTIVATIONS,
    SOLVERS, STOCHASTIC_SOLVERS, _testing,
)

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning")

DOCS = pathlib.Path(__file__).parents[1] / "docs"
SKLEARN_HIDDEN = {"identity", "logistic", "tanh", "relu"}


def test_every_ufunc_loop_was_found():
    found = _testing._ufunc_loops_found()
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


# ---------------------------------------------------------------------------
# The vocabulary (csrc/vocabulary.h): one row per activation, loss and
# optimizer, and everything else follows it
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("rows", [ACTIVATION_ROWS, LOSS_ROWS, OPTIMIZER_ROWS],
                         ids=["activations", "losses", "optimizers"])
def test_codes_are_the_rows_places(rows):
    # the C trait lookups index the table by code
    assert [row.code for row in rows] == list(range(len(rows)))
    assert len({row.name for row in rows}) == len(rows)


def test_activation_rows_agree_with_scikit_learn():
    # scikit-learn's own table of activations (a private module: the list
    # has no public home) is the reference for the `sklearn` trait
    from sklearn.neural_network._base import ACTIVATIONS as SK_ACTIVATIONS

    ours = {row.name for row in ACTIVATION_ROWS if row.sklearn}
    assert ours == set(SK_ACTIVATIONS)
    assert {row.name for row in ACTIVATION_ROWS if row.hidden and row.sklearn} == SKLEARN_HIDDEN


def test_every_activation_row_has_a_reference():
    # tests/_kernel_reference.py computes each activation in numpy; the
    # kernel tests (test_kernels.py) compare every row's kernel with it
    assert set(ref.SKLEARN_HIDDEN + ref.EXTRA_HIDDEN) == set(HIDDEN_ACTIVATIONS)
    assert set(ref.OUTPUTS) | {"softmax", "exp"} >= set(OUTPUT_ACTIVATIONS)
    z = np.linspace(-3, 3, 12).reshape(3, 4)
    for row in ACTIVATION_ROWS:
        got = z.copy()
        _testing._kernel_activation(row.name, got, np.zeros(4))
        want = ref.activation(row.name, z)
        np.testing.assert_allclose(got, np.asarray(want, dtype=float), rtol=1e-12, atol=1e-300,
                                   err_msg=row.name)


def test_ufunc_trait_is_the_ufunc_table():
    from cymlp._engine import activations

    names = {row.code: row.name for row in ACTIVATION_ROWS}
    assert {names[c] for c in activations.ACTIVATION_UFUNCS} == {
        row.name for row in ACTIVATION_ROWS if row.ufunc}


@pytest.mark.parametrize("row", LOSS_ROWS, ids=lambda r: r.name)
def test_every_loss_row_has_a_kernel_and_a_reference(row, global_random_seed):
    rng = np.random.RandomState(global_random_seed)
    n, k = 7, 3
    if row.link == "softmax":
        out = rng.dirichlet(np.ones(k), size=n)
        y = np.eye(k)[rng.randint(0, k, n)]
    elif row.link == "logistic":
        out = rng.uniform(0.01, 0.99, size=(n, k))
        y = rng.randint(0, 2, size=(n, k)).astype(float)
    elif row.link == "exp":
        out = rng.uniform(0.1, 3, size=(n, k))
        y = rng.poisson(1.0, size=(n, k)).astype(float)
    else:
        out = rng.normal(size=(n, k))
        y = rng.normal(size=(n, k))
    param = None if row.param_range is None else min(0.7, (row.param_range[0] + row.param_range[1]) / 2)
    sw = rng.uniform(0.5, 2, size=n)
    delta = np.empty_like(out)
    total = _testing._kernel_loss(row.name, out, y, sw, delta,
                                  loss_param=param if param is not None else 0.0)
    want = float((sw * ref.row_losses(row.name, out, y, np.float64, param)).sum())
    assert total == pytest.approx(want, rel=1e-12)


def test_every_stochastic_optimizer_row_has_a_reference_step():
    # test_kernels.py compares each step with numpy's, named by these rows
    import test_kernels

    assert set(test_kernels.OPTIMIZER_KINDS) == set(STOCHASTIC_SOLVERS)
    assert set(SOLVERS) == set(STOCHASTIC_SOLVERS) | {
        row.name for row in OPTIMIZER_ROWS if row.full_batch}
    # and a Python class that keeps its state between epochs
    from cymlp import _optimizers

    assert set(_optimizers.OPTIMIZERS) == set(STOCHASTIC_SOLVERS)
    for name, cls in _optimizers.OPTIMIZERS.items():
        row = OPTIMIZER_ROWS[SOLVERS[name]]
        assert cls.kind == name
        assert len(cls.MOMENTS) == (2 if row.second_moment else 1), name


def test_solver_and_loss_constraints_follow_the_vocabulary():
    solver = cymlp.MLPClassifier._parameter_constraints["solver"][0]
    assert solver.options == set(SOLVERS)
    # the regressor's losses: every loss whose link a regressor's output has
    loss = cymlp.MLPRegressor._parameter_constraints["loss"][0]
    assert loss.options == {row.name for row in LOSS_ROWS if row.link in ("identity", "exp")}
    # each loss parameter's range is the row's
    for name, param in [("huber", "huber_delta"), ("quantile", "quantile")]:
        (interval,) = cymlp.MLPRegressor._parameter_constraints[param]
        low, high = LOSS_ROWS[LOSSES[name]].param_range
        assert interval.left == low and (interval.right or np.inf) == high, name


def test_docs_list_every_regression_loss():
    doc = cymlp.MLPRegressor.__doc__
    section = doc[doc.index("loss :"):].replace("\\\n", "")
    options = re.search(r"\{([^}]*)\}", section).group(1)
    listed = {o.strip().strip("'\"") for o in options.split(",")}
    assert listed == {row.name for row in LOSS_ROWS if row.link in ("identity", "exp")}
    text = (DOCS / "user_guide" / "extras.rst").read_text()
    for row in LOSS_ROWS:
        if not row.sklearn:
            assert '``"%s"``' % row.name in text, row.name


def test_a_loss_only_trains_its_own_output_activation():
    # the output delta is the loss's gradient for its link alone: any other
    # pairing is refused, never trained with another loss's delta
    from cymlp._engine import Network

    for row in LOSS_ROWS:
        for act in OUTPUT_ACTIVATIONS:
            param = None if row.param_range is None else 0.5
            if act == row.link:
                Network([2, 1], "relu", act, row.name, loss_param=param)
            else:
                with pytest.raises(ValueError, match="needs the"):
                    Network([2, 1], "relu", act, row.name, loss_param=param)


def test_unknown_names_are_refused():
    from cymlp._engine import Network, Trainer

    with pytest.raises(ValueError, match="unknown hidden activation"):
        Network([2, 1], "swish", "identity", "squared_error")
    with pytest.raises(ValueError, match="unknown loss"):
        Network([2, 1], "relu", "identity", "hinge")
    net = Network([2, 1], "relu", "identity", "squared_error")
    with pytest.raises(ValueError, match="unknown optimizer"):
        Trainer(net, np.float64, 4, optimizer=dict(
            kind="lbfgs", learning_rate_init=0.1, momentum=0.9, nesterovs_momentum=True,
            beta_1=0.9, beta_2=0.999, epsilon=1e-8, t=0, state1=np.zeros(net.n_params)))


def _repo_files(name):
    root = DOCS.parent
    if "/" in name:
        hits = [p for p in root.rglob(name.split("/")[-1]) if p.as_posix().endswith(name)]
    else:
        hits = list(root.rglob(name))
    return [p for p in hits if not {"build", ".venv", "_build", "node_modules"} & set(p.parts)]


@pytest.mark.parametrize("section", ["Adding an activation", "Adding a loss",
                                     "Adding an optimizer"])
def test_developer_guide_places_exist(section):
    """Every file the developer guide's lists name exists, and every code name
    they mention is in the sources: a rename that leaves the list stale fails."""
    text = (DOCS / "developer.rst").read_text()
    start = text.index(section)
    end = text.find("\nAdding", start + 1)
    body = text[start:end if end > 0 else text.index("Bits unchanged")]
    tokens = set(re.findall(r"``([^`]+)``", body))
    sources = "".join(p.read_text() for ext in ("pyx", "pxd", "pxi", "h", "py")
                      for p in (DOCS.parent / "src").rglob("*." + ext))
    sources += "".join(p.read_text() for p in (DOCS.parent / "tests").glob("*.py"))
    checked = 0
    for token in tokens:
        if re.fullmatch(r"[\w/.]+\.(h|pxd|pyx|pxi|py|rst)", token):
            assert _repo_files(token), f"{section}: no file {token}"
            checked += 1
        elif re.fullmatch(r"[A-Za-z_][\w.]*", token):
            assert token.split(".")[-1] in sources, f"{section}: {token} is nowhere in the code"
            checked += 1
    assert checked >= 8
