/* What an engine call needs beyond its own arrays, made sure of before the
 * call starts: the threads of its team, and OpenBLAS's work buffers.
 *
 * Neither GNU OpenMP nor OpenBLAS can report a failure to its caller. When
 * libgomp cannot create a thread of a parallel region (or allocate the
 * region's team), it prints "Thread creation failed" and exits the process
 * (gomp_fatal). When OpenBLAS cannot map the work buffer that a level-3
 * call (and a large level-2 one) needs, its blas_memory_alloc tries again
 * forever, at full speed (scipy's OpenBLAS 0.3.30; builds with the fix for
 * OpenBLAS issue 5289 exit after 10 tries instead): the member of the team
 * that asked never reaches the next barrier, where the others wait for it.
 * Both happen near an address-space limit (ulimit -v, RLIMIT_AS), under a
 * strict overcommit policy, or at a limit on threads (RLIMIT_NPROC, a
 * cgroup's pids). So what a call will newly ask of them is tried first, and
 * a call that cannot have it runs on one thread (the same bits: the
 * engine's results do not depend on the number of threads), or raises
 * MemoryError before anything ran when not even one thread's can be had.
 *
 * What remains: resources are tried, let go, and only then taken by libgomp
 * or OpenBLAS. Another thread of the process that maps memory or starts
 * threads in between can take them first, and then libgomp exits or
 * OpenBLAS spins as before. The window is some microseconds, once per
 * growth of a team or of OpenBLAS's buffers, not per call.
 */
#ifndef CYMLP_RESOURCES_H
#define CYMLP_RESOURCES_H

#include "attributes.h"

#include "platform.h"  /* first: it sets the C library's feature macros */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* Address space is tried with mmap (POSIX) and read from /proc (Linux).
 * Elsewhere (Windows) it is not managed: every size is taken to fit, and
 * only a call's new threads are probed. OpenBLAS's buffers are managed only
 * where cymlp/_blas_loader.py finds its allocator (Linux, ELF): otherwise
 * cymlp_blas_init is handed NULL and they stay CYMLP_BLAS_UNMANAGED. */
#if defined(__unix__) || defined(__APPLE__)
#define CYMLP_HAVE_MMAP 1
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
#else
#define CYMLP_HAVE_MMAP 0
#endif

/* What an engine call could not allocate (a static string) and its size. */
typedef struct {
    const char *what;
    size_t bytes;
} cymlp_failure;

/* The first failure of a call is the one reported. */
static inline void cymlp_fail(cymlp_failure *f, const char *what, size_t bytes)
{
    if (f != NULL && f->what == NULL) {
        f->what = what;
        f->bytes = bytes;
    }
}

/* Whether `bytes` more of address space can be mapped now, mapped the way
 * OpenBLAS maps a buffer (private, anonymous, read-write) so that
 * RLIMIT_AS and a strict overcommit policy count it alike. Never touched:
 * it costs no memory, only a system call each way. */
static inline int cymlp_room_for(size_t bytes)
{
#if CYMLP_HAVE_MMAP
    void *p;
    if (bytes == 0)
        return 1;
    p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return 0;
    munmap(p, bytes);
#else
    (void)bytes;
#endif
    return 1;
}

/* The process's mapped address space in bytes (VmSize), or 0 where it
 * cannot be read. open/read, not stdio: stdio allocates. */
static inline size_t cymlp_address_space(void)
{
#ifdef __linux__
    char buf[64];
    ssize_t n;
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return (size_t)strtoull(buf, NULL, 10) * (size_t)sysconf(_SC_PAGESIZE);
#else
    return 0;
#endif
}

/* ------------------------------------------------------------------------
 * Threads.
 *
 * libgomp keeps, per thread that opens parallel regions, the threads of its
 * last region of more than one thread (a smaller region lets the extra ones
 * exit; a region of one does not touch them), and creates only the missing
 * ones for the next. So a team needs new threads only when it is larger
 * than the calling thread's last one, and only then are as many threads
 * made here first, with the stack libgomp gives its own (OMP_STACKSIZE,
 * else GOMP_STACKSIZE, else the system's default), all alive at once, then
 * joined. Their stacks stay in the C library's cache of stacks (glibc keeps
 * up to 40 MiB), where libgomp's pthread_create takes them again.
 *
 * The record is per calling thread, of the engine's own regions: a region
 * of another library on the same libgomp in the same thread can change the
 * pool behind it (a larger one costs a needless probe, a smaller one lets a
 * needed probe be skipped).
 * ---------------------------------------------------------------------- */

static CYMLP_THREAD_LOCAL int cymlp_pool_threads;  /* this thread's last team */
/* After a failed probe the limit usually stays: this thread's next calls
 * that would need new threads run on one thread without trying, 1 call,
 * then twice as many after each failure (up to CYMLP_PROBE_BACKOFF_MAX),
 * so that the probe's cost stays rare however many calls follow. */
#define CYMLP_PROBE_BACKOFF_MAX 256
static CYMLP_THREAD_LOCAL int cymlp_probe_skip;    /* calls left without probing */
static CYMLP_THREAD_LOCAL int cymlp_probe_backoff; /* the next failure's skip */
static size_t cymlp_omp_stacksize;                 /* 0: the system's default */
static cymlp_atomic_int cymlp_probe_fails;         /* test hook: every probe fails */
static cymlp_atomic_i64 cymlp_probes_run;          /* test hook counters */
static cymlp_atomic_i64 cymlp_probes_failed;

/* OMP_STACKSIZE's syntax, as libgomp reads it: a number, then optionally
 * B, K, M or G (K if none). 0 if absent or invalid (libgomp then keeps the
 * default too). */
static inline size_t cymlp_parse_stacksize(const char *s)
{
    char *end;
    unsigned long long value;
    unsigned shift = 10;
    if (s == NULL)
        return 0;
    while (*s == ' ' || *s == '\t' || *s == '\n')
        s++;
    if (*s < '0' || *s > '9')
        return 0;
    value = strtoull(s, &end, 10);
    while (*end == ' ' || *end == '\t' || *end == '\n')
        end++;
    if (*end != '\0') {
        switch (*end) {
        case 'b': case 'B': shift = 0; break;
        case 'k': case 'K': shift = 10; break;
        case 'm': case 'M': shift = 20; break;
        case 'g': case 'G': shift = 30; break;
        default: return 0;
        }
        end++;
        while (*end == ' ' || *end == '\t' || *end == '\n')
            end++;
        if (*end != '\0')
            return 0;
    }
    if (((value << shift) >> shift) != value || (value << shift) > SIZE_MAX)
        return 0;
    return (size_t)(value << shift);
}

typedef struct {
    cymlp_mutex lock;
    cymlp_cond go;
    int released;
} cymlp_probe_gate;

CYMLP_THREAD_MAIN(cymlp_probe_thread, arg)
{
    cymlp_probe_gate *g = (cymlp_probe_gate *)arg;
    cymlp_mutex_lock(&g->lock);
    while (!g->released)
        cymlp_cond_wait(&g->go, &g->lock);
    cymlp_mutex_unlock(&g->lock);
    return 0;
}

/* Whether `threads` more threads can exist at once, and `bytes` more of
 * address space be mapped beside them. */
static inline int cymlp_probe(int threads, size_t bytes)
{
    int ok = 1;
    cymlp_fetch_add_i64(&cymlp_probes_run, 1);
    if (cymlp_load_int(&cymlp_probe_fails)) {
        ok = 0;
    } else if (threads <= 0) {
        ok = cymlp_room_for(bytes);
    } else {
        cymlp_probe_gate g;
        cymlp_thread *t = (cymlp_thread *)malloc((size_t)threads * sizeof(cymlp_thread));
        int made = 0, i;
        if (t == NULL)
            ok = 0;
        else if (cymlp_mutex_init(&g.lock) != 0) {
            ok = 0;
            free(t);
            t = NULL;
        } else if (cymlp_cond_init(&g.go) != 0) {
            ok = 0;
            cymlp_mutex_destroy(&g.lock);
            free(t);
            t = NULL;
        }
        if (t != NULL) {
            g.released = 0;
            /* the stack libgomp gives its threads (as libgomp: a size the
             * system refuses leaves the default) */
            for (; made < threads; made++) {
                if (cymlp_thread_start(&t[made], cymlp_probe_thread, &g,
                                       cymlp_omp_stacksize) != 0) {
                    ok = 0;
                    break;
                }
            }
            if (ok)
                ok = cymlp_room_for(bytes);
            cymlp_mutex_lock(&g.lock);
            g.released = 1;
            cymlp_cond_broadcast(&g.go);
            cymlp_mutex_unlock(&g.lock);
            for (i = 0; i < made; i++)
                cymlp_thread_join(t[i]);
            cymlp_cond_destroy(&g.go);
            cymlp_mutex_destroy(&g.lock);
            free(t);
        }
    }
    if (!ok)
        cymlp_fetch_add_i64(&cymlp_probes_failed, 1);
    return ok;
}

/* ------------------------------------------------------------------------
 * OpenBLAS's work buffers.
 *
 * A default build of OpenBLAS (without USE_TLS) keeps one table of buffers
 * for the whole process: a call takes the first free one, maps a new one
 * only when every buffer is in use, and never unmaps it. So the engine
 * needs as many buffers as its threads can call BLAS at once, summed over
 * the engine calls running in the process: `busy`. `ready` buffers are
 * known to exist. A call that would raise busy above ready first checks
 * that the missing buffers (plus one for each thread of the calls already
 * running, which may hold a buffer while the missing ones are made) fit in
 * the address space, then makes them by taking that many at once from
 * OpenBLAS's own allocator and giving them back.
 *
 * A build with USE_TLS=1 keeps buffers per thread instead (freed when the
 * thread ends): each thread that calls BLAS for the first time needs one.
 *
 * Found by measurement when cymlp is imported: the size of one buffer
 * (BUFFER_SIZE, fixed when OpenBLAS is built: 32 MiB in the wheels of
 * numpy and scipy, up to 256 MiB in OpenBLAS's headers), and which table
 * the build keeps. BLAS calls made by other code at the same time (scipy,
 * or OpenBLAS's own threads) use the same table and are not counted.
 * ---------------------------------------------------------------------- */

typedef void *(*cymlp_blas_alloc_fn)(int);
typedef void (*cymlp_blas_free_fn)(void *);

enum {
    CYMLP_BLAS_UNMANAGED = 0,  /* not OpenBLAS, or its allocator not found */
    CYMLP_BLAS_SHARED = 1,     /* one table for the process */
    CYMLP_BLAS_PER_THREAD = 2  /* USE_TLS=1: one table per thread */
};

/* more than any BUFFER_SIZE in OpenBLAS's headers (256 MiB), when the size
 * could not be measured */
#define CYMLP_BLAS_BYTES_MAX ((size_t)257 << 20)

static int cymlp_blas_kind;
static cymlp_blas_alloc_fn cymlp_blas_alloc;
static cymlp_blas_free_fn cymlp_blas_free;
static size_t cymlp_blas_bytes = CYMLP_BLAS_BYTES_MAX;
static int cymlp_blas_measured;
static int cymlp_blas_retry;   /* not measured for want of room: try again later */
static int cymlp_blas_ready;                      /* shared table: buffers made */
static cymlp_atomic_int cymlp_blas_busy;          /* shared table: threads in calls */
static CYMLP_THREAD_LOCAL int cymlp_blas_mine;    /* per-thread table: this thread's is made */
static cymlp_mutex cymlp_blas_lock = CYMLP_MUTEX_INITIALIZER;

/* Take n buffers at once from OpenBLAS, then give them back: the shared
 * table then holds at least n (threaded through their first word: a list
 * that needs no allocation of its own). */
static inline void cymlp_blas_fill(int n)
{
    void *held = NULL, *p;
    int i, k;
    for (i = 0; i < n; i++) {
        p = cymlp_blas_alloc(0);
        if (p == NULL)
            break;
        *(void **)p = held;
        held = p;
    }
    for (k = 0; k < i; k++) {
        p = *(void **)held;
        cymlp_blas_free(held);
        held = p;
    }
}

typedef struct {
    void *got;
    int room;
} cymlp_blas_peek;

CYMLP_THREAD_MAIN(cymlp_blas_peek_thread, arg)
{
    cymlp_blas_peek *pk = (cymlp_blas_peek *)arg;
    if (pk->room) {
        pk->got = cymlp_blas_alloc(0);
        if (pk->got != NULL)
            cymlp_blas_free(pk->got);
    }
    return 0;
}

/* Hold buffers until one is newly mapped: its size is the growth of the
 * address space (a few free ones may exist already). Each allocation that
 * could map a buffer is tried first with room for the largest. Returns the
 * buffers held (given back), storing up to `keep` of their addresses. */
static inline int cymlp_blas_measure(void **held, int keep)
{
    void *list = NULL, *p;
    int n = 0, k;
    size_t before, after;
    cymlp_blas_retry = 0;
    while (n < 16 && !cymlp_blas_measured) {
        if (!cymlp_room_for(CYMLP_BLAS_BYTES_MAX)) {
            cymlp_blas_retry = 1;
            break;
        }
        before = cymlp_address_space();
        p = cymlp_blas_alloc(0);
        after = cymlp_address_space();
        if (p == NULL)
            break;
        *(void **)p = list;
        list = p;
        if (n < keep)
            held[n] = p;
        n++;
        if (before == 0 || after == 0)
            break;  /* cannot be measured here: assume the largest */
        if (after > before && after - before <= CYMLP_BLAS_BYTES_MAX) {
            cymlp_blas_bytes = after - before;
            cymlp_blas_measured = 1;
        }
    }
    for (k = 0; k < n; k++) {
        p = *(void **)list;
        cymlp_blas_free(list);
        list = p;
    }
    if (n > cymlp_blas_ready)
        cymlp_blas_ready = n;
    if (n > 0)
        cymlp_blas_mine = 1;
    return n;
}

/* At import, with OpenBLAS's blas_memory_alloc / blas_memory_free (NULL:
 * another BLAS). */
static inline void cymlp_blas_init(cymlp_blas_alloc_fn alloc, cymlp_blas_free_fn release)
{
    void *held[16];
    int n;
    if (alloc == NULL || release == NULL)
        return;
    cymlp_blas_alloc = alloc;
    cymlp_blas_free = release;
    cymlp_blas_kind = CYMLP_BLAS_SHARED;
    n = cymlp_blas_measure(held, 16);
    /* a fresh thread takes one of those from a shared table, or maps its
     * own from a per-thread one (and unmaps it when it ends) */
    if (cymlp_blas_measured) {
        cymlp_blas_peek pk;
        cymlp_thread t;
        int i, shared = 0;
        pk.got = NULL;
        pk.room = cymlp_room_for(cymlp_blas_bytes);
        if (pk.room && cymlp_thread_start(&t, cymlp_blas_peek_thread, &pk, 0) == 0) {
            cymlp_thread_join(t);
            for (i = 0; i < n; i++)
                shared |= pk.got == held[i];
            if (pk.got != NULL && !shared) {
                cymlp_blas_kind = CYMLP_BLAS_PER_THREAD;
                cymlp_blas_ready = 0;
            }
        }
    }
}

/* What a call of `team` threads needs in new buffers, in bytes, when
 * `new_threads` of them are new (under the lock, for the shared table). */
static inline size_t cymlp_blas_needs(int team, int new_threads)
{
    int busy, need;
    if (cymlp_blas_kind == CYMLP_BLAS_SHARED) {
        busy = cymlp_load_int(&cymlp_blas_busy);
        need = busy + team;
        if (need <= cymlp_blas_ready)
            return 0;
        return (size_t)(need - cymlp_blas_ready + busy) * cymlp_blas_bytes;
    }
    if (cymlp_blas_kind == CYMLP_BLAS_PER_THREAD)
        return (size_t)((cymlp_blas_mine ? 0 : 1) + new_threads) * cymlp_blas_bytes;
    return 0;
}

/* Count a call of `team` threads in, making what the check allowed. */
static inline void cymlp_blas_take(int team)
{
    int need;
    if (cymlp_blas_kind == CYMLP_BLAS_SHARED) {
        need = cymlp_fetch_add_int(&cymlp_blas_busy, team) + team;
        if (need > cymlp_blas_ready) {
            cymlp_blas_fill(need);
            cymlp_blas_ready = need;
        }
    } else if (cymlp_blas_kind == CYMLP_BLAS_PER_THREAD && !cymlp_blas_mine) {
        cymlp_blas_fill(1);
        cymlp_blas_mine = 1;
    }
}

/* A member of a team, before its first BLAS call: with a per-thread table,
 * its buffer now (room for it was checked with the team's new threads). */
static inline void cymlp_blas_member(void)
{
    if (cymlp_blas_kind == CYMLP_BLAS_PER_THREAD && !cymlp_blas_mine) {
        cymlp_blas_fill(1);
        cymlp_blas_mine = 1;
    }
}

/* ------------------------------------------------------------------------
 * The engine's calls.
 * ---------------------------------------------------------------------- */

/* libgomp allocates a team's structure (a few KiB, and a task for each
 * thread) whenever a region's size differs from the last one's, and exits
 * if it cannot. A block of more than that, freed just before, leaves its
 * room on the calling thread's heap for it. */
static inline int cymlp_heap_room(int team)
{
    void *p = malloc((size_t)16384 + (size_t)team * 1024);
    free(p);
    return p != NULL;
}

/* The threads a call of `team` may use: team, or 1 when the team's new
 * threads or buffers cannot be had; -1 when not even one thread's buffer
 * can (f says what). Pair with cymlp_resources_release. */
static inline int cymlp_resources_acquire(int team, cymlp_failure *f)
{
    int forced = cymlp_load_int(&cymlp_probe_fails), new_threads = 0, probe, ok;
    if (team < 1)
        team = 1;
    if (team > cymlp_pool_threads)
        new_threads = team - (cymlp_pool_threads > 1 ? cymlp_pool_threads : 1);
    probe = team > 1 && (new_threads > 0 || forced);
    if (probe && !forced && cymlp_probe_skip > 0) {
        cymlp_probe_skip--;  /* a recent probe failed: see CYMLP_PROBE_BACKOFF_MAX */
        team = 1;
        probe = 0;
    }
    if (team > 1 && team != cymlp_pool_threads && !cymlp_heap_room(team)) {
        team = 1;
        probe = 0;
    }
    if (!probe && (cymlp_blas_kind == CYMLP_BLAS_UNMANAGED
                   || (cymlp_blas_kind == CYMLP_BLAS_PER_THREAD && cymlp_blas_mine)))
        return team;  /* nothing new to make sure of */
    cymlp_mutex_lock(&cymlp_blas_lock);
    if (cymlp_blas_kind == CYMLP_BLAS_SHARED && cymlp_blas_retry
        && cymlp_load_int(&cymlp_blas_busy) == 0)
        cymlp_blas_measure(NULL, 0);  /* imported with too little room to measure */
    if (team > 1) {
        if (probe) {
            ok = cymlp_probe(new_threads, cymlp_blas_needs(team, new_threads));
            if (!forced) {
                if (ok)
                    cymlp_probe_backoff = 0;
                else {
                    cymlp_probe_backoff = cymlp_probe_backoff == 0 ? 1
                        : cymlp_probe_backoff < CYMLP_PROBE_BACKOFF_MAX ? 2 * cymlp_probe_backoff
                        : CYMLP_PROBE_BACKOFF_MAX;
                    cymlp_probe_skip = cymlp_probe_backoff;
                }
            }
        } else {
            ok = cymlp_room_for(cymlp_blas_needs(team, 0));
        }
        if (ok) {
            cymlp_blas_take(team);
            cymlp_mutex_unlock(&cymlp_blas_lock);
            return team;
        }
    }
    ok = cymlp_room_for(cymlp_blas_needs(1, 0));
    if (ok)
        cymlp_blas_take(1);
    cymlp_mutex_unlock(&cymlp_blas_lock);
    if (ok)
        return 1;
    cymlp_fail(f, cymlp_blas_measured
                  ? "a work buffer of OpenBLAS (OpenBLAS cannot report a failed allocation: "
                    "it hangs or exits), so the call did not start"
                  : "a work buffer of OpenBLAS (at most that: its size could not be measured; "
                    "OpenBLAS cannot report a failed allocation: it hangs or exits), so the "
                    "call did not start",
               cymlp_blas_bytes);
    return -1;
}

static inline void cymlp_resources_release(int team)
{
    if (cymlp_blas_kind == CYMLP_BLAS_SHARED && team > 0)
        cymlp_fetch_add_int(&cymlp_blas_busy, -team);
}

/* After a region of `threads` threads opened by this thread. */
static inline void cymlp_resources_pool(int threads)
{
    if (threads > 1)
        cymlp_pool_threads = threads;
}

/* A child forked from this process has only the forking thread: no call
 * of another thread runs there, and buffers that other threads held at the
 * fork stay taken in OpenBLAS's copied table. */
CYMLP_UNUSED static void cymlp_resources_forked(void)
{
    cymlp_store_int(&cymlp_blas_busy, 0);
    cymlp_blas_ready = 0;
    cymlp_mutex_init(&cymlp_blas_lock);  /* another thread may have held it */
}

/* At import: 0, or an errno value if the fork handler could not be
 * registered. */
static inline int cymlp_resources_init(cymlp_blas_alloc_fn alloc, cymlp_blas_free_fn release)
{
    const char *s = getenv("OMP_STACKSIZE");
    cymlp_omp_stacksize = cymlp_parse_stacksize(s != NULL ? s : getenv("GOMP_STACKSIZE"));
    cymlp_blas_init(alloc, release);
    return cymlp_at_fork_child(cymlp_resources_forked);
}

#endif
