/* The platform layer: everything the engine's C needs that standard C11
 * does not give on every compiler the wheels are built with (GCC and Clang
 * on Linux and macOS, MSVC and MinGW-w64 on Windows). team.h and
 * resources.h use only the names below; nothing else includes a system
 * threading header.
 *
 *   atomics          cymlp_atomic_int, cymlp_atomic_i64 (long long) and
 *                    their operations, named as C11's with the type and
 *                    the order in the name (no suffix: sequentially
 *                    consistent). C11 <stdatomic.h> wherever the compiler
 *                    has it (GCC, Clang, clang-cl, MinGW-w64); MSVC's
 *                    Interlocked intrinsics otherwise (64-bit x86 and ARM
 *                    only), as CPython's pyatomic_msc.h does.
 *   mutex, cond      cymlp_mutex (statically initialisable:
 *                    CYMLP_MUTEX_INITIALIZER), cymlp_cond: pthreads, or
 *                    SRWLOCK and CONDITION_VARIABLE on Windows.
 *   threads          cymlp_thread_start (with a stack size) and _join, for
 *                    the resource probes; a thread's function is declared
 *                    with CYMLP_THREAD_MAIN(name, arg) and returns 0.
 *   thread-local     CYMLP_THREAD_LOCAL.
 *   clock            cymlp_nanoseconds: monotonic (clock_gettime, or
 *                    QueryPerformanceCounter).
 *   pause, yield     cymlp_pause: the spin-wait hint of the CPU, or nothing;
 *                    cymlp_yield: let another thread run (sched_yield,
 *                    SwitchToThread).
 *   prefetch         cymlp_prefetch: a hint to load a cache line for reading
 *                    (__builtin_prefetch, _mm_prefetch), or nothing.
 *   preemptions      cymlp_thread_preemptions: the calling thread's
 *                    involuntary context switches (getrusage RUSAGE_THREAD:
 *                    Linux, FreeBSD). Where no such count exists (macOS,
 *                    Windows) it is 0 and CYMLP_HAVE_PREEMPTION_COUNT is 0:
 *                    the busy-machine adaptation (team.h) is then off.
 *   fork             cymlp_at_fork_child: a handler run in the child of a
 *                    fork (pthread_atfork); Windows has no fork: nothing.
 *
 * CYMLP_USE_INTERLOCKED=1 forces the Interlocked atomics, and
 * CYMLP_FORCE_NO_PREEMPTION_COUNT the "off" branch of the count: both for
 * the header tests, which compile every branch they can (the Win32 one with
 * MinGW-w64).
 */
#ifndef CYMLP_PLATFORM_H
#define CYMLP_PLATFORM_H

/* glibc and musl declare getrusage's RUSAGE_THREAD, MAP_ANONYMOUS and
 * clock_gettime under -std=c11 only with a feature macro. It takes effect
 * only before the first system header, so the headers that include this
 * one include it first; an includer that includes a system header before
 * them defines the macro itself (Python.h, which the engine's modules
 * include first, does). */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE 1
#endif

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define CYMLP_WIN32 1
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#include <process.h>
#else
#define CYMLP_WIN32 0
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <time.h>
#endif

/* ------------------------------------------------------------------------
 * Atomics.
 * ---------------------------------------------------------------------- */

#ifndef CYMLP_USE_INTERLOCKED
#if defined(_MSC_VER) && !defined(__clang__)
#define CYMLP_USE_INTERLOCKED 1
#else
#define CYMLP_USE_INTERLOCKED 0
#endif
#endif

#if !CYMLP_USE_INTERLOCKED
#include <stdatomic.h>

typedef atomic_int cymlp_atomic_int;
typedef atomic_llong cymlp_atomic_i64;

#define CYMLP_ATOMIC_OPS(SFX, T, A)                                           \
    static inline T cymlp_load_##SFX(A *p)                                    \
    { return atomic_load(p); }                                                \
    static inline T cymlp_load_##SFX##_relaxed(A *p)                          \
    { return atomic_load_explicit(p, memory_order_relaxed); }                 \
    static inline T cymlp_load_##SFX##_acquire(A *p)                          \
    { return atomic_load_explicit(p, memory_order_acquire); }                 \
    static inline void cymlp_store_##SFX(A *p, T v)                           \
    { atomic_store(p, v); }                                                   \
    static inline void cymlp_store_##SFX##_relaxed(A *p, T v)                 \
    { atomic_store_explicit(p, v, memory_order_relaxed); }                    \
    static inline T cymlp_fetch_add_##SFX(A *p, T v)                          \
    { return atomic_fetch_add(p, v); }                                        \
    static inline T cymlp_fetch_add_##SFX##_relaxed(A *p, T v)                \
    { return atomic_fetch_add_explicit(p, v, memory_order_relaxed); }         \
    static inline T cymlp_exchange_##SFX(A *p, T v)                           \
    { return atomic_exchange(p, v); }                                         \
    /* *expected is updated to the value found when it differs */            \
    static inline int cymlp_cas_##SFX(A *p, T *expected, T desired)           \
    { return atomic_compare_exchange_strong(p, expected, desired); }

#else  /* MSVC: its volatile accesses and Interlocked intrinsics */
#include <intrin.h>
#if !defined(_M_X64) && !defined(_M_ARM64)
#error "cymlp: MSVC builds are for 64-bit x86 and ARM only (64-bit atomics)"
#endif

typedef volatile int cymlp_atomic_int;
typedef volatile long long cymlp_atomic_i64;

/* A plain volatile access is relaxed on ARM64 (/volatile:iso) and has
 * acquire (load) / release (store) order on x86-64 (/volatile:ms), where a
 * plain load is also sequentially consistent given that every seq_cst store
 * is an interlocked exchange. LOAD_ACQ is the acquire load. */
#if defined(_M_ARM64)
#define CYMLP_LOAD_ACQ_int(p) ((int)__ldar32((volatile unsigned __int32 *)(p)))
#define CYMLP_LOAD_ACQ_i64(p) ((long long)__ldar64((volatile unsigned __int64 *)(p)))
#else
#define CYMLP_LOAD_ACQ_int(p) (*(p))
#define CYMLP_LOAD_ACQ_i64(p) (*(p))
#endif

#define CYMLP_ATOMIC_OPS(SFX, T, A, W, XADD, XCHG, CAS)                       \
    static inline T cymlp_load_##SFX(A *p)                                    \
    { return CYMLP_LOAD_ACQ_##SFX(p); }                                       \
    static inline T cymlp_load_##SFX##_relaxed(A *p)                          \
    { return *p; }                                                            \
    static inline T cymlp_load_##SFX##_acquire(A *p)                          \
    { return CYMLP_LOAD_ACQ_##SFX(p); }                                       \
    static inline void cymlp_store_##SFX(A *p, T v)                           \
    { (void)XCHG((volatile W *)p, (W)v); }                                    \
    static inline void cymlp_store_##SFX##_relaxed(A *p, T v)                 \
    { *p = v; }                                                               \
    static inline T cymlp_fetch_add_##SFX(A *p, T v)                          \
    { return (T)XADD((volatile W *)p, (W)v); }                                \
    static inline T cymlp_fetch_add_##SFX##_relaxed(A *p, T v)                \
    { return (T)XADD((volatile W *)p, (W)v); }                                \
    static inline T cymlp_exchange_##SFX(A *p, T v)                           \
    { return (T)XCHG((volatile W *)p, (W)v); }                                \
    static inline int cymlp_cas_##SFX(A *p, T *expected, T desired)           \
    {                                                                         \
        T found = (T)CAS((volatile W *)p, (W)desired, (W)*expected);          \
        if (found == *expected)                                               \
            return 1;                                                         \
        *expected = found;                                                    \
        return 0;                                                             \
    }
#endif

#if !CYMLP_USE_INTERLOCKED
CYMLP_ATOMIC_OPS(int, int, cymlp_atomic_int)
CYMLP_ATOMIC_OPS(i64, long long, cymlp_atomic_i64)
#else
CYMLP_ATOMIC_OPS(int, int, cymlp_atomic_int, long, _InterlockedExchangeAdd,
                 _InterlockedExchange, _InterlockedCompareExchange)
CYMLP_ATOMIC_OPS(i64, long long, cymlp_atomic_i64, __int64, _InterlockedExchangeAdd64,
                 _InterlockedExchange64, _InterlockedCompareExchange64)
#endif

/* ------------------------------------------------------------------------
 * Thread-local storage.
 * ---------------------------------------------------------------------- */

#if defined(_MSC_VER)
#define CYMLP_THREAD_LOCAL __declspec(thread)
#else
#define CYMLP_THREAD_LOCAL _Thread_local
#endif

/* ------------------------------------------------------------------------
 * Mutexes, condition variables, threads. Initialisers and starts return 0,
 * or nonzero on failure (the Win32 objects cannot fail to initialise).
 * ---------------------------------------------------------------------- */

#if CYMLP_WIN32
typedef SRWLOCK cymlp_mutex;
typedef CONDITION_VARIABLE cymlp_cond;
typedef HANDLE cymlp_thread;
#define CYMLP_MUTEX_INITIALIZER SRWLOCK_INIT
#define CYMLP_THREAD_MAIN(name, arg) static unsigned __stdcall name(void *arg)

static inline int cymlp_mutex_init(cymlp_mutex *m) { InitializeSRWLock(m); return 0; }
static inline void cymlp_mutex_destroy(cymlp_mutex *m) { (void)m; }
static inline void cymlp_mutex_lock(cymlp_mutex *m) { AcquireSRWLockExclusive(m); }
static inline void cymlp_mutex_unlock(cymlp_mutex *m) { ReleaseSRWLockExclusive(m); }
static inline int cymlp_cond_init(cymlp_cond *c) { InitializeConditionVariable(c); return 0; }
static inline void cymlp_cond_destroy(cymlp_cond *c) { (void)c; }
static inline void cymlp_cond_wait(cymlp_cond *c, cymlp_mutex *m)
{
    SleepConditionVariableSRW(c, m, INFINITE, 0);
}
static inline void cymlp_cond_broadcast(cymlp_cond *c) { WakeAllConditionVariable(c); }

/* stack: bytes, 0 for the default */
static inline int cymlp_thread_start(cymlp_thread *t, unsigned(__stdcall *fn)(void *),
                                     void *arg, size_t stack)
{
    uintptr_t h = _beginthreadex(NULL, (unsigned)stack, fn, arg,
                                 stack != 0 ? STACK_SIZE_PARAM_IS_A_RESERVATION : 0, NULL);
    if (h == 0)
        return 1;
    *t = (HANDLE)h;
    return 0;
}

static inline void cymlp_thread_join(cymlp_thread t)
{
    WaitForSingleObject(t, INFINITE);
    CloseHandle(t);
}
#else
typedef pthread_mutex_t cymlp_mutex;
typedef pthread_cond_t cymlp_cond;
typedef pthread_t cymlp_thread;
#define CYMLP_MUTEX_INITIALIZER PTHREAD_MUTEX_INITIALIZER
#define CYMLP_THREAD_MAIN(name, arg) static void *name(void *arg)

static inline int cymlp_mutex_init(cymlp_mutex *m) { return pthread_mutex_init(m, NULL); }
static inline void cymlp_mutex_destroy(cymlp_mutex *m) { pthread_mutex_destroy(m); }
static inline void cymlp_mutex_lock(cymlp_mutex *m) { pthread_mutex_lock(m); }
static inline void cymlp_mutex_unlock(cymlp_mutex *m) { pthread_mutex_unlock(m); }
static inline int cymlp_cond_init(cymlp_cond *c) { return pthread_cond_init(c, NULL); }
static inline void cymlp_cond_destroy(cymlp_cond *c) { pthread_cond_destroy(c); }
static inline void cymlp_cond_wait(cymlp_cond *c, cymlp_mutex *m) { pthread_cond_wait(c, m); }
static inline void cymlp_cond_broadcast(cymlp_cond *c) { pthread_cond_broadcast(c); }

/* stack: bytes, 0 for the default (a size the system refuses leaves the
 * default, as libgomp does with OMP_STACKSIZE) */
static inline int cymlp_thread_start(cymlp_thread *t, void *(*fn)(void *), void *arg,
                                     size_t stack)
{
    pthread_attr_t attr;
    int err;
    if (pthread_attr_init(&attr) != 0)
        return 1;
    if (stack != 0)
        pthread_attr_setstacksize(&attr, stack);
    err = pthread_create(t, &attr, fn, arg);
    pthread_attr_destroy(&attr);
    return err != 0;
}

static inline void cymlp_thread_join(cymlp_thread t) { pthread_join(t, NULL); }
#endif

/* ------------------------------------------------------------------------
 * Time, the spin-wait hint, preemptions.
 * ---------------------------------------------------------------------- */

/* A monotonic clock, in nanoseconds from an arbitrary origin. */
static inline long long cymlp_nanoseconds(void)
{
#if CYMLP_WIN32
    LARGE_INTEGER count, freq;
    QueryPerformanceCounter(&count);
    QueryPerformanceFrequency(&freq);
    return (count.QuadPart / freq.QuadPart) * 1000000000LL
           + (count.QuadPart % freq.QuadPart) * 1000000000LL / freq.QuadPart;
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + (long long)ts.tv_nsec;
#endif
}

#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64) || defined(_M_IX86)
#include <immintrin.h>
#define cymlp_pause() _mm_pause()
#elif defined(_MSC_VER) && defined(_M_ARM64)
#define cymlp_pause() __yield()
#elif defined(__aarch64__) && defined(__GNUC__)
#define cymlp_pause() __asm__ __volatile__("yield")
#else
#define cymlp_pause() ((void)0)
#endif

/* Start loading the cache line at p for a read soon (a hint: it never
 * faults, and changes no result). */
#if defined(__GNUC__) || defined(__clang__)
#define cymlp_prefetch(p) __builtin_prefetch((p), 0, 3)
#elif defined(_M_X64) || defined(_M_IX86)
#define cymlp_prefetch(p) _mm_prefetch((const char *)(p), _MM_HINT_T0)
#else
#define cymlp_prefetch(p) ((void)(p))
#endif

/* Let another thread run on this core (a wait longer than a spin). */
static inline void cymlp_yield(void)
{
#if CYMLP_WIN32
    SwitchToThread();
#else
    sched_yield();
#endif
}

#if !CYMLP_WIN32 && defined(RUSAGE_THREAD)
#define CYMLP_RUSAGE_THREAD RUSAGE_THREAD
#elif defined(__linux__)
#define CYMLP_RUSAGE_THREAD 1  /* the kernel's value, if the libc hid the name */
#endif
#if defined(CYMLP_RUSAGE_THREAD) && !defined(CYMLP_FORCE_NO_PREEMPTION_COUNT)
#define CYMLP_HAVE_PREEMPTION_COUNT 1
#else
#define CYMLP_HAVE_PREEMPTION_COUNT 0
#endif

/* The calling thread's involuntary context switches so far (0 where not
 * counted: see CYMLP_HAVE_PREEMPTION_COUNT). */
static inline long cymlp_thread_preemptions(void)
{
#if CYMLP_HAVE_PREEMPTION_COUNT
    struct rusage ru;
    if (getrusage(CYMLP_RUSAGE_THREAD, &ru) == 0)
        return ru.ru_nivcsw;
#endif
    return 0;
}

/* ------------------------------------------------------------------------
 * Fork.
 * ---------------------------------------------------------------------- */

/* Run `child` in the child of every later fork: 0, or an errno value.
 * Windows has no fork: nothing to do. */
static inline int cymlp_at_fork_child(void (*child)(void))
{
#if CYMLP_WIN32
    (void)child;
    return 0;
#else
    return pthread_atfork(NULL, NULL, child);
#endif
}

#endif
