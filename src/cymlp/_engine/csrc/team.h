/* A team: the threads of one parallel region that share every pass of an
 * engine call (a whole epoch, a loss and gradient, a prediction).
 *
 * Each pass is cut into chunks fixed by the shapes alone. The threads claim
 * chunks from a shared counter until none is left, then meet at a barrier
 * before the next pass reads what this one wrote. Which thread computes a
 * chunk never changes what the chunk computes: the bits do not depend on the
 * number of threads, nor on who ran late.
 *
 * Why not one OpenMP region per pass: a minibatch has a dozen passes, and
 * between two of them a thread of OpenMP's passive policy goes to sleep;
 * waking it costs a system call and, on a virtual machine, the wake-up of a
 * halted virtual CPU. Measured on a 2-core VM: MNIST-sized epochs on 2
 * threads 1.1x faster than on one. Spinning instead scaled them 1.6-1.7x on
 * an idle machine, but made them 2.4x slower than one thread while another
 * process kept a core busy: a spinning thread holds a core that the thread it
 * waits for, or the other process, needs; yielding instead of spinning did
 * not help (a yielding thread, unlike one woken from sleep, gets no priority
 * back from the scheduler, so the team's next barrier waits for it).
 *
 * So a waiting thread spins for a while, then sleeps, and the team learns how
 * long to spin: a wait that ends while spinning lengthens the next spins, a
 * wait that had to sleep (the awaited thread was off its core, or the work
 * between barriers is long) halves them. On an idle machine the threads keep
 * spinning through the short gaps between passes; on a busy one they soon
 * sleep at once, as the passive policy does.
 */
#ifndef CYMLP_TEAM_H
#define CYMLP_TEAM_H

#include "attributes.h"

#include "platform.h"  /* first: it sets the C library's feature macros */

#include <stddef.h>

/* Spin budgets, in pauses (tens of nanoseconds each): the first covers the
 * longest serial stretch between two passes of a MNIST-sized minibatch
 * (about 100 us here), the least is where spinning stops paying. */
#define CYMLP_SPIN_START 8192
#define CYMLP_SPIN_MAX 16384
#define CYMLP_SPIN_MIN 64

/* Room for the per-chunk partial sums of one pass (at least the engine's
 * largest number of chunks). */
#define CYMLP_TEAM_SCRATCH 64

typedef struct {
    cymlp_atomic_i64 preempted;  /* the most involuntary context switches of a member */
    cymlp_atomic_int size;       /* threads in the team (set as they enter) */
    cymlp_atomic_int arrived;    /* threads at the current barrier */
    cymlp_atomic_i64 phase;      /* barriers completed (64 bits: never wraps) */
    cymlp_atomic_i64 next;       /* the next chunk of the current pass */
    cymlp_atomic_int spin;       /* the current spin budget */
    cymlp_atomic_int sleepers;   /* threads asleep (or about to be) on wake */
    cymlp_mutex lock;
    cymlp_cond wake;
    double scratch[CYMLP_TEAM_SCRATCH];
} cymlp_team;

/* 0, or nonzero if the mutex or the condition could not be made. */
static inline int cymlp_team_init(cymlp_team *tm)
{
    cymlp_store_i64_relaxed(&tm->preempted, 0);
    cymlp_store_int_relaxed(&tm->size, 0);
    cymlp_store_int_relaxed(&tm->arrived, 0);
    cymlp_store_i64_relaxed(&tm->phase, 0);
    cymlp_store_i64_relaxed(&tm->next, 0);
    cymlp_store_int_relaxed(&tm->spin, CYMLP_SPIN_START);
    cymlp_store_int_relaxed(&tm->sleepers, 0);
    if (cymlp_mutex_init(&tm->lock) != 0)
        return 1;
    if (cymlp_cond_init(&tm->wake) != 0) {
        cymlp_mutex_destroy(&tm->lock);
        return 1;
    }
    return 0;
}

static inline void cymlp_team_free(cymlp_team *tm)
{
    cymlp_cond_destroy(&tm->wake);
    cymlp_mutex_destroy(&tm->lock);
}

/* Every thread of the region calls this first, with the region's size. */
static inline void cymlp_team_enter(cymlp_team *tm, int size)
{
    int unset = 0;
    cymlp_cas_int(&tm->size, &unset, size);
}

/* The threads that entered the team (after its region: its size). */
static inline int cymlp_team_size(cymlp_team *tm)
{
    return cymlp_load_int(&tm->size);
}

/* The calling thread's next chunk of the current pass (>= the pass's number
 * of chunks: none left). */
static inline ptrdiff_t cymlp_team_claim(cymlp_team *tm)
{
    return (ptrdiff_t)cymlp_fetch_add_i64_relaxed(&tm->next, 1);
}

/* Wait until every thread of the team has arrived; what each wrote before is
 * then visible to all. The last to arrive resets the chunk counter for the
 * next pass and releases the others. */
static inline void cymlp_team_barrier(cymlp_team *tm)
{
    int size = cymlp_load_int_relaxed(&tm->size);
    if (size <= 1) {
        cymlp_store_i64_relaxed(&tm->next, 0);
        return;
    }
    long long phase = cymlp_load_i64_acquire(&tm->phase);
    /* (sequentially consistent: at least the acquire-release it needs) */
    if (cymlp_fetch_add_int(&tm->arrived, 1) == size - 1) {
        cymlp_store_int_relaxed(&tm->arrived, 0);
        cymlp_store_i64_relaxed(&tm->next, 0);
        /* seq_cst store, then seq_cst load: a sleeper counts itself before
         * it checks the phase, so either it sees the new phase or this
         * thread sees it counted (and wakes it under the lock it waits on) */
        cymlp_store_i64(&tm->phase, phase + 1);
        if (cymlp_load_int(&tm->sleepers) > 0) {
            cymlp_mutex_lock(&tm->lock);
            cymlp_cond_broadcast(&tm->wake);
            cymlp_mutex_unlock(&tm->lock);
        }
        return;
    }
    int budget = cymlp_load_int_relaxed(&tm->spin);
    for (int i = 0; i < budget; i++) {
        if (cymlp_load_i64_acquire(&tm->phase) != phase) {
            if (budget < CYMLP_SPIN_MAX)
                cymlp_store_int_relaxed(&tm->spin, budget * 2);
            return;
        }
        cymlp_pause();
    }
    if (budget > CYMLP_SPIN_MIN)
        cymlp_store_int_relaxed(&tm->spin, budget / 2);
    cymlp_mutex_lock(&tm->lock);
    cymlp_fetch_add_int(&tm->sleepers, 1);
    while (cymlp_load_i64(&tm->phase) == phase)
        cymlp_cond_wait(&tm->wake, &tm->lock);
    cymlp_fetch_add_int(&tm->sleepers, -1);
    cymlp_mutex_unlock(&tm->lock);
}

/* Contention with other programs.
 *
 * A team is only as fast as its slowest member, and a member that shares its
 * core with another busy program is taken off the core every few
 * milliseconds, mid-chunk, while the others wait for its chunk at the next
 * barrier: on 2 cores with one busy, 2 threads ran MNIST-sized epochs 1.1-1.2x
 * SLOWER than one. The operating system counts those preemptions (the
 * involuntary context switches of each thread, getrusage RUSAGE_THREAD), so
 * every team keeps its most preempted member's count (the one the others
 * waited for; a sum would grow with the team's size on an idle machine), and
 * a call whose member was taken off its core more than about once per
 * CYMLP_PREEMPT_PERIOD of the call's duration sends the next engine calls of
 * the process to one thread. (Seen on a 2-vCPU VM, MNIST-sized epochs: 20-100
 * preemptions a second for a whole team on an idle machine, from the
 * kernel's own threads; about 1,700 with another program keeping a core
 * busy; the threshold, 500, lies between.) First
 * 1, then twice as many each time a trial team is still preempted (up to
 * CYMLP_SERIAL_MAX), back to trying teams as soon as one is not. An episode
 * also ends CYMLP_SERIAL_SECONDS after its finding, however many calls it had
 * left: 64 MNIST-sized epochs are 13 s on one thread, and a machine that was
 * busy for a moment (another library's threads winding down, a neighbour's
 * burst) must get its teams back within a fraction of a second, while a
 * machine that stays busy pays one trial team per episode. The results do
 * not change: they are the same bits on any number of threads. Where the
 * system keeps no per-thread count (macOS, Windows: platform.h's
 * CYMLP_HAVE_PREEMPTION_COUNT is 0), every count is 0 and the adaptation
 * never finds contention: teams run whatever the load. */
#define CYMLP_PREEMPT_PERIOD 0.002  /* seconds per tolerated preemption */
#define CYMLP_SERIAL_MAX 64
#define CYMLP_SERIAL_SECONDS 0.5

static cymlp_atomic_int cymlp_serial_left;      /* calls still to run on one thread */
static cymlp_atomic_int cymlp_serial_next = 1;  /* how many the next finding sends */
static cymlp_atomic_i64 cymlp_serial_until;     /* the episode's end, monotonic ns */
static cymlp_atomic_i64 cymlp_serial_calls;     /* calls sent to one thread (test hook) */
static cymlp_atomic_int cymlp_adapt = 1;        /* 0: teams whatever the contention */

static inline double cymlp_seconds(void)
{
    return 1e-9 * (double)cymlp_nanoseconds();
}

/* Whether a call that could use a team should run on one thread instead
 * (and count it as one of those the last finding sent there). */
static inline int cymlp_contention_serial(void)
{
    if (!cymlp_load_int_relaxed(&cymlp_adapt))
        return 0;
    int left = cymlp_load_int_relaxed(&cymlp_serial_left);
    if (left > 0 && cymlp_nanoseconds() >= cymlp_load_i64(&cymlp_serial_until)) {
        cymlp_store_int(&cymlp_serial_left, 0);  /* the episode's time is up */
        return 0;
    }
    while (left > 0) {
        if (cymlp_cas_int(&cymlp_serial_left, &left, left - 1)) {
            cymlp_fetch_add_i64_relaxed(&cymlp_serial_calls, 1);
            return 1;
        }
    }
    return 0;
}

/* What a team's call found: its members' preemptions over its duration.
 * Returns whether that counts as contention. */
static inline int cymlp_contention_report(long preempted, double seconds)
{
    if (!cymlp_load_int_relaxed(&cymlp_adapt))
        return 0;
    if (preempted >= 2 && (double)preempted * CYMLP_PREEMPT_PERIOD >= seconds) {
        int next = cymlp_load_int_relaxed(&cymlp_serial_next);
        cymlp_store_i64(&cymlp_serial_until,
                        cymlp_nanoseconds() + (long long)(CYMLP_SERIAL_SECONDS * 1e9));
        cymlp_store_int(&cymlp_serial_left, next);
        cymlp_store_int(&cymlp_serial_next,
                        next < CYMLP_SERIAL_MAX ? 2 * next : CYMLP_SERIAL_MAX);
        return 1;
    }
    cymlp_store_int(&cymlp_serial_next, 1);
    return 0;
}

static inline void cymlp_team_note_preempted(cymlp_team *tm, long n)
{
    long long most = cymlp_load_i64_relaxed(&tm->preempted);
    while (n > most && !cymlp_cas_i64(&tm->preempted, &most, n)) {
    }
}

static inline long cymlp_team_preempted(cymlp_team *tm)
{
    return (long)cymlp_load_i64(&tm->preempted);
}

/* Fork.
 *
 * GNU OpenMP (libgomp) keeps the threads of its first team for later
 * regions, and a fork copies only the thread that called it: a child that
 * enters a parallel region waits forever for threads that do not exist
 * (libgomp registers no fork handler; LLVM's libomp does, but a wheel may
 * link either). So once this process has started a team, a child forked from
 * it runs every engine call on its calling thread: the same bits (they do not
 * depend on the number of threads), and the cores are usually shared among
 * the forked processes anyway. A child of a process that never started a
 * team (a fresh forkserver, a pre-fork server that only imported cymlp)
 * keeps its teams. The flags are inherited by grandchildren with the memory. */
static cymlp_atomic_int cymlp_teams_started;  /* a team of several threads began here or in an ancestor */
static cymlp_atomic_int cymlp_forked_after_teams;

CYMLP_UNUSED static void cymlp_fork_child(void)
{
    if (cymlp_load_int_relaxed(&cymlp_teams_started))
        cymlp_store_int_relaxed(&cymlp_forked_after_teams, 1);
}

/* Register the fork handler (once, at import): 0, or an errno value (no
 * fork, no handler: Windows). */
static inline int cymlp_fork_guard_install(void)
{
    return cymlp_at_fork_child(cymlp_fork_child);
}

/* Whether a team of `team` threads may start in this process; records that
 * one does (before it starts, so that a fork racing with it errs toward the
 * serial child). */
static inline int cymlp_team_allowed(int team)
{
    if (team <= 1)
        return 1;
    if (cymlp_load_int_relaxed(&cymlp_forked_after_teams))
        return 0;
    cymlp_store_int_relaxed(&cymlp_teams_started, 1);
    return 1;
}

/* Test hook: whether this process is a child forked after teams ran. */
static inline int cymlp_fork_serial(void)
{
    return cymlp_load_int_relaxed(&cymlp_forked_after_teams);
}

/* Test hook: calls sent to one thread by the adaptation since the last call. */
static inline long cymlp_contention_serial_calls(void)
{
    return (long)cymlp_exchange_i64(&cymlp_serial_calls, 0);
}

/* Test hook: turn the adaptation on or off (either way, forget any finding). */
static inline void cymlp_contention_adapt(int on)
{
    cymlp_store_int(&cymlp_adapt, on);
    cymlp_store_int(&cymlp_serial_left, 0);
    cymlp_store_int(&cymlp_serial_next, 1);
}

#endif
