/* Streaming loops over whole buffers: the optimizer steps (one pass over the
 * packed parameter buffer), the elementwise passes of every minibatch that
 * need no function from a math library (bias + ReLU, the bias alone, the
 * derivatives of ReLU, tanh and the logistic, the bias gradient's column
 * sums) and the finiteness check of predict's input.
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

/* The optimizer steps can also return the sum of squares of the weights they
 * write (sq != NULL): the L2 penalty of the next minibatch's loss, folded into
 * the pass that already streams the weights, instead of a second pass.
 *
 * The squares are added in CYMLP_SQ_LANES running sums: element i of the call
 * goes to sum i % CYMLP_SQ_LANES. Each sum runs in the weights' dtype (a
 * float32 vector holds twice as many lanes as a conversion to double would)
 * over blocks of CYMLP_SQ_BLOCK elements, then is added to a double total per
 * lane, so that float32 sums stay accurate over millions of weights; the
 * lanes are combined in one fixed tree at the end. The order is written out
 * in the source, so every clone (AVX-512, AVX2, baseline) gives the same bits
 * (no -ffast-math reassociation is needed for the lanes to vectorize), and it
 * depends only on the call's extent, which the engine fixes by the shapes. */
#define CYMLP_SQ_LANES 16
#define CYMLP_SQ_BLOCK (64 * CYMLP_SQ_LANES)

static inline double cymlp_lane_total(const double *acc)
{
    double half[CYMLP_SQ_LANES / 2];
    for (int k = 0; k < CYMLP_SQ_LANES / 2; k++)  /* a fixed pairwise tree */
        half[k] = acc[2 * k] + acc[2 * k + 1];
    return ((half[0] + half[1]) + (half[2] + half[3])) +
           ((half[4] + half[5]) + (half[6] + half[7]));
}

/* The loop of a step over w[0:size] of dtype T: UPDATE, an expression in
 * `idx`, writes element idx and yields its new value. With sq, also the sums
 * of the squares (see above); the loop without them is kept apart, as it
 * was. The names the macros declare end in '_' (idx aside): none may be a
 * name that UPDATE reads. */
#define CYMLP_STEP_LOOP(T, UPDATE)                                            \
    if (sq == NULL) {                                                         \
        for (ptrdiff_t idx = 0; idx < size; idx++) {                          \
            (void)(UPDATE);                                                   \
        }                                                                     \
        return;                                                               \
    }                                                                         \
    CYMLP_SQ_LOOP(T, CYMLP_SQ_LANES,                                          \
        for (int k_ = 0; k_ < CYMLP_SQ_LANES; k_++) {                         \
            ptrdiff_t idx = i0_ + k_;                                         \
            T wk_ = (UPDATE);                                                 \
            part_[k_] += wk_ * wk_;                                           \
        },                                                                    \
        UPDATE)

/* The sums of squares' loop: BLOCK updates the WIDTH elements from i0_ (a
 * multiple of CYMLP_SQ_LANES dividing CYMLP_SQ_BLOCK) and adds the square of
 * element i0_ + k to part_[k % CYMLP_SQ_LANES], in the order of k; the
 * elements after the last whole block take UPDATE. */
#define CYMLP_SQ_LOOP(T, WIDTH, BLOCK, UPDATE)                                       \
    double acc_[CYMLP_SQ_LANES] = {0};                                        \
    for (ptrdiff_t lo_ = 0; lo_ < size; lo_ += CYMLP_SQ_BLOCK) {              \
        ptrdiff_t hi_ = size - lo_ < CYMLP_SQ_BLOCK ? size : lo_ + CYMLP_SQ_BLOCK; \
        T part_[CYMLP_SQ_LANES] = {0};                                        \
        ptrdiff_t i0_ = lo_;                                                  \
        for (; i0_ + (WIDTH) <= hi_; i0_ += (WIDTH)) {                        \
            BLOCK;                                                            \
        }                                                                     \
        for (int k_ = 0; i0_ + k_ < hi_; k_++) {                              \
            ptrdiff_t idx = i0_ + k_;                                         \
            T wk_ = (UPDATE);                                                 \
            part_[k_ % CYMLP_SQ_LANES] += wk_ * wk_;                          \
        }                                                                     \
        for (int k_ = 0; k_ < CYMLP_SQ_LANES; k_++)                           \
            acc_[k_] += (double)part_[k_];                                    \
    }                                                                         \
    *sq = cymlp_lane_total(acc_);

/* SGD with (Nesterov) momentum. g = (g_raw + alpha w) * inv_n;
 * v = mu v - lr g; w += nesterov ? mu v - lr g : v. */
#define CYMLP_SGD_STEP(NAME, T)                                               \
    static inline T NAME##_one(                                               \
        T *restrict w, const T *restrict g_raw, T *restrict velocity,        \
        ptrdiff_t i, T alpha, T inv_n, T lr, T mu, int nesterov)              \
    {                                                                         \
        T g = (g_raw[i] + alpha * w[i]) * inv_n;                              \
        T v = mu * velocity[i] - lr * g;                                      \
        velocity[i] = v;                                                      \
        return w[i] = w[i] + (nesterov ? mu * v - lr * g : v);                \
    }                                                                         \
    CYMLP_MULTIVERSION static void NAME(                                      \
        T *restrict w, const T *restrict g_raw, T *restrict velocity,        \
        ptrdiff_t size, T alpha, T inv_n, T lr, T mu, int nesterov,           \
        double *restrict sq)                                                  \
    {                                                                         \
        CYMLP_STEP_LOOP(T, NAME##_one(w, g_raw, velocity, idx, alpha, inv_n, lr,  \
                                   mu, nesterov))                             \
    }

/* Adam with the bias-corrected rate lr_t: m and v move toward g and g^2,
 * w -= lr_t m / (sqrt(v) + eps). These are the divider's steps; the engine
 * calls cymlp_adam_step_f/d (_exact_quotient.h), which run them or the same
 * arithmetic without the divider, whichever is faster here. */
#define CYMLP_ADAM_STEP(NAME, T, SQRT)                                        \
    static inline T NAME##_one(                                               \
        T *restrict w, const T *restrict g_raw, T *restrict m,               \
        T *restrict v, ptrdiff_t i, T alpha, T inv_n, T b1, T c1,             \
        T b2, T c2, T eps, T lr_t)                                            \
    {                                                                         \
        T g = (g_raw[i] + alpha * w[i]) * inv_n;                              \
        T mi = b1 * m[i] + c1 * g;                                            \
        T vi = b2 * v[i] + c2 * (g * g);                                      \
        m[i] = mi;                                                            \
        v[i] = vi;                                                            \
        return w[i] = w[i] + (-lr_t * mi) / (SQRT(vi) + eps);                 \
    }                                                                         \
    CYMLP_MULTIVERSION static void NAME(                                      \
        T *restrict w, const T *restrict g_raw, T *restrict m,               \
        T *restrict v, ptrdiff_t size, T alpha, T inv_n, T b1, T c1,          \
        T b2, T c2, T eps, T lr_t, double *restrict sq)                       \
    {                                                                         \
        CYMLP_STEP_LOOP(T, NAME##_one(w, g_raw, m, v, idx, alpha, inv_n, b1, c1,  \
                                   b2, c2, eps, lr_t))                        \
    }

CYMLP_SGD_STEP(cymlp_sgd_step_f, float)
CYMLP_SGD_STEP(cymlp_sgd_step_d, double)
CYMLP_ADAM_STEP(cymlp_adam_divider_f, float, sqrtf)
CYMLP_ADAM_STEP(cymlp_adam_divider_d, double, sqrt)

#include "_exact_quotient.h"

/* The elementwise passes. Each is the same expression as the Cython kernel
 * it serves (see _kernels.pxd for the reasoning), element by element, so the
 * results do not depend on the vector width: no sum is reassociated (the
 * column sums run down each column, vectorised across columns). */

/* z = F(z + bias) over rows x cols, for F the identity (the bias alone) or
 * ReLU as numpy's maximum(v, 0): `v < 0 ? 0 : v` keeps a NaN. */
#define CYMLP_BIAS_PASS(NAME, T, F)                                           \
    CYMLP_MULTIVERSION static void NAME(                                      \
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
#define CYMLP_IDENTITY(v) (v)
#define CYMLP_RELU(v) ((v) < 0 ? 0 : (v))

/* delta *= f'(z) from a = f(z): kind 0 ReLU (a select, 0 where a == 0),
 * 1 tanh (1 - a^2), 2 logistic (a, then 1 - a: two roundings, as sklearn). */
#define CYMLP_DERIVATIVE(NAME, T)                                             \
    CYMLP_MULTIVERSION static void NAME(                                      \
        const T *restrict a, T *restrict delta, ptrdiff_t n, int kind)        \
    {                                                                         \
        if (kind == 0) {                                                      \
            for (ptrdiff_t i = 0; i < n; i++)                                 \
                delta[i] = a[i] == 0 ? (T)0 : delta[i];                       \
        } else if (kind == 1) {                                               \
            for (ptrdiff_t i = 0; i < n; i++)                                 \
                delta[i] = delta[i] * (1 - a[i] * a[i]);                      \
        } else {                                                              \
            for (ptrdiff_t i = 0; i < n; i++) {                               \
                T d = delta[i] * a[i];                                        \
                delta[i] = d * (1 - a[i]);                                    \
            }                                                                 \
        }                                                                     \
    }

/* out = the column sums of rows x cols (rows ld apart), each column added
 * row after row, as numpy sums axis 0. */
#define CYMLP_COLUMN_SUMS(NAME, T)                                            \
    CYMLP_MULTIVERSION static void NAME(                                      \
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

CYMLP_BIAS_PASS(cymlp_bias_relu_f, float, CYMLP_RELU)
CYMLP_BIAS_PASS(cymlp_bias_relu_d, double, CYMLP_RELU)
CYMLP_BIAS_PASS(cymlp_add_bias_f, float, CYMLP_IDENTITY)
CYMLP_BIAS_PASS(cymlp_add_bias_d, double, CYMLP_IDENTITY)
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
