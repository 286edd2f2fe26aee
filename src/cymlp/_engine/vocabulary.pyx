"""The engine's vocabulary, as Python sees it: one row per activation, loss
and optimizer, read from the C table (``csrc/vocabulary.h``) that the kernels
dispatch on. The estimators' parameter constraints, the ONNX converter and
the documentation's tests take their names from here.

Examples
--------
>>> from cymlp._engine.vocabulary import ACTIVATION_ROWS, HIDDEN_ACTIVATIONS
>>> HIDDEN_ACTIVATIONS["relu"] == ACTIVATION_ROWS[HIDDEN_ACTIVATIONS["relu"]].code
True
>>> [row.name for row in ACTIVATION_ROWS if row.needs_pre]
['gelu', 'silu']
"""
from typing import NamedTuple


class Activation(NamedTuple):
    """One activation: where it may stand and what its kernels need."""
    name: str
    code: int
    hidden: bool        # allowed in hidden layers
    output: bool        # allowed as an output activation
    needs_pre: bool     # its derivative needs the pre-activations z
    takes_slope: bool   # reads negative_slope
    ufunc: bool         # computed by numpy's / scipy's ufunc loop (as scikit-learn)
    sklearn: bool       # scikit-learn has it


class Loss(NamedTuple):
    """One loss: its output activation and how it is reported."""
    name: str
    code: int
    link: str                  # the output activation its delta assumes
    mean_over_outputs: bool    # reported as a mean over the outputs
    halved: bool               # reported halved (scikit-learn's squared error)
    residual: bool             # a function of y - p (the robust losses)
    param_range: tuple | None  # (low, high), open: the loss_param it takes, or None
    sklearn: bool


class Optimizer(NamedTuple):
    """One solver."""
    name: str
    code: int
    stochastic: bool      # minibatch steps inside the engine's epoch
    second_moment: bool   # keeps a second moment (adam)
    full_batch: bool      # scipy's minimiser over the engine's loss and gradient
    sklearn: bool


cdef _activation(const cymlp_activation_row* r):
    cdef unsigned t = r.traits
    return Activation(
        r.name.decode(), r.code, bool(t & CYMLP_HIDDEN), bool(t & CYMLP_OUTPUT),
        bool(t & CYMLP_NEEDS_PRE), bool(t & CYMLP_TAKES_SLOPE), bool(t & CYMLP_UFUNC),
        bool(t & CYMLP_SKLEARN))


cdef _loss(const cymlp_loss_row* r, dict activation_names):
    cdef unsigned t = r.traits
    return Loss(
        r.name.decode(), r.code, activation_names[r.link], bool(t & CYMLP_MEAN_OVER_OUTPUTS),
        bool(t & CYMLP_HALVED), bool(t & CYMLP_RESIDUAL),
        (r.param_low, r.param_high) if t & CYMLP_TAKES_PARAM else None,
        bool(t & CYMLP_LOSS_SKLEARN))


cdef _optimizer(const cymlp_optimizer_row* r):
    cdef unsigned t = r.traits
    return Optimizer(
        r.name.decode(), r.code, bool(t & CYMLP_STOCHASTIC), bool(t & CYMLP_SECOND_MOMENT),
        bool(t & CYMLP_FULL_BATCH), bool(t & CYMLP_SOLVER_SKLEARN))


ACTIVATION_ROWS = tuple([_activation(&cymlp_activation_rows[i])
                         for i in range(CYMLP_N_ACTIVATIONS)])
LOSS_ROWS = tuple([_loss(&cymlp_loss_rows[i], {r.code: r.name for r in ACTIVATION_ROWS})
                   for i in range(CYMLP_N_LOSSES)])
OPTIMIZER_ROWS = tuple([_optimizer(&cymlp_optimizer_rows[i])
                        for i in range(CYMLP_N_OPTIMIZERS)])

# name -> code views, in the rows' order
HIDDEN_ACTIVATIONS = {r.name: r.code for r in ACTIVATION_ROWS if r.hidden}
OUTPUT_ACTIVATIONS = {r.name: r.code for r in ACTIVATION_ROWS if r.output}
ACTIVATIONS = {r.name: r.code for r in ACTIVATION_ROWS}
LOSSES = {r.name: r.code for r in LOSS_ROWS}
SOLVERS = {r.name: r.code for r in OPTIMIZER_ROWS}
STOCHASTIC_SOLVERS = {r.name: r.code for r in OPTIMIZER_ROWS if r.stochastic}
