/* Streaming loops over whole buffers: the elementwise passes of every
 * minibatch that need no function from a math library (bias + ReLU, the
 * bias alone, the derivatives of ReLU, tanh and the logistic, the bias
 * gradient's column sums) and the finiteness check of predict's input. (The
 * optimizer steps, the other streaming loops: optimizer_steps.h.)
 *
 * These and the steps are the only kernels written in C rather than
 * Cython, for one reason: they are pure streaming loops over up to millions
 * of values, and pay off from wide vector instructions (AVX2, AVX-512) that
 * a portable wheel cannot assume. GCC's target_clones compiles each
 * function for several instruction sets and picks the best one when the
 * module is loaded (CYMLP_MULTIVERSION, step_loop.h).
 *
 * The arithmetic follows scikit-learn's order of operations (see
 * the engine's .pxd kernels); the build passes -ffp-contract=off so that no multiply-add
 * is fused into a differently rounded FMA.
 */
#ifndef CYMLP_VECTOR_LOOPS_H
#define CYMLP_VECTOR_LOOPS_H

#include "attributes.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "step_loop.h"
#include "vocabulary.h"

/* The elementwise passes. Each is the same expression as the Cython kernel
 * it serves (see _engine/activations.pxd and
 * optimizers.pxd for the reasoning), element by element, so the
 * results do not depend on the vector width: no sum is reassociated (the
 * column sums run down each column, vectorised across columns). */

/* z = F(z + bias) over rows x cols, for F the identity (the bias alone) or
 * ReLU as numpy's maximum(v, 0): `v < 0 ? 0 : v` keeps a NaN. */
#define CYMLP_BIAS_PASS(NAME, T, F)                                           \
    CYMLP_MULTIVERSION CYMLP_UNUSED static void NAME(                                    \
        T *restrict z, const T *restrict bias, ptrdiff_t rows, ptrdiff_t cols) \
    {                                                                         \
        for (ptrdiff_t i = 0; i < rows; i++) {                                \
            T *restrict row = z + i * cols;                                   \
            for (ptrdiff_t j = 0; j < cols; j++) {                            \
                T v = row[j] + bias[j];                                       \
                row[j] = F(v);                                                \
            }                                                                 \
        }                                                                     \
    }
/* (not CYMLP_RELU, CYMLP_IDENTITY: those are the vocabulary's codes) */
#define CYMLP_IDENTITY_OF(v) (v)
#define CYMLP_RELU_OF(v) ((v) < 0 ? 0 : (v))

/* delta *= f'(z) from a = f(z), for the activation of vocabulary code act:
 * CYMLP_RELU (a select, 0 where a == 0), CYMLP_TANH (1 - a^2), or
 * CYMLP_LOGISTIC (a, then 1 - a: two roundings, as sklearn); any other code
 * is the caller's mistake and leaves delta as it is. */
#define CYMLP_DERIVATIVE(NAME, T)                                             \
    CYMLP_MULTIVERSION CYMLP_UNUSED static void NAME(                                    \
        const T *restrict a, T *restrict delta, ptrdiff_t n, int act)         \
    {                                                                         \
        if (act == CYMLP_RELU) {                                              \
            for (ptrdiff_t i = 0; i < n; i++)                                 \
                delta[i] = a[i] == 0 ? (T)0 : delta[i];                       \
        } else if (act == CYMLP_TANH) {                                       \
            for (ptrdiff_t i = 0; i < n; i++)                                 \
                delta[i] = delta[i] * (1 - a[i] * a[i]);                      \
        } else if (act == CYMLP_LOGISTIC) {                                   \
            for (ptrdiff_t i = 0; i < n; i++) {                               \
                T d = delta[i] * a[i];                                        \
                delta[i] = d * (1 - a[i]);                                    \
            }                                                                 \
        }                                                                     \
    }

/* out = the column sums of rows x cols (rows ld apart), each column added
 * row after row, as numpy sums axis 0. */
#define CYMLP_COLUMN_SUMS(NAME, T)                                            \
    CYMLP_MULTIVERSION CYMLP_UNUSED static void NAME(                                    \
        const T *restrict a, T *restrict out, ptrdiff_t rows, ptrdiff_t cols, \
        ptrdiff_t ld)                                                         \
    {                                                                         \
        for (ptrdiff_t j = 0; j < cols; j++)                                  \
            out[j] = a[j];                                                    \
        for (ptrdiff_t i = 1; i < rows; i++) {                                \
            const T *restrict row = a + i * ld;                               \
            for (ptrdiff_t j = 0; j < cols; j++)                              \
                out[j] = out[j] + row[j];                                     \
        }                                                                     \
    }

CYMLP_BIAS_PASS(cymlp_bias_relu_f, float, CYMLP_RELU_OF)
CYMLP_BIAS_PASS(cymlp_bias_relu_d, double, CYMLP_RELU_OF)
CYMLP_BIAS_PASS(cymlp_add_bias_f, float, CYMLP_IDENTITY_OF)
CYMLP_BIAS_PASS(cymlp_add_bias_d, double, CYMLP_IDENTITY_OF)
CYMLP_DERIVATIVE(cymlp_derivative_f, float)
CYMLP_DERIVATIVE(cymlp_derivative_d, double)
CYMLP_COLUMN_SUMS(cymlp_column_sums_f, float)
CYMLP_COLUMN_SUMS(cymlp_column_sums_d, double)

/* 1 if all n values are finite, else 0. A value is NaN or infinite exactly
 * when all its exponent bits are set: an integer test, so no floating-point
 * exception, no slow path for subnormals, and a branch-free loop that
 * vectorizes (memcpy is how C reads a float's bits without aliasing UB; the
 * compiler turns it into a plain load). */
#define CYMLP_ALL_FINITE(NAME, T, U, EXPONENT)                                \
    CYMLP_MULTIVERSION CYMLP_UNUSED static int NAME(const T *restrict x, ptrdiff_t n)      \
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
