# Row-major BLAS wrappers over scipy.linalg.cython_blas, one function for
# both precisions.
#
# BLAS is column-major. A row-major matrix M (rows x cols, leading dimension
# ld) is, to BLAS, the column-major matrix M^T with the same ld. So the
# row-major product C = op(A) op(B) is computed as the column-major product
# C^T = op(B)^T op(A)^T: swap the operands and the dimensions m and n.
from cython cimport floating
from scipy.linalg.cython_blas cimport sgemm, dgemm, sdot, ddot


cdef inline void gemm(
    bint trans_a, bint trans_b,
    int m, int n, int k,
    floating alpha,
    const floating* a, int lda,      # IN  op(A): m x k
    const floating* b, int ldb,      # IN  op(B): k x n
    floating beta,
    floating* c, int ldc,            # OUT C: m x n
) noexcept nogil:
    """C = alpha * op(A) @ op(B) + beta * C, all row-major."""
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    if floating is float:
        sgemm(&tb, &ta, &n, &m, &k, &alpha, <float*> b, &ldb,
              <float*> a, &lda, &beta, c, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &alpha, <double*> b, &ldb,
              <double*> a, &lda, &beta, c, &ldc)


cdef inline double dot(int n, const floating* x, const floating* y) noexcept nogil:
    """x . y, both contiguous."""
    cdef int one = 1
    if floating is float:
        return sdot(&n, <float*> x, &one, <float*> y, &one)
    else:
        return ddot(&n, <double*> x, &one, <double*> y, &one)
