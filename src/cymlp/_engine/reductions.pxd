# Passes that reduce an array: the bias gradient's column sums and the
# finiteness check of predict's input and of a fit's state.
from cython cimport floating

cdef extern from "vector_loops.h" nogil:
    void cymlp_column_sums_f(const float* a, float* out, Py_ssize_t rows, Py_ssize_t cols,
                             Py_ssize_t ld)
    void cymlp_column_sums_d(const double* a, double* out, Py_ssize_t rows, Py_ssize_t cols,
                             Py_ssize_t ld)
    int cymlp_all_finite_f(const float* x, Py_ssize_t n)
    int cymlp_all_finite_d(const double* x, Py_ssize_t n)


cdef inline void column_sums(
    const floating* a,         # IN  rows x cols, rows ld apart
    floating* out,             # OUT cols
    Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t ld,
) noexcept nogil:
    """out = a.sum(axis=0), accumulated row after row as numpy does (ld > cols:
    a block of columns of a wider matrix, for a split among threads)."""
    if floating is float:
        cymlp_column_sums_f(a, out, rows, cols, ld)
    else:
        cymlp_column_sums_d(a, out, rows, cols, ld)


cdef inline bint all_finite(const floating* x, Py_ssize_t n) noexcept nogil:
    """True if none of the n values is NaN or infinite."""
    if floating is float:
        return cymlp_all_finite_f(x, n)
    else:
        return cymlp_all_finite_d(x, n)
