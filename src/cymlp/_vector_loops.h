/* Streaming loops over whole buffers: the optimizer steps (one pass over the
 * packed parameter buffer) and the finiteness check of predict's input.
 *
 * These are the only kernels written in C rather than Cython, for one reason:
 * they are pure streaming loops over up to millions of values, and pay
 * off from wide vector instructions (AVX2, AVX-512) that a portable wheel
 * cannot assume. GCC's target_clones compiles each function for several
 * instruction sets and picks the best one when the module is loaded.
 *
 * The arithmetic follows scikit-learn's order of operations (see
 * _kernels.pxd); the build passes -ffp-contract=off so that no multiply-add
 * is fused into a differently rounded FMA.
 */
#ifndef CYMLP_VECTOR_LOOPS_H
#define CYMLP_VECTOR_LOOPS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define CYMLP_MULTIVERSION \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CYMLP_MULTIVERSION
#endif

/* SGD with (Nesterov) momentum. g = (g_raw + alpha w) * inv_n;
 * v = mu v - lr g; w += nesterov ? mu v - lr g : v. */
#define CYMLP_SGD_STEP(NAME, T)                                               \
    CYMLP_MULTIVERSION static void NAME(                                      \
        T *restrict w, const T *restrict g_raw, T *restrict velocity,        \
        ptrdiff_t size, T alpha, T inv_n, T lr, T mu, int nesterov)           \
    {                                                                         \
        for (ptrdiff_t i = 0; i < size; i++) {                                \
            T g = (g_raw[i] + alpha * w[i]) * inv_n;                          \
            T v = mu * velocity[i] - lr * g;                                  \
            velocity[i] = v;                                                  \
            w[i] = w[i] + (nesterov ? mu * v - lr * g : v);                   \
        }                                                                     \
    }

/* Adam with the bias-corrected rate lr_t: m and v move toward g and g^2,
 * w -= lr_t m / (sqrt(v) + eps). */
#define CYMLP_ADAM_STEP(NAME, T, SQRT)                                        \
    CYMLP_MULTIVERSION static void NAME(                                      \
        T *restrict w, const T *restrict g_raw, T *restrict m,               \
        T *restrict v, ptrdiff_t size, T alpha, T inv_n, T b1, T c1,          \
        T b2, T c2, T eps, T lr_t)                                            \
    {                                                                         \
        for (ptrdiff_t i = 0; i < size; i++) {                                \
            T g = (g_raw[i] + alpha * w[i]) * inv_n;                          \
            T mi = b1 * m[i] + c1 * g;                                        \
            T vi = b2 * v[i] + c2 * (g * g);                                  \
            m[i] = mi;                                                        \
            v[i] = vi;                                                        \
            w[i] = w[i] + (-lr_t * mi) / (SQRT(vi) + eps);                    \
        }                                                                     \
    }

CYMLP_SGD_STEP(cymlp_sgd_step_f, float)
CYMLP_SGD_STEP(cymlp_sgd_step_d, double)
CYMLP_ADAM_STEP(cymlp_adam_step_f, float, sqrtf)
CYMLP_ADAM_STEP(cymlp_adam_step_d, double, sqrt)

/* 1 if all n values are finite, else 0. A value is NaN or infinite exactly
 * when all its exponent bits are set: an integer test, so no floating-point
 * exception, no slow path for subnormals, and a branch-free loop that
 * vectorizes (memcpy is how C reads a float's bits without aliasing UB; the
 * compiler turns it into a plain load). */
#define CYMLP_ALL_FINITE(NAME, T, U, EXPONENT)                                \
    CYMLP_MULTIVERSION static int NAME(const T *restrict x, ptrdiff_t n)      \
    {                                                                         \
        U bad = 0;                                                            \
        for (ptrdiff_t i = 0; i < n; i++) {                                   \
            U bits;                                                           \
            memcpy(&bits, x + i, sizeof bits);                                \
            bad |= (U)((bits & EXPONENT) == EXPONENT);                        \
        }                                                                     \
        return bad == 0;                                                      \
    }

CYMLP_ALL_FINITE(cymlp_all_finite_f, float, uint32_t, UINT32_C(0x7f800000))
CYMLP_ALL_FINITE(cymlp_all_finite_d, double, uint64_t, UINT64_C(0x7ff0000000000000))

#endif
