/* The engine's BLAS: a private, single-threaded instance.
 *
 * The engine cuts every product into chunks fixed by the shapes and makes
 * each chunk one BLAS call on one thread: a multi-threaded BLAS call rounds
 * differently with its thread count (OpenBLAS blocks the summed dimension
 * differently when it threads), and the engine's results must not depend on
 * it. Yet the BLAS that numpy and scipy load is the user's: its thread count
 * is one process-wide setting (OpenBLAS's "per-thread" setter changes the
 * global count in its pthreads builds, the ones numpy and scipy ship), which
 * the user's own products, scipy's L-BFGS-B and threadpoolctl read. Changing
 * it for the engine, even for a moment, is visible to every other thread.
 *
 * So the engine calls its own copy of OpenBLAS (the scipy-openblas32
 * package's library, loaded once at import, cymlp/_blas_loader.py), held at
 * one thread, and never touches the user's. These pointers are set at import
 * and read-only after. */
#ifndef CYMLP_BLAS_H
#define CYMLP_BLAS_H

typedef void (*cymlp_sgemm_fn)(const char *ta, const char *tb, const int *m, const int *n,
                               const int *k, const float *alpha, const float *a,
                               const int *lda, const float *b, const int *ldb,
                               const float *beta, float *c, const int *ldc);
typedef void (*cymlp_dgemm_fn)(const char *ta, const char *tb, const int *m, const int *n,
                               const int *k, const double *alpha, const double *a,
                               const int *lda, const double *b, const int *ldb,
                               const double *beta, double *c, const int *ldc);
typedef float (*cymlp_sdot_fn)(const int *n, const float *x, const int *incx,
                               const float *y, const int *incy);
typedef double (*cymlp_ddot_fn)(const int *n, const double *x, const int *incx,
                                const double *y, const int *incy);
typedef int (*cymlp_get_threads_fn)(void);
typedef void (*cymlp_set_threads_fn)(int);

static cymlp_sgemm_fn cymlp_sgemm;
static cymlp_dgemm_fn cymlp_dgemm;
static cymlp_sdot_fn cymlp_sdot;
static cymlp_ddot_fn cymlp_ddot;
static cymlp_get_threads_fn cymlp_blas_get_threads;
static cymlp_set_threads_fn cymlp_blas_set_threads;

/* Hold the private BLAS at one thread. Nothing of cymlp sets it otherwise,
 * but threadpoolctl's limits reach every OpenBLAS loaded in the process, this
 * one too: an engine call puts it back to one thread before it starts (a
 * variable read when nothing changed; threadpoolctl restores what it found on
 * leaving its context, which is one thread again). */
static inline void cymlp_blas_hold_one_thread(void)
{
    if (cymlp_blas_get_threads() != 1)
        cymlp_blas_set_threads(1);
}

#endif
