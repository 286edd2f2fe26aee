/* The optimizer steps in plain C: SGD (with momentum, Nesterov's too),
 * AdamW's decay pass, the gradient's squared norm (clipping) and
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

/* AdamW's decoupled weight decay (torch.optim.AdamW: p *= 1 - lr *
 * weight_decay, then Adam's update), as a pass before Adam's step, only when
 * the decay is on: the L2 term of the gradient is formed at the weights
 * before the decay, exactly as Adam's step forms it (g_raw + alpha w, in T),
 * and kept in g_raw; then w *= decay. Adam's step then runs with alpha 0:
 * (g_raw + 0 w) is g_raw, so its bits are those of the one fused update
 * w * decay + Adam's quotient, whichever path computes the quotient. */
#define CYMLP_DECAY_STEP(NAME, T)                                             \
    CYMLP_MULTIVERSION CYMLP_UNUSED static void NAME(                         \
        T *restrict w, T *restrict g_raw, ptrdiff_t size, T alpha, T decay)   \
    {                                                                         \
        if (alpha != 0)                                                       \
            for (ptrdiff_t i = 0; i < size; i++)                              \
                g_raw[i] = g_raw[i] + alpha * w[i];                           \
        for (ptrdiff_t i = 0; i < size; i++)                                  \
            w[i] = w[i] * decay;                                              \
    }

/* The squared norm of the gradient a step sees, (g_raw + alpha w) * inv_n
 * element by element in T as the steps form it, for clipping by the global
 * norm (torch.nn.utils.clip_grad_norm_). The squares are summed in double,
 * in the fixed lanes of CYMLP_STEP_LOOP (an order set by the extent alone),
 * so that a float32 gradient's square cannot overflow. */
#define CYMLP_GRAD_SQ(NAME, T)                                                \
    static inline double NAME##_one(                                          \
        const T *restrict w, const T *restrict g_raw, ptrdiff_t i, T alpha,   \
        T inv_n)                                                              \
    {                                                                         \
        return (double)((g_raw[i] + alpha * w[i]) * inv_n);                   \
    }                                                                         \
    CYMLP_MULTIVERSION CYMLP_UNUSED static void NAME(                         \
        const T *restrict w, const T *restrict g_raw, ptrdiff_t size,         \
        T alpha, T inv_n, double *restrict sq)                                \
    {                                                                         \
        CYMLP_STEP_LOOP(double, NAME##_one(w, g_raw, idx, alpha, inv_n))      \
    }

CYMLP_SGD_STEP(cymlp_sgd_step_f, float)
CYMLP_SGD_STEP(cymlp_sgd_step_d, double)
CYMLP_ADAM_STEP(cymlp_adam_divider_f, float, sqrtf)
CYMLP_ADAM_STEP(cymlp_adam_divider_d, double, sqrt)
CYMLP_DECAY_STEP(cymlp_decay_step_f, float)
CYMLP_DECAY_STEP(cymlp_decay_step_d, double)
CYMLP_GRAD_SQ(cymlp_grad_sq_f, float)
CYMLP_GRAD_SQ(cymlp_grad_sq_d, double)

#endif
