/* The engine's team (src/cymlp/_engine/csrc/team.h) and the thread probe of
 * resources.h, on the platform layer they include (platform.h): the real
 * functions, run by several threads, not a copy of them.
 *
 * Built and run by .ci/stage_windows.sh three ways: for Windows with
 * MinGW-w64 (platform.h's Win32 branch: SRWLOCK, CONDITION_VARIABLE,
 * _beginthreadex, QueryPerformanceCounter; C11 atomics, and with
 * -DCYMLP_USE_INTERLOCKED=1 the Interlocked intrinsics MSVC builds use), as
 * .exe files run under Wine, with and without an OpenMP region (MinGW's
 * libgomp); and natively for POSIX (pthreads), so both branches pass the
 * same checks:
 *
 *   cc -std=c11 -Wall -Wextra -Werror [-fopenmp] -I src/cymlp/_engine/csrc \
 *       tests/c/test_team.c -o test_team [-lpthread]
 *
 * What is checked:
 * - a team of 1, 2, 3, 4 and 8 threads (platform.h's threads, or an OpenMP
 *   region): cymlp_team_enter, cymlp_team_size, every chunk of every pass
 *   claimed exactly once (cymlp_team_claim), barriers that make each pass's
 *   writes visible to the next (cymlp_team_barrier), with spin budgets from
 *   0 (every wait sleeps on the condition variable) to the largest, and
 *   with members late to barriers; per-chunk partial sums in the team's
 *   scratch reduced in chunk order: the same bits on every team size;
 * - thread-local data (CYMLP_THREAD_LOCAL): each member's own;
 * - the busy-machine adaptation: cymlp_thread_preemptions and
 *   CYMLP_HAVE_PREEMPTION_COUNT (0 on Windows: the adaptation is off there),
 *   cymlp_team_note_preempted from several threads (the most), and the
 *   episode logic (cymlp_contention_report / _serial: 1 call, then 2, the
 *   end after CYMLP_SERIAL_SECONDS, the switch);
 * - the fork guard: teams allowed, and on POSIX a child forked after teams
 *   runs on one thread (Windows has no fork);
 * - resources.h's cymlp_probe: threads started with a given stack size and
 *   joined (cymlp_thread_start / _join), and OMP_STACKSIZE's parser.
 *
 * Prints a line per check, then 'N passed, N failed'; exits 1 on a failure.
 */
#include "team.h"  /* first: platform.h sets the C library's feature macros */
#include "resources.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if !CYMLP_WIN32
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__linux__) && !CYMLP_WIN32
#define EXPECT_PREEMPTION_COUNT 1
#else
#define EXPECT_PREEMPTION_COUNT 0
#endif

static int passed, failed;

static void check(int ok, const char *what)
{
    if (ok)
        passed++;
    else
        failed++;
    printf("%s %s\n", ok ? "PASS" : "FAIL", what);
    fflush(stdout);
}

/* Keep the core for about `us` microseconds, yielding (platform.h has no
 * sleep; a late member is what matters, not an idle core). */
static void late(long long us)
{
    long long end = cymlp_nanoseconds() + us * 1000;
    while (cymlp_nanoseconds() < end)
        cymlp_yield();
}

/* ---- passes over fixed chunks; each pass reads what the last one wrote ---- */
#define MAX_THREADS 8
#define PASSES 150
#define LEN 4096

static int chunks_of(int pass) { return 1 + (pass * 7) % CYMLP_TEAM_SCRATCH; }

typedef struct {
    cymlp_team *tm;
    int size;         /* the region's size, given to cymlp_team_enter */
    int tid;
    int late_every;   /* a member late to a barrier every n passes (0: never) */
    double *a, *b;    /* ping-pong buffers */
    cymlp_atomic_int *claimed;  /* [PASSES][CYMLP_TEAM_SCRATCH]: times each chunk ran */
    double *sums;     /* per pass: the chunk-order sum of the scratch (member 0) */
    cymlp_atomic_int *bad;
} member;

static CYMLP_THREAD_LOCAL int tls_id = -1;  /* each member's own */

static void member_run(member *m)
{
    double *src = m->a, *dst = m->b;
    tls_id = m->tid;
    cymlp_team_enter(m->tm, m->size);
    for (int p = 0; p < PASSES; p++) {
        ptrdiff_t nch = chunks_of(p), c;
        while ((c = cymlp_team_claim(m->tm)) < nch) {
            cymlp_fetch_add_int(&m->claimed[p * CYMLP_TEAM_SCRATCH + c], 1);
            size_t lo = (size_t)(LEN * c / nch), hi = (size_t)(LEN * (c + 1) / nch);
            double s = 0.0;
            for (size_t i = lo; i < hi; i++) {
                /* neighbours that other members wrote in the last pass */
                double l = src[(i + LEN - 1) % LEN], r = src[(i + 1) % LEN];
                dst[i] = 0.25 * l + 0.5 * src[i] + 0.25 * r + 1e-3 * (double)(p % 5);
                s += dst[i] * (double)(i % 3 + 1);
            }
            m->tm->scratch[c] = s;
        }
        if (m->late_every && p % m->late_every == m->tid % m->late_every)
            late(1000);  /* the others spin out and sleep on the condition */
        cymlp_team_barrier(m->tm);
        if (tls_id != m->tid)
            cymlp_fetch_add_int(m->bad, 1);
        if (m->tid == 0) {  /* the partial sums in chunk order: fixed bits */
            double s = 0.0;
            for (ptrdiff_t k = 0; k < nch; k++)
                s += m->tm->scratch[k];
            m->sums[p] = s;
        }
        cymlp_team_barrier(m->tm);  /* the scratch is read before it is rewritten */
        double *t = src;
        src = dst;
        dst = t;
    }
}

CYMLP_THREAD_MAIN(member_main, arg)
{
    member_run((member *)arg);
    return 0;
}

typedef struct {
    double sum;      /* of every pass's sum */
    int claim_errors, tls_errors, size;
} outcome;

static outcome run_team(int n, int spin, int late_every, int use_openmp)
{
    static double a[LEN], b[LEN], sums[PASSES];
    static cymlp_atomic_int claimed[PASSES * CYMLP_TEAM_SCRATCH];
    cymlp_atomic_int bad;
    cymlp_team tm;
    member args[MAX_THREADS];
    outcome o = {0.0, 0, 0, 0};

    cymlp_store_int(&bad, 0);
    for (size_t i = 0; i < LEN; i++) {
        a[i] = (double)((i * 2654435761u) % 1000) / 1000.0;
        b[i] = 0.0;
    }
    for (size_t i = 0; i < PASSES * CYMLP_TEAM_SCRATCH; i++)
        cymlp_store_int(&claimed[i], 0);
    if (cymlp_team_init(&tm) != 0) {
        o.claim_errors = -1;
        return o;
    }
    cymlp_store_int_relaxed(&tm.spin, spin);
    for (int t = 0; t < n; t++) {
        member m = {&tm, n, t, late_every, a, b, claimed, sums, &bad};
        args[t] = m;
    }
    if (use_openmp) {
#ifdef _OPENMP
#pragma omp parallel num_threads(n)
        {
            if (omp_get_num_threads() != n)
                cymlp_fetch_add_int(&bad, 1);
            else
                member_run(&args[omp_get_thread_num()]);
        }
#endif
    } else {
        cymlp_thread th[MAX_THREADS];
        for (int t = 1; t < n; t++)
            if (cymlp_thread_start(&th[t], member_main, &args[t], 0) != 0) {
                fprintf(stderr, "cymlp_thread_start failed\n");
                exit(2);
            }
        member_run(&args[0]);
        for (int t = 1; t < n; t++)
            cymlp_thread_join(th[t]);
    }
    o.size = cymlp_team_size(&tm);
    cymlp_team_free(&tm);
    o.tls_errors = cymlp_load_int(&bad);
    for (int p = 0; p < PASSES; p++)
        for (int c = 0; c < CYMLP_TEAM_SCRATCH; c++)
            if (cymlp_load_int(&claimed[p * CYMLP_TEAM_SCRATCH + c]) != (c < chunks_of(p)))
                o.claim_errors++;
    for (int p = 0; p < PASSES; p++)
        o.sum += sums[p];
    return o;
}

static void test_teams(void)
{
    char what[200];
    outcome ref = run_team(1, CYMLP_SPIN_START, 0, 0);
    check(ref.claim_errors == 0 && ref.tls_errors == 0 && ref.size == 1,
          "1 thread: every chunk once, team size 1");
    int sizes[] = {2, 3, 4, 8};
    int spins[] = {0, CYMLP_SPIN_MIN, CYMLP_SPIN_START};
    for (int s = 0; s < 4; s++)
        for (int k = 0; k < 3; k++)
            for (int lt = 0; lt <= 1; lt++)
                for (int omp = 0; omp <= 1; omp++) {
#ifndef _OPENMP
                    if (omp)
                        continue;
#endif
                    outcome o = run_team(sizes[s], spins[k], lt ? 7 : 0, omp);
                    snprintf(what, sizeof what,
                             "%d threads (%s), spin %d%s: size %d, chunks once, "
                             "thread-local data, same bits as 1 thread",
                             sizes[s], omp ? "OpenMP" : "platform.h", spins[k],
                             lt ? ", late members" : "", o.size);
                    check(o.claim_errors == 0 && o.tls_errors == 0 && o.size == sizes[s]
                              && memcmp(&o.sum, &ref.sum, sizeof(double)) == 0,
                          what);
                }
    check(tls_id == 0, "the main thread's thread-local value is its own");
}

/* ---- the busy-machine adaptation ---- */
typedef struct {
    cymlp_team *tm;
    long n;
    long preemptions;
} noter;

CYMLP_THREAD_MAIN(note_main, arg)
{
    noter *w = (noter *)arg;
    w->preemptions = cymlp_thread_preemptions();
    for (long k = 0; k <= w->n; k++)
        cymlp_team_note_preempted(w->tm, k);
    return 0;
}

static void test_busy_machine(void)
{
    char what[200];
    long own = cymlp_thread_preemptions();
    snprintf(what, sizeof what, "preemption count: %s (this thread: %ld)",
             CYMLP_HAVE_PREEMPTION_COUNT ? "kept" : "none, adaptation off", own);
    check(own >= 0 && (CYMLP_HAVE_PREEMPTION_COUNT || own == 0)
              && CYMLP_HAVE_PREEMPTION_COUNT == EXPECT_PREEMPTION_COUNT, what);

    cymlp_team tm;
    cymlp_thread th[4];
    noter w[4];
    check(cymlp_team_init(&tm) == 0 && cymlp_team_preempted(&tm) == 0, "a new team: 0 preempted");
    for (int t = 0; t < 4; t++) {
        w[t].tm = &tm;
        w[t].n = 1000 * (t + 1) + t;
        if (cymlp_thread_start(&th[t], note_main, &w[t], 0) != 0)
            exit(2);
    }
    for (int t = 0; t < 4; t++)
        cymlp_thread_join(th[t]);
    check(cymlp_team_preempted(&tm) == 4003, "4 threads note preemptions: the team keeps the most");
    cymlp_team_free(&tm);

    cymlp_contention_adapt(1);
    (void)cymlp_contention_serial_calls();
    check(!cymlp_contention_report(1, 1.0) && !cymlp_contention_serial(),
          "1 preemption in 1 s: no contention");
    check(cymlp_contention_report(100, 0.1), "100 preemptions in 0.1 s: contention");
    check(cymlp_contention_serial() && !cymlp_contention_serial(),
          "the first finding sends 1 call to one thread");
    check(cymlp_contention_report(100, 0.1) && cymlp_contention_serial()
              && cymlp_contention_serial() && !cymlp_contention_serial(),
          "a second finding sends 2");
    check(cymlp_contention_serial_calls() == 3, "3 calls counted (test hook)");
    check(!cymlp_contention_report(0, 0.1), "a trial team not preempted: no contention");
    check(cymlp_contention_report(100, 0.1) && cymlp_contention_serial()
              && !cymlp_contention_serial(),
          "then the next finding sends 1 again");
    check(cymlp_contention_report(100, 0.1), "contention again (2 calls)");
    late((long long)(CYMLP_SERIAL_SECONDS * 1e6) + 100000);
    check(!cymlp_contention_serial(), "the episode ends after CYMLP_SERIAL_SECONDS");
    cymlp_contention_adapt(0);
    check(!cymlp_contention_report(100, 0.1) && !cymlp_contention_serial(),
          "adaptation off: teams whatever the contention");
    cymlp_contention_adapt(1);
    (void)cymlp_contention_serial_calls();
}

/* ---- the fork guard ---- */
static void test_fork_guard(void)
{
    check(cymlp_fork_guard_install() == 0, "fork handler installed (nothing to do on Windows)");
    check(cymlp_team_allowed(1) && cymlp_team_allowed(4) && !cymlp_fork_serial(),
          "teams allowed in the parent");
#if !CYMLP_WIN32
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0)
        _exit(cymlp_fork_serial() && !cymlp_team_allowed(4) && cymlp_team_allowed(1) ? 0 : 1);
    int status = 1;
    check(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status)
              && WEXITSTATUS(status) == 0,
          "a child forked after teams runs on one thread");
#endif
}

/* ---- resources.h: the thread probe ---- */
static void test_probe(void)
{
    check(cymlp_parse_stacksize("2M") == ((size_t)2 << 20) && cymlp_parse_stacksize("64") == 65536
              && cymlp_parse_stacksize("x") == 0,
          "OMP_STACKSIZE parsed as libgomp does");
    long long before = cymlp_load_i64(&cymlp_probes_run);
    check(cymlp_probe(8, 0), "probe: 8 threads started and joined (default stack)");
    cymlp_omp_stacksize = (size_t)4 << 20;
    check(cymlp_probe(4, (size_t)1 << 20), "probe: 4 threads with 4 MiB stacks, 1 MiB more");
    cymlp_omp_stacksize = 0;
    check(cymlp_load_i64(&cymlp_probes_run) == before + 2
              && cymlp_load_i64(&cymlp_probes_failed) == 0,
          "probe counters");
}

int main(void)
{
    printf("branch: %s, atomics: %s, OpenMP: %s\n", CYMLP_WIN32 ? "win32" : "posix",
           CYMLP_USE_INTERLOCKED ? "Interlocked" : "C11",
#ifdef _OPENMP
           "yes"
#else
           "no"
#endif
    );
    test_teams();
    test_busy_machine();
    test_fork_guard();
    test_probe();
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
