# Threads: the team of an engine call and the thread budget (a part of
# _core.pyx, which owns the process-wide state: see its docstring).
#
# The engine splits each pass of a minibatch into chunks that depend
# on the shapes alone, never on the thread count; the threads only decide who
# computes which chunk. Every product is split along rows or columns of its
# output (never along the summed dimension), each chunk one single-threaded
# BLAS call, and every sum keeps one order: the results are the same bits
# with any number of threads.
#
# The threads of an engine call form one team (csrc/team.h) for the whole call,
# an epoch included: one OpenMP region, inside which every pass is a claim
# loop over its chunks followed by the team's barrier. Every thread runs the
# same control flow (which minibatch, which layer), so that all meet at every
# barrier; what only one thread must do (set a shared pointer, write back a
# result) the leader does, before a barrier that publishes it.

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define CYMLP_HAVE_OPENMP 1
    #else
    /* No OpenMP: a region runs on the calling thread alone, and so does the
       engine. */
    static int omp_get_max_threads(void) { return 1; }
    static int omp_get_num_threads(void) { return 1; }
    static int omp_get_thread_num(void) { return 0; }
    #define CYMLP_HAVE_OPENMP 0
    #endif
    """
    int omp_get_max_threads() noexcept nogil
    int omp_get_num_threads() noexcept nogil
    int omp_get_thread_num() noexcept nogil
    const int CYMLP_HAVE_OPENMP

cdef extern from "team.h" nogil:
    ctypedef struct cymlp_team:
        double* scratch
    const int CYMLP_TEAM_SCRATCH
    int cymlp_team_init(cymlp_team* tm)
    void cymlp_team_free(cymlp_team* tm)
    void cymlp_team_enter(cymlp_team* tm, int size)
    Py_ssize_t cymlp_team_claim(cymlp_team* tm)
    void cymlp_team_barrier(cymlp_team* tm)
    long cymlp_thread_preemptions()
    const int CYMLP_HAVE_PREEMPTION_COUNT
    double cymlp_seconds()
    void cymlp_team_note_preempted(cymlp_team* tm, long n)
    long cymlp_team_preempted(cymlp_team* tm)
    int cymlp_contention_serial()
    int cymlp_contention_report(long preempted, double seconds)
    void cymlp_contention_adapt(int on)
    long cymlp_contention_serial_calls()
    int cymlp_fork_guard_install()
    int cymlp_team_allowed(int team)
    int cymlp_fork_serial()
    int cymlp_team_size(cymlp_team* tm)


# Test hook: parallel regions started with more than one thread, and the
# largest team, since the last _thread_stats() (counted by the calling thread).
cdef Py_ssize_t _stat_regions = 0
cdef int _stat_max_team = 0
cdef Py_ssize_t _stat_contended = 0   # teams found preempted (see csrc/team.h)


cdef inline int team_size(int nt, Py_ssize_t nch, cymlp_failure* fail) noexcept nogil:
    """Threads for work whose largest pass has nch chunks (a team or the
    prange of predict's row chunks), noted for the test hook; -1 (fail
    filled) if not even one thread can run it. The threads' resources are
    made sure of (csrc/resources.h): give them back with team_done."""
    global _stat_regions, _stat_max_team
    cdef int team = <int> min(<Py_ssize_t> nt, nch)
    if team > 1 and cymlp_contention_serial():
        team = 1  # the last teams were preempted by other programs: see csrc/team.h
    if not cymlp_team_allowed(team):
        team = 1  # a child forked after this process ran teams: see csrc/team.h
    team = cymlp_resources_acquire(team, fail)
    if team > 1:
        _stat_regions += 1
        _stat_max_team = max(_stat_max_team, team)
    return team


cdef inline void team_done(int team) noexcept nogil:
    cymlp_resources_release(team)


# The thread count of the user's BLAS (the one scipy calls), read and never
# written: the engine's own BLAS is private (csrc/blas.h). NULL where that BLAS is
# not OpenBLAS.
ctypedef int (*blas_get_threads_fn)() noexcept nogil
cdef blas_get_threads_fn _user_blas_threads = NULL
# What that BLAS counts as this machine's processors: its default, and the
# most its setting can hold (OPENBLAS_NUM_THREADS=8 holds 2 on 2 cores).
cdef int _user_blas_procs = 0


# The calling thread's place in its team, passed to every pass.
cdef struct Member:
    cymlp_team* team
    bint leader               # the thread that does what only one must do


cdef inline Py_ssize_t claim(const Member* me) noexcept nogil:
    """The calling thread's next chunk of the current pass."""
    return cymlp_team_claim(me.team)


cdef inline void sync(const Member* me) noexcept nogil:
    """The team's barrier: every thread's writes so far are seen by all."""
    cymlp_team_barrier(me.team)


ctypedef void (*team_body)(void* args, const Member* me) noexcept nogil


cdef void team_thread(cymlp_team* tm, team_body body, void* args, bint alone) noexcept nogil:
    """One thread's part of run_team: join the team (alone: a team of one,
    whatever OpenMP region the caller is in), run the body."""
    cdef Member me
    cdef long preempted = 0 if alone else cymlp_thread_preemptions()
    cymlp_blas_member()
    cymlp_team_enter(tm, 1 if alone else omp_get_num_threads())
    me.team = tm
    me.leader = alone or omp_get_thread_num() == 0
    body(args, &me)
    if not alone:
        cymlp_team_note_preempted(tm, cymlp_thread_preemptions() - preempted)


cdef int run_team(int threads, team_body body, void* args, cymlp_failure* fail) noexcept nogil:
    """Run body(args, member) on a team of `threads` threads (one OpenMP
    region), or on the calling thread alone. 0, or -1 (fail filled) if the
    team's lock could not be made: before any thread started."""
    global _stat_contended
    cdef cymlp_team tm
    cdef double start
    if cymlp_team_init(&tm) != 0:
        cymlp_fail(fail, "the team's mutex and condition variable", sizeof(cymlp_team))
        return -1
    if threads <= 1:
        team_thread(&tm, body, args, True)
    else:
        start = cymlp_seconds()
        with parallel(num_threads=threads):
            team_thread(&tm, body, args, False)
        cymlp_resources_pool(cymlp_team_size(&tm))
        if cymlp_contention_report(cymlp_team_preempted(&tm), cymlp_seconds() - start):
            _stat_contended += 1
    cymlp_team_free(&tm)
    return 0


# Engine calls running now, in all threads of the process (changed only with
# the GIL held): calls running at the same time share the thread budget.
cdef int _running = 0

# Whether the engine was built with OpenMP (without it, it runs serially).
OPENMP = bool(CYMLP_HAVE_OPENMP)


cdef class _EngineCall:
    """One engine call, as a context: the threads it may use (``threads``).

    The budget is the lesser of OpenMP's ``omp_get_max_threads()`` (which
    ``OMP_NUM_THREADS`` and threadpoolctl's "openmp" limits decide, in the
    calling thread) and the thread count of the user's BLAS (``OPENBLAS_NUM_THREADS``,
    threadpoolctl's "blas" limits: one process-wide setting, so a
    ``threadpool_limits`` entered in the main thread reaches fits running in
    joblib's threading workers too) when it is below that BLAS's default,
    the number of processors (at the default, or above, which OpenBLAS caps
    there, only OpenMP's setting counts). scikit-learn's MLP computes in
    BLAS's threads, so a limit on those is what its users set; joblib/loky's
    worker caps set both. Calls running at once share the budget: each takes
    ``budget // calls running``, so two fits in threads of one process do not
    each take every core. On entry the private BLAS is held at one thread.
    """
    cdef readonly int threads

    def __enter__(self):
        global _running
        cdef int budget = omp_get_max_threads(), blas = 0
        if _user_blas_threads != NULL:
            blas = _user_blas_threads()
        if 0 < blas < _user_blas_procs:  # below the default: a limit the user set
            budget = min(budget, blas)
        _running += 1
        self.threads = max(1, budget // _running)
        cymlp_blas_hold_one_thread()
        return self

    def __exit__(self, *exc):
        global _running
        _running -= 1
        return False

