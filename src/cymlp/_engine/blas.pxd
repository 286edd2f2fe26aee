# Row-major BLAS wrappers over the engine's private OpenBLAS (see csrc/blas.h:
# why private, and single-threaded), one function for both precisions.
#
# BLAS is column-major. A row-major matrix M (rows x cols, leading dimension
# ld) is, to BLAS, the column-major matrix M^T with the same ld. So the
# row-major product C = op(A) op(B) is computed as the column-major product
# C^T = op(B)^T op(A)^T: swap the operands and the dimensions m and n.
from cython cimport floating


cdef extern from "blas.h" nogil:
    ctypedef void (*cymlp_sgemm_fn)(const char*, const char*, const int*, const int*,
                                    const int*, const float*, const float*, const int*,
                                    const float*, const int*, const float*, float*,
                                    const int*) noexcept nogil
    ctypedef void (*cymlp_dgemm_fn)(const char*, const char*, const int*, const int*,
                                    const int*, const double*, const double*, const int*,
                                    const double*, const int*, const double*, double*,
                                    const int*) noexcept nogil
    ctypedef float (*cymlp_sdot_fn)(const int*, const float*, const int*, const float*,
                                    const int*) noexcept nogil
    ctypedef double (*cymlp_ddot_fn)(const int*, const double*, const int*, const double*,
                                     const int*) noexcept nogil
    ctypedef int (*cymlp_get_threads_fn)() noexcept nogil
    ctypedef void (*cymlp_set_threads_fn)(int) noexcept nogil
    cymlp_sgemm_fn cymlp_sgemm
    cymlp_dgemm_fn cymlp_dgemm
    cymlp_sdot_fn cymlp_sdot
    cymlp_ddot_fn cymlp_ddot
    cymlp_get_threads_fn cymlp_blas_get_threads
    cymlp_set_threads_fn cymlp_blas_set_threads
    void cymlp_blas_hold_one_thread()


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
        cymlp_sgemm(&tb, &ta, &n, &m, &k, &alpha, b, &ldb, a, &lda, &beta, c, &ldc)
    else:
        cymlp_dgemm(&tb, &ta, &n, &m, &k, &alpha, b, &ldb, a, &lda, &beta, c, &ldc)


cdef inline double dot(int n, const floating* x, const floating* y) noexcept nogil:
    """x . y, both contiguous."""
    cdef int one = 1
    if floating is float:
        return cymlp_sdot(&n, x, &one, y, &one)
    else:
        return cymlp_ddot(&n, x, &one, y, &one)
