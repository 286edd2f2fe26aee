# What an engine call needs before its threads start (csrc/resources.h):
# the threads themselves, OpenBLAS's work buffers, and a failure record that
# becomes a MemoryError naming what could not be made.

cdef extern from "resources.h" nogil:
    ctypedef struct cymlp_failure:
        const char* what
        size_t bytes
    ctypedef void* (*cymlp_blas_alloc_fn)(int) noexcept nogil
    ctypedef void (*cymlp_blas_free_fn)(void*) noexcept nogil
    void cymlp_fail(cymlp_failure* f, const char* what, size_t bytes)
    int cymlp_resources_init(cymlp_blas_alloc_fn alloc, cymlp_blas_free_fn release)
    int cymlp_resources_acquire(int team, cymlp_failure* f)
    void cymlp_resources_release(int team)
    void cymlp_resources_pool(int threads)
    void cymlp_blas_member()
    int cymlp_blas_kind, cymlp_blas_measured, cymlp_blas_ready
    size_t cymlp_blas_bytes
    int cymlp_probe_fails
    long cymlp_probes_run, cymlp_probes_failed
