"""Activations: where numpy's (and scipy's) own ufunc loops are found.

The kernels themselves are inline (activations.pxd); this module finds, for
the activations scikit-learn computes through a ufunc, the very inner loop
numpy would call, so that cymlp rounds exactly as scikit-learn does.
"""
import warnings

import numpy as np
import scipy.special

cimport numpy as cnp
cnp.import_array()

from .vocabulary cimport TANH, LOGISTIC, EXP, SOFTMAX
from .vocabulary import ACTIVATION_ROWS

# The ufunc whose inner loops implement each activation, exactly as
# scikit-learn applies it (sklearn.neural_network._base): the rows of the
# vocabulary with the `ufunc` trait (checked by tests/test_vocabulary.py).
ACTIVATION_UFUNCS = {
    TANH: np.tanh, LOGISTIC: scipy.special.expit, EXP: np.exp, SOFTMAX: np.exp,
}


cdef UnaryLoop resolve_loop(int act, char typecode):
    """The inner loop of the ufunc for `act` taking and giving dtype `typecode`.

    numpy picks the first matching loop of a ufunc's type list; so do we.
    fn is NULL when there is none (the kernels then use libm).
    """
    cdef UnaryLoop found
    cdef cnp.ufunc uf
    cdef int i
    found.fn = NULL
    found.data = NULL
    func = ACTIVATION_UFUNCS.get(act)
    if func is None or not isinstance(func, np.ufunc):
        return found
    uf = func
    if uf.nin != 1 or uf.nout != 1:
        return found
    for i in range(uf.ntypes):
        if uf.types[2 * i] == typecode and uf.types[2 * i + 1] == typecode:
            # through void*: numpy declares its loops without nogil, but they
            # take no Python objects and never touch the GIL
            found.fn = <ufunc_loop> <void*> uf.functions[i]
            found.data = uf.data[i]
            break
    return found


def ufunc_loops_found():
    """{(activation, dtype name): bool}: whether numpy's / scipy's own inner
    loop was found for each activation computed through a ufunc.

    A missing one would fall back to libm and break parity without a word:
    the tests assert that every one is found, and importing the engine warns.
    """
    found = {}
    names = {row.code: row.name for row in ACTIVATION_ROWS}
    for act in ACTIVATION_UFUNCS:
        for typecode, dtype_name in ((cnp.NPY_FLOAT, "float32"), (cnp.NPY_DOUBLE, "float64")):
            found[names[act], dtype_name] = resolve_loop(act, typecode).fn != NULL
    return found


def _warn_if_ufunc_loops_missing():
    missing = sorted("%s (%s)" % key for key, ok in ufunc_loops_found().items() if not ok)
    if missing:
        warnings.warn(
            "cymlp: numpy's / scipy's inner loops were not found for %s; those "
            "activations fall back to libm and may differ from scikit-learn in "
            "the last bits." % ", ".join(missing), RuntimeWarning)


_warn_if_ufunc_loops_missing()
