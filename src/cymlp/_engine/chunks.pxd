# How each pass of an engine call is cut into chunks: a function of the
# shapes alone, never of the thread count, so that the bits are the same on
# any number of threads (which thread computes a chunk never changes what
# the chunk computes).
from .layout cimport Net

# Chunk sizes, measured on the shapes of the benchmarks (see
# benchmarks/RESULTS.md): below them the cost of waking a thread and of
# packing a BLAS operand once more per chunk outweighs the gain.
cdef enum:
    GEMM_GRAIN = 4000000      # flops per chunk of a product, at least
    GEMM_MIN_ROWS = 32        # output rows (or columns) per chunk, at least
    PASS_GRAIN = 16384        # values per chunk of an elementwise pass, at least
    MAX_CHUNKS = 8            # enough for 8 threads; more only repacks operands


cdef inline Py_ssize_t n_chunks(Py_ssize_t extent, double work, double grain,
                                Py_ssize_t min_extent) noexcept nogil:
    """Into how many equal chunks to split `extent` units holding `work` in
    all: about `grain` work each, at least `min_extent` units each, at most
    MAX_CHUNKS, and a power of two. A function of the shape only, so that the
    chunks, and with them the bits, are the same whatever the number of
    threads.

    Why a power of two: 2, 4 or 8 threads then share the chunks evenly, where
    7 chunks on 2 threads left one thread a whole chunk of the critical path;
    and every chunk of a product repacks its shared operand (the forward
    product's weights), so fewer chunks cost less: 200 x 784 x 100 on one
    thread took 1.45x one call's time as 7 chunks in float32, 1.25x as 4
    (1.14x / 1.12x in float64). MNIST-shaped epochs on 2 threads: 236 -> 177
    ms (float32), 400 -> 345 ms (float64)."""
    cdef Py_ssize_t c = <Py_ssize_t> (work / grain), p = 1
    c = min(c, extent // min_extent, <Py_ssize_t> MAX_CHUNKS)
    while p * 2 <= c:
        p *= 2
    return p


cdef inline Py_ssize_t chunk_at(Py_ssize_t extent, Py_ssize_t n, Py_ssize_t c) noexcept nogil:
    """Where chunk c of n equal chunks of extent starts (c == n: the end)."""
    return extent * c // n


cdef inline Py_ssize_t row_chunks(const Net* net, Py_ssize_t rows) noexcept nogil:
    """The row pass's number of chunks for `rows` rows, sized by the rows'
    forward products (a function of the shapes, as every chunking here)."""
    cdef Py_ssize_t i
    cdef double flops = 0.0
    for i in range(net.n_layers):
        flops += 2.0 * rows * net.units[i] * net.units[i + 1]
    return n_chunks(rows, flops, GEMM_GRAIN, GEMM_MIN_ROWS)



cdef inline Py_ssize_t product_chunks(const Net* net, Py_ssize_t i, Py_ssize_t rows,
                                      bint sparse) noexcept nogil:
    """Chunks of layer i's weight gradient, split over its fan_in (never over
    the rows it sums); the CSR product of the first layer is one."""
    if i == 0 and sparse:
        return 1
    return n_chunks(net.units[i], 2.0 * rows * net.units[i] * net.units[i + 1],
                    GEMM_GRAIN, GEMM_MIN_ROWS)


cdef inline Py_ssize_t sum_chunks(const Net* net, Py_ssize_t i, Py_ssize_t rows) noexcept nogil:
    """Chunks of layer i's bias gradient, split over its columns (at least 8,
    a cache line of doubles, each): each column still sums its rows in order."""
    return n_chunks(net.units[i + 1], <double> rows * net.units[i + 1], PASS_GRAIN, 8)


cdef inline Py_ssize_t call_chunks(const Net* net, Py_ssize_t rows, bint gradients, bint sparse,
                                   bint step) noexcept nogil:
    """The most chunks of any pass of a call on minibatches of `rows` rows
    (with the gradient pass; with the optimizer step): a team larger than
    that would only wait. 1 means a serial call. (The bias gradients' sums
    share the gradient pass but are not counted: on their own they are too
    small to be worth a second thread.)"""
    cdef Py_ssize_t i, c = row_chunks(net, rows)
    if gradients:
        for i in range(net.n_layers):
            c = max(c, product_chunks(net, i, rows, sparse))
    if step:
        c = max(c, n_chunks(net.n_params, <double> net.n_params, PASS_GRAIN, 1))
    return c

