/* The optimizer steps in plain C: SGD (with momentum, Nesterov's too) and
 * Adam by the divider (the square root and division instructions), each one
 * pass over the packed parameter buffer, for float and double. Adam's step
 * as the engine calls it, by the divider or the same bits without it, is
 * cymlp_adam_step_f/d in adam_path.h; the divider's steps here are its
 * reference and its fallback (exact_quotient.h).
 *
 * The arithmetic follows scikit-learn's order of operations (see
 * the engine's .pxd kernels); the build passes -ffp-contract=off so that no multiply-add
 * is fused into a differently rounded FMA.
 */
#ifndef CYMLP_OPTIMIZER_STEPS_H
#define CYMLP_OPTIMIZER_STEPS_H

#include "attributes.h"

#include <math.h>
#include <stddef.h>

#include "step_loop.h"

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
    CYMLP_MULTIVERSION CYMLP_UNUSED static void NAME(                                    \
        T *restrict w, const T *restrict g_raw, T *restrict velocity,        \
        ptrdiff_t size, T alpha, T inv_n, T lr, T mu, int nesterov,           \
        double *restrict sq)                                                  \
    {                                                                         \
        CYMLP_STEP_LOOP(T, NAME##_one(w, g_raw, velocity, idx, alpha, inv_n, lr,  \
                                   mu, nesterov))                             \
    }

/* Adam with the bias-corrected rate lr_t: m and v move toward g and g^2,
 * w -= lr_t m / (sqrt(v) + eps). These are the divider's steps; the engine
 * calls cymlp_adam_step_f/d (adam_path.h), which run them or the same
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
    CYMLP_MULTIVERSION CYMLP_UNUSED static void NAME(                                    \
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

#endif
