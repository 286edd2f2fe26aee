# CSR input: the first layer's products with a sparse minibatch, in the
# order of scipy's own products (so the bits match scikit-learn's), and the
# check that a CSR structure points only inside its arrays.
from cython cimport floating


cdef struct SparseRows:
    # A minibatch of a CSR matrix: rows idx[0..rows) or start..start+rows.
    const Py_ssize_t* indptr
    const Py_ssize_t* indices
    const Py_ssize_t* idx
    Py_ssize_t start


ctypedef fused stored:
    float
    double


cdef inline Py_ssize_t sparse_row(const SparseRows* sp, Py_ssize_t r) noexcept nogil:
    return sp.idx[r] if sp.idx != NULL else sp.start + r


cdef inline void csr_times_dense(
    const stored* data, const SparseRows* sp, Py_ssize_t rows,
    const floating* W, Py_ssize_t n_out,   # IN  W: n_in x n_out
    floating* out,                          # OUT rows x n_out
) noexcept nogil:
    """out = X[rows] @ W for CSR X, accumulating the nonzeros of a row in order
    (the order of scipy's csr @ dense). The values may be stored wider than
    the product is computed (double values of float32 X, for a mixed call)."""
    cdef Py_ssize_t r, p, k, i
    cdef floating v
    cdef floating* o
    cdef const floating* w
    for r in range(rows):
        o = out + r * n_out
        for k in range(n_out):
            o[k] = 0
        i = sparse_row(sp, r)
        for p in range(sp.indptr[i], sp.indptr[i + 1]):
            v = <floating> data[p]
            w = W + sp.indices[p] * n_out
            for k in range(n_out):
                o[k] = o[k] + v * w[k]


cdef inline void csr_transpose_times_dense(
    const floating* data, const SparseRows* sp, Py_ssize_t rows,
    const floating* D, Py_ssize_t n_out,   # IN  rows x n_out
    floating* G, Py_ssize_t n_in,          # OUT n_in x n_out
) noexcept nogil:
    """G = X[rows]^T @ D for CSR X, row after row (the order of scipy's csc @ dense)."""
    cdef Py_ssize_t r, p, k, i
    cdef floating v
    cdef floating* g
    cdef const floating* d
    for k in range(n_in * n_out):
        G[k] = 0
    for r in range(rows):
        d = D + r * n_out
        i = sparse_row(sp, r)
        for p in range(sp.indptr[i], sp.indptr[i + 1]):
            v = data[p]
            g = G + sp.indices[p] * n_out
            for k in range(n_out):
                g[k] = g[k] + v * d[k]


cdef inline bint csr_structure_ok(const Py_ssize_t* indptr, const Py_ssize_t* indices,
                                  Py_ssize_t n_rows, Py_ssize_t nnz,
                                  Py_ssize_t n_cols) noexcept nogil:
    """Whether a CSR structure only points inside its arrays: indptr starts at
    0, never decreases and ends within nnz; every column index is in range."""
    cdef Py_ssize_t i, p
    if indptr[0] != 0 or indptr[n_rows] > nnz:
        return False
    for i in range(n_rows):
        if indptr[i + 1] < indptr[i]:
            return False
    for p in range(indptr[n_rows]):
        if indices[p] < 0 or indices[p] >= n_cols:
            return False
    return True
