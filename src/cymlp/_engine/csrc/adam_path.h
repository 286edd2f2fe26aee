/* Which way Adam's step takes to its quotient, and the step that takes it.
 *
 * The ways (paths): the divider (the square root and division instructions,
 * optimizer_steps.h); no divider at all (FMA: exact_quotient.h's estimates
 * and exact rounding tests); the FMA square root with the divider's division
 * (HYBRID: where division is cheap and the square root is not); each of the
 * last two in AVX-512 and in AVX2 code. All give the same bits (proved in
 * exact_quotient.h, tested bit for bit), so the choice is speed alone: it is
 * measured on this machine the first time it is needed, not when the module
 * is loaded (see cymlp_adam_select).
 */
#ifndef CYMLP_ADAM_PATH_H
#define CYMLP_ADAM_PATH_H

#include "attributes.h"

#include "platform.h"  /* first: it sets the C library's feature macros */

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "exact_quotient.h"
#include "optimizer_steps.h"

enum {
    CYMLP_PATH_AUTO = -1, CYMLP_PATH_DIVIDER = 0, CYMLP_PATH_FMA = 1, CYMLP_PATH_HYBRID = 2,
    CYMLP_PATH_FMA_AVX2 = 3, CYMLP_PATH_HYBRID_AVX2 = 4, CYMLP_N_PATHS = 5
};

static int cymlp_adam_path_f(void);
static int cymlp_adam_path_d(void);

/* code, where the FMA paths are compiled (GNU C on x86-64) */
#if CYMLP_HAVE_FMA_QUOTIENT
#define CYMLP_IF_FMA(code) code
#else
#define CYMLP_IF_FMA(code)
#endif

/* Whether this CPU runs a path (AUTO aside). */
CYMLP_UNUSED static int cymlp_adam_path_runs(int path)
{
    if (path == CYMLP_PATH_FMA || path == CYMLP_PATH_HYBRID)
        return cymlp_fma_quotient_supported();
    if (path == CYMLP_PATH_FMA_AVX2 || path == CYMLP_PATH_HYBRID_AVX2)
        return cymlp_avx2_quotient_supported();
    return path == CYMLP_PATH_DIVIDER;
}

/* Entry points of each dtype: the step (path CYMLP_PATH_AUTO: the one chosen
 * on first use), the quotients by any path (tests), and the timing of a
 * path on a small buffer (the choice). A path the CPU cannot run is the
 * divider's. */
#define CYMLP_ADAM_ENTRY(SUFFIX, SFX, T, SQRT)                                \
    CYMLP_UNUSED static int cymlp_adam_path_of_##SUFFIX(int path)                       \
    {                                                                         \
        if (path == CYMLP_PATH_AUTO)                                          \
            path = cymlp_adam_path_##SUFFIX();                                \
        return cymlp_adam_path_runs(path) ? path : CYMLP_PATH_DIVIDER;        \
    }                                                                         \
    CYMLP_UNUSED static void cymlp_adam_step_##SUFFIX(                                   \
        T *w, const T *g_raw, T *m, T *v, ptrdiff_t size, T alpha, T inv_n,   \
        T b1, T c1, T b2, T c2, T eps, T lr_t, double *sq, int path)          \
    {                                                                         \
        void (*step)(T *restrict, const T *restrict, T *restrict, T *restrict, \
                     ptrdiff_t, T, T, T, T, T, T, T, T, double *restrict) =    \
            cymlp_adam_divider_##SUFFIX;                                      \
        (void)path;  /* only the FMA paths (GNU C on x86-64) read it */      \
        CYMLP_IF_FMA(                                                         \
            switch (cymlp_adam_path_of_##SUFFIX(path)) {                      \
            case CYMLP_PATH_FMA: step = cymlp_adam_fma512_##SUFFIX; break;    \
            case CYMLP_PATH_HYBRID: step = cymlp_adam_hybrid512_##SUFFIX; break; \
            case CYMLP_PATH_FMA_AVX2: step = cymlp_adam_fma256_##SUFFIX; break; \
            case CYMLP_PATH_HYBRID_AVX2: step = cymlp_adam_hybrid256_##SUFFIX; break; \
            default: break;                                                   \
            }                                                                 \
        )                                                                     \
        step(w, g_raw, m, v, size, alpha, inv_n, b1, c1, b2, c2, eps, lr_t, sq); \
    }                                                                         \
    static inline void cymlp_adam_quotients_##SUFFIX(                         \
        const T *a, const T *v, T eps, T *out, ptrdiff_t n, int sqrt_only,    \
        int path)                                                             \
    {                                                                         \
        (void)path;  /* as above */                                           \
        CYMLP_IF_FMA(                                                         \
            path = cymlp_adam_path_of_##SUFFIX(path);                         \
            int how = sqrt_only ? CYMLP_SQRT_ONLY :                           \
                path == CYMLP_PATH_HYBRID || path == CYMLP_PATH_HYBRID_AVX2 ? \
                CYMLP_HW_DIVIDE : CYMLP_NO_DIVIDER;                           \
            if ((path == CYMLP_PATH_FMA || path == CYMLP_PATH_HYBRID) &&      \
                (sqrt_only || (eps >= 0 && eps <= CYMLP_EPS_HI_512##SFX))) {  \
                cymlp_fma_quotients512_##SFX(a, v, eps, out, n, how);         \
                return;                                                       \
            }                                                                 \
            if ((path == CYMLP_PATH_FMA_AVX2 || path == CYMLP_PATH_HYBRID_AVX2) && \
                (sqrt_only || (eps >= 0 && eps <= CYMLP_EPS_HI_256##SFX))) {  \
                cymlp_fma_quotients256_##SFX(a, v, eps, out, n, how);         \
                return;                                                       \
            }                                                                 \
        )                                                                     \
        for (ptrdiff_t i = 0; i < n; i++) {                                   \
            T s = SQRT(v[i]);                                                 \
            out[i] = sqrt_only ? s : a[i] / (s + eps);                        \
        }                                                                     \
    }                                                                         \
    /* Seconds of one step over the n parameters of buf by `path`. */         \
    CYMLP_UNUSED static double cymlp_adam_time_##SUFFIX(T *buf, ptrdiff_t n, int path)     \
    {                                                                         \
        double sq;                                                            \
        long long t0 = cymlp_nanoseconds();                                   \
        cymlp_adam_step_##SUFFIX(buf, buf + n, buf + 2 * n, buf + 3 * n, n,   \
                                 (T)1e-4, (T)(1.0 / 32), (T)0.9, (T)0.1,      \
                                 (T)0.999, (T)0.001, (T)1e-8, (T)1e-3, &sq, path); \
        return 1e-9 * (double)(cymlp_nanoseconds() - t0);                     \
    }                                                                         \
    /* The fastest path on this machine: a few steps of each over a buffer   \
     * that stays in the caches, interleaved, the best time of each kept.    \
     * Another path must beat the divider by 10%: a tie within the noise of a \
     * shared machine keeps the divider, so the choice does not flip. The    \
     * candidates are the widest set's (AVX-512, else AVX2). */              \
    CYMLP_UNUSED static int cymlp_adam_calibrate_##SUFFIX(void)                          \
    {                                                                         \
        enum { N_ = 4096, REPS_ = 6 };                                        \
        int paths[3] = {CYMLP_PATH_DIVIDER, CYMLP_PATH_FMA, CYMLP_PATH_HYBRID}; \
        double best[3] = {1e30, 1e30, 1e30};                                  \
        int chosen = 0;                                                       \
        if (!cymlp_fma_quotient_supported()) {                                \
            paths[1] = CYMLP_PATH_FMA_AVX2;                                   \
            paths[2] = CYMLP_PATH_HYBRID_AVX2;                                \
        }                                                                     \
        T *buf = (T *)malloc(4 * N_ * sizeof(T));                             \
        if (buf == NULL)                                                      \
            return CYMLP_PATH_DIVIDER;                                        \
        uint32_t x = 12345u;                                                  \
        for (ptrdiff_t i = 0; i < 4 * N_; i++) {                              \
            x = x * 1664525u + 1013904223u;  /* weights, gradients: +-0.1 */  \
            buf[i] = i < 2 * N_ ? (T)((double)x / 4294967296.0 - 0.5) * (T)0.2 : (T)0; \
        }                                                                     \
        for (int r = 0; r < REPS_; r++) {                                     \
            for (int k = 0; k < 3; k++) {                                     \
                double t = cymlp_adam_time_##SUFFIX(buf, N_, paths[k]);       \
                best[k] = t < best[k] ? t : best[k];                          \
            }                                                                 \
        }                                                                     \
        free(buf);                                                            \
        for (int k = 1; k < 3; k++)                                           \
            if (best[k] < 0.9 * best[0] && best[k] < best[chosen])            \
                chosen = k;                                                   \
        return cymlp_adam_path_of_##SUFFIX(paths[chosen]);                    \
    }

CYMLP_ADAM_ENTRY(d, pd, double, sqrt)
CYMLP_ADAM_ENTRY(f, ps, float, sqrtf)

/* The choice, made once per process on first use: the first Adam step with
 * path AUTO, or the first query (cymlp_adam_path_f/d, cymlp_adam_select).
 * The environment variable CYMLP_ADAM_DIVIDER=1 forces the divider, =0 the
 * FMA path (no divider at all), =hybrid the FMA square root and the
 * divider's division (each in AVX-512 where the CPU has it, else in AVX2);
 * otherwise the fastest on this machine.
 *
 * Both dtypes' paths are published together, in one atomic int (path_d +
 * CYMLP_N_PATHS * path_f; -1 before the choice): the first to publish wins,
 * and every thread uses what was published. The threads of a team may all
 * reach their first step at once: one calibrates (about a millisecond),
 * the others wait for it -- for at most CYMLP_ADAM_WAIT_NS, after which
 * they calibrate too and publish (or take) the first result: a waiter
 * never hangs, also not in the child of a fork that happened mid-choice
 * (the calibrating thread is not copied). Every path gives the same bits;
 * waiting only keeps the choice, and the timing, to one thread. */
#define CYMLP_ADAM_WAIT_NS 200000000LL

static cymlp_atomic_int cymlp_adam_paths = -1;
static cymlp_atomic_int cymlp_adam_choosing;  /* a thread is calibrating */

CYMLP_UNUSED static int cymlp_adam_choose(void)
{
    const char *force = getenv("CYMLP_ADAM_DIVIDER");
    int wide = cymlp_fma_quotient_supported(), f, d;
    if (!(wide || cymlp_avx2_quotient_supported()) || (force != NULL && strcmp(force, "1") == 0)) {
        f = d = CYMLP_PATH_DIVIDER;
    } else if (force != NULL && strcmp(force, "0") == 0) {
        f = d = wide ? CYMLP_PATH_FMA : CYMLP_PATH_FMA_AVX2;
    } else if (force != NULL && strcmp(force, "hybrid") == 0) {
        f = d = wide ? CYMLP_PATH_HYBRID : CYMLP_PATH_HYBRID_AVX2;
    } else {
        d = cymlp_adam_calibrate_d();
        f = cymlp_adam_calibrate_f();
    }
    return d + CYMLP_N_PATHS * f;
}

/* Both paths, packed as above (choosing them first if need be). */
CYMLP_UNUSED static int cymlp_adam_select(void)
{
    int paths = cymlp_load_int_acquire(&cymlp_adam_paths);
    int idle = 0, mine;
    if (paths >= 0)
        return paths;
    if (!cymlp_cas_int(&cymlp_adam_choosing, &idle, 1)) {
        long long until = cymlp_nanoseconds() + CYMLP_ADAM_WAIT_NS;
        do {  /* another thread is choosing */
            for (int i = 0; i < 1024; i++) {
                paths = cymlp_load_int_acquire(&cymlp_adam_paths);
                if (paths >= 0)
                    return paths;
                cymlp_pause();
            }
            cymlp_yield();
        } while (cymlp_nanoseconds() < until);
    }
    mine = cymlp_adam_choose();
    paths = -1;
    if (cymlp_cas_int(&cymlp_adam_paths, &paths, mine))
        paths = mine;
    return paths;
}

/* The path each dtype's step takes with CYMLP_PATH_AUTO (a CYMLP_PATH_*
 * other than AUTO). */
CYMLP_UNUSED static int cymlp_adam_path_d(void)
{
    return cymlp_adam_select() % CYMLP_N_PATHS;
}

CYMLP_UNUSED static int cymlp_adam_path_f(void)
{
    return cymlp_adam_select() / CYMLP_N_PATHS;
}

#endif
