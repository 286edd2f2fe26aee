# Test hooks on the engine's process-wide state (a part of _core.pyx, where
# that state lives). The tests reach them through cymlp._engine._testing;
# the estimators never call them.

def _resources(probe_fails=None):
    """Test hook: what csrc/resources.h found and did, as a dict: ``probes`` and
    ``probes_failed`` since the last call (which resets them; a probe tries
    the new threads of a team before libgomp makes them), ``blas`` (how
    OpenBLAS keeps its work buffers: "shared", "per-thread", or None where
    it is not OpenBLAS), ``blas_buffer_bytes`` (one buffer; None if not
    measured), ``blas_buffers`` (those made so far, shared table). With
    probe_fails (True / False), first makes every probe fail from now on, or
    not: the calls then run on one thread."""
    global cymlp_probes_run, cymlp_probes_failed, cymlp_probe_fails
    if probe_fails is not None:
        cymlp_probe_fails = 1 if probe_fails else 0
    found = {
        "probes": cymlp_probes_run,
        "probes_failed": cymlp_probes_failed,
        "blas": {0: None, 1: "shared", 2: "per-thread"}[cymlp_blas_kind],
        "blas_buffer_bytes": cymlp_blas_bytes if cymlp_blas_measured else None,
        "blas_buffers": cymlp_blas_ready,
    }
    cymlp_probes_run = 0
    cymlp_probes_failed = 0
    return found


def _forked_serial():
    """Test hook: whether this process is a child forked after the engine ran
    teams of threads, whose engine calls therefore run on one thread."""
    return bool(cymlp_fork_serial())


def _thread_stats():
    """Test hook: ``(regions, max_team)``, the parallel regions the engine
    started with more than one thread and the largest team, since the last
    call (which resets them)."""
    global _stat_regions, _stat_max_team
    stats = (_stat_regions, _stat_max_team)
    _stat_regions = 0
    _stat_max_team = 0
    return stats


def _contention(adapt=None):
    """Test hook: how many teams were found preempted by other programs
    (see csrc/team.h) since the last call, which resets the count. With adapt
    (True / False), first turns the adaptation on or off; either way the
    engine forgets what it found, and the next calls may use teams again."""
    global _stat_contended
    found = _stat_contended
    _stat_contended = 0
    if adapt is not None:
        cymlp_contention_adapt(1 if adapt else 0)
    return found


def _thread_preemptions():
    """Test hook: the calling thread's involuntary context switches so far,
    as the busy-machine adaptation counts them (csrc/platform.h), or None
    where the platform does not count them."""
    if not CYMLP_HAVE_PREEMPTION_COUNT:
        return None
    return cymlp_thread_preemptions()


def _contention_episode(preempted=None, seconds=None):
    """Test hook: with preempted and seconds, report a team's call as the
    engine does after one (what it found: True if contention). Then returns
    whether the next call that could use a team
    runs on one thread instead (consuming one of the episode's calls), and
    how many calls the adaptation sent to one thread since the last call:
    ``(found, sent, serial_calls)``, found None without a report."""
    found = None
    if preempted is not None:
        found = bool(cymlp_contention_report(preempted, seconds))
    sent = bool(cymlp_contention_serial())
    return found, sent, cymlp_contention_serial_calls()


# Adam's quotient by the divider or without it (csrc/exact_quotient.h): the
# same bits, so the faster one on this machine is chosen once, on first use
# (csrc/adam_path.h), unless the environment variable CYMLP_ADAM_DIVIDER
# forces it (1: divider, 0: FMA, hybrid: the FMA square root and the
# divider's division). "fma" and "hybrid" are the AVX-512 code; "-avx2" names
# the same arithmetic in AVX2 code, the one chosen on CPUs without AVX-512
# and forced by name in the tests.
_ADAM_PATHS = {"auto": CYMLP_PATH_AUTO, "divider": CYMLP_PATH_DIVIDER, "fma": CYMLP_PATH_FMA,
               "hybrid": CYMLP_PATH_HYBRID, "fma-avx2": CYMLP_PATH_FMA_AVX2,
               "hybrid-avx2": CYMLP_PATH_HYBRID_AVX2}
_ADAM_PATH_NAMES = {code: name for name, code in _ADAM_PATHS.items()}


def _adam_step_path():
    """The path Adam's step takes in each dtype, as chosen on first use (now, if need be).

    Returns
    -------
    dict
        ``{"float32": path, "float64": path}``, each path "divider" (the
        square root and division instructions), "fma" (the same bits from
        reciprocal estimates and fused multiply-adds) or "hybrid" (the square
        root so, the division by the divider), or "fma-avx2" / "hybrid-avx2"
        (the same in AVX2 code, on CPUs without AVX-512).
    """
    return {"float32": _ADAM_PATH_NAMES[cymlp_adam_path_f()],
            "float64": _ADAM_PATH_NAMES[cymlp_adam_path_d()]}



def _gemm_seconds(const floating[:, ::1] a, const floating[:, ::1] b, floating[:, ::1] c,
                  int threads):
    """Test hook (the benchmark suite's FLOP limit): seconds of the row-major
    product ``c = a @ b`` through the engine's private BLAS, as the engine
    makes its products: cut along c's columns (never along the summed
    dimension) into ``threads`` equal chunks, each one single-threaded BLAS
    call on one thread of an OpenMP region of ``threads`` threads. Timed in C
    around the region, so no Python is counted. The rate of a large product
    so made is what the engine's BLAS gives on that many threads
    (benchmarks/suite/floors.py, GemmRate)."""
    cdef Py_ssize_t m = a.shape[0], k = a.shape[1], n = b.shape[1]
    if b.shape[0] != k or c.shape[0] != m or c.shape[1] != n:
        raise ValueError(f"shapes ({m}, {k}) @ ({b.shape[0]}, {n}) -> ({c.shape[0]}, {c.shape[1]})")
    if threads < 1 or threads > n:
        raise ValueError(f"threads {threads} not in 1..{n}")
    cdef Py_ssize_t t, c0, c1
    cdef double start, seconds
    cymlp_blas_hold_one_thread()
    with nogil:
        start = cymlp_seconds()
        for t in prange(threads, num_threads=threads, schedule="static"):
            cymlp_blas_member()
            c0 = n * t // threads
            c1 = n * (t + 1) // threads
            gemm(False, False, <int> m, <int> (c1 - c0), <int> k, <floating> 1,
                 &a[0, 0], <int> k, &b[0, c0], <int> n, <floating> 0, &c[0, c0], <int> n)
        seconds = cymlp_seconds() - start
    return seconds
