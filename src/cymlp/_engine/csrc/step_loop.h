/* The loops the optimizer steps share (optimizer_steps.h, and the exact
 * quotient's steps in exact_quotient.h): the multiversioning attribute of
 * the streaming loops and the loop of a step with its sums of squares, in
 * one fixed order whatever the instruction set.
 *
 * CYMLP_MULTIVERSION: GCC's target_clones compiles a function for several
 * instruction sets (AVX-512, AVX2, baseline) and picks the best one when the
 * module is loaded; GCC on Linux x86_64 only (ifuncs), elsewhere the
 * baseline alone. vector_loops.h uses it too.
 */
#ifndef CYMLP_STEP_LOOP_H
#define CYMLP_STEP_LOOP_H

#include <stddef.h>

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

#endif
