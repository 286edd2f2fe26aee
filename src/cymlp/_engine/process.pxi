# What the engine sets up once per process, when it is imported: its private
# BLAS, the fork handler, the resources made in advance (a part of _core.pyx).

def _load_blas():
    """Point the engine at its private OpenBLAS, held at one thread, and at
    the user's BLAS thread count (see _blas_loader)."""
    global cymlp_sgemm, cymlp_dgemm, cymlp_sdot, cymlp_ddot
    global cymlp_blas_get_threads, cymlp_blas_set_threads, _user_blas_threads
    global _user_blas_procs
    from .._blas_loader import private_blas_functions, user_blas_function
    f = private_blas_functions()
    cymlp_sgemm = <cymlp_sgemm_fn> <size_t> f["sgemm"]
    cymlp_dgemm = <cymlp_dgemm_fn> <size_t> f["dgemm"]
    cymlp_sdot = <cymlp_sdot_fn> <size_t> f["sdot"]
    cymlp_ddot = <cymlp_ddot_fn> <size_t> f["ddot"]
    cymlp_blas_get_threads = <cymlp_get_threads_fn> <size_t> f["get_threads"]
    cymlp_blas_set_threads = <cymlp_set_threads_fn> <size_t> f["set_threads"]
    cymlp_blas_set_threads(1)
    _user_blas_threads = <blas_get_threads_fn> <size_t> user_blas_function(
        "openblas_get_num_threads")
    cdef blas_get_threads_fn procs = <blas_get_threads_fn> <size_t> user_blas_function(
        "openblas_get_num_procs")
    if procs == NULL:
        _user_blas_threads = NULL
    else:
        _user_blas_procs = procs()
    return f


_PRIVATE_BLAS = _load_blas()
# The library file of the engine's BLAS (a test hook, and for bug reports).
PRIVATE_BLAS_PATH = _PRIVATE_BLAS["path"]


if cymlp_fork_guard_install() != 0:
    raise ImportError("cymlp: could not register the engine's fork handler (pthread_atfork)")

# OpenBLAS's allocator of work buffers, to make buffers before the threads
# that need them start (see csrc/resources.h and _blas_loader).
def _init_resources():
    from .._blas_loader import private_blas_allocator
    alloc, release = private_blas_allocator(_PRIVATE_BLAS)
    if cymlp_resources_init(<cymlp_blas_alloc_fn> <size_t> alloc,
                            <cymlp_blas_free_fn> <size_t> release) != 0:
        raise ImportError("cymlp: could not register the engine's fork handler "
                          "(pthread_atfork)")


_init_resources()

# The team's scratch holds one partial sum per chunk of a pass.
if MAX_CHUNKS > CYMLP_TEAM_SCRATCH:
    raise ImportError("cymlp: MAX_CHUNKS exceeds the team's scratch (csrc/team.h)")

