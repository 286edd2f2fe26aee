/* Adam's quotient q = RN(a / RN(RN(sqrt(v)) + eps)) without the divider.
 *
 * Adam's step costs a square root and a division per parameter, and on most
 * x86 cores those two instructions, not the multiplies, bound the step. This
 * file computes the same quotient, bit for bit, from the reciprocal and
 * reciprocal square root estimates of AVX-512 (rcp14, rsqrt14: relative error
 * below 2^-14, the bound the instruction set documents), refined with fused
 * multiply-adds, and ends each of the two operations with an exact test that
 * picks the correctly rounded result. Which of the two ways (divider or this)
 * is faster depends on the core, so the choice is measured on first use
 * (adam_path.h, which also dispatches the step); both give the same bits.
 *
 * Notation: p the precision (53 for double, 24 for float), RN round to
 * nearest even, RZ round toward zero (AVX-512's per-instruction rounding,
 * _MM_FROUND_TO_ZERO: it changes that one rounding and nothing else), u(x)
 * the unit in the last place of a positive float x (x in [2^k, 2^(k+1)):
 * u(x) = 2^(k-p+1) > x 2^-p), x+ the next float away from zero (the bit
 * pattern plus one). rho_i are roundings, |rho_i| <= 2^-p.
 *
 * Lemma R (how a rounding is decided exactly). Let f > 0 be a float, f+ its
 * successor and F > 0 an exact value.
 *   (a) Square root, F = sqrt(v): v - ((f + f+)/2)^2 = (v - f f+) - u(f)^2/4,
 *       and v - f f+ is an integer multiple of u(f) u(f+) >= u(f)^2 (v is a
 *       multiple of it whenever no underflow occurs). So sqrt(v) lies above
 *       the midpoint of f and f+ iff v - f f+ > 0, and never on it. One FMA
 *       gives RN(v - f f+), and RN keeps the sign of a nonzero value unless
 *       it underflows to zero, excluded below.
 *   (b) Division, F = a/d (d > 0): the residuals R = a - d f and R+ = a - d f+
 *       are exactly representable when F lies between f and f+ (their
 *       magnitude is below d u(f) <= 2^p u(d) u(f), and both are multiples
 *       of u(d) u(f): the classic remainder argument, Boldo and Daumas 2003;
 *       Muller et al., Handbook of Floating-Point Arithmetic, 2018, sec. 4.8).
 *       Then a - d (f + f+)/2 = (R + R+)/2, and F > midpoint iff R + R+ > 0
 *       (a < 0: the signs flip, so "away from zero" iff R + R+ has a's
 *       sign). It is never 0: a quotient of two p-bit numbers is no
 *       midpoint (the odd (p+1)-bit significand of a midpoint times d's
 *       integral significand has an odd part wider than a's). When F is
 *       outside [f, f+], R and R+ have the same sign and RN keeps it, so the
 *       test still answers correctly (F < f: keep f; F > f+: take f+).
 *   (c) Candidate: if z is any value with |z - F| < F 2^-(p+2) and f = RZ(z),
 *       then RN(F) is f or f+. (F >= f - |z - F|, which is less than half
 *       the gap below f; F < f+ + |z - F|, less than half the gap above f+;
 *       both gaps are at least u(z)/2 > z 2^-(p+1).) With a one-sided error
 *       z <= F (1 + tiny), the upper side needs only |z - F| < z 2^-(p+1).
 *
 * So each operation needs an approximation z inside those bounds, one
 * rounding RZ, and one test (a) or (b). This replaces the final steps of
 * Markstein (IBM J. Res. Dev. 34(1), 1990) and of Cornea, Harrison and Tang
 * (Scientific Computing on Itanium-based Systems, 2002), whose correct
 * rounding needs a correctly rounded reciprocal; the reciprocal iteration
 * gives one except for divisors whose significand is all ones. The exact
 * test has no such exception (the tests still cover those divisors).
 *
 * Square root (beta: the estimate's error, y0 = (1 + beta)/sqrt(v),
 * |beta| < 2^-14):
 *   float:  g = RN(v y0), h = y0/2, r = RN(v - g^2), z = g + r h. With
 *           g = sqrt(v)(1 + al), al = beta + rho1 + beta rho1:
 *           z/sqrt(v) = 1 - al^2/2 - (al + al^2/2)(rho + beta + rho beta),
 *           so z/sqrt(v) - 1 lies in [-1.5 beta^2 - 2^-37, 2^-37]: below
 *           -2^-27.4 is impossible, within (c) for p = 24 (2^-25, 2^-26).
 *   double: one more coupled Newton step first (e = RN(1/2 - g h),
 *           g1 = RN(g + g e), h1 = RN(h + h e)). Then g1 = sqrt(v)(1 + al),
 *           h1 = (1 + th)/(2 sqrt(v)) with al, th = -1.5 beta^2 + O(2^-52),
 *           and z/sqrt(v) - 1 = -al^2/2 - al th + O(2^-78), in
 *           [-3.375 beta^4 - 2^-78, 2^-78]: below -2^-54.24, one-sided, so
 *           within (c) for p = 53 (the upper side needs 2^-54).
 * Division (y0 = (1 + beta)/d):
 *   float:  q0 = RN(a y0) = Q(1 + ga), |ga| <= 2^-14 + 2^-23;
 *           r = RN(a - d q0) = -a ga (1 + rho); z = q0 + r y0 gives
 *           z/Q - 1 = -ga (rho + beta + rho beta), |.| < 2^-27.99 < 2^-26.
 *   double: y1 = RN(y0 + y0 RN(1 - d y0)) = (1 + et)/d, |et| < 2^-28 + 2^-52,
 *           then the same with y1: |z/Q - 1| < 2^-55.99 < 2^-55.
 *
 * The hypotheses (no overflow, no underflow, normal operands, so that every
 * rho is a relative rounding and every residual a nonzero multiple of a
 * representable unit) hold when, for double, 2^-960 <= v <= 2^960,
 * 2^-450 <= |a| <= 2^450 and 0 <= eps <= 2^400 (then sqrt(v) and d lie in
 * [2^-480, 2^481], |Q| in [2^-931, 2^930], the residual units above
 * |a| 2^-106 and v 2^-106 >= 2^-1066); for float, 2^-100 <= v <= 2^100,
 * 2^-60 <= |a| <= 2^60 and 0 <= eps <= 2^40 (|Q| in [2^-111, 2^110], units
 * above 2^-148). Every other lane -- v zero, subnormal, negative, huge, inf
 * or NaN; a zero (the sign of a zero quotient), tiny or huge; eps outside
 * its range (checked once per call) -- takes the IEEE square root and
 * division instead: one mask test per vector, and a blend when it fails.
 */
/* Without AVX-512 (the "-avx2" paths: AVX2 and FMA, for x86 CPUs before
 * AVX-512). Two things above do not carry over: AVX2 has no per-instruction
 * rounding, so there is no RZ candidate for (c), and its estimates rsqrtps
 * and rcpps are coarser (relative error at most 1.5 2^-12, Intel's
 * documented bound; 8 float lanes, no double form). The argument instead:
 *
 *   (c') If |z/F - 1| < 2^-(p+2) and f = RN(z), then RN(F) is f-, f or f+
 *        (f- the next float toward zero: the bit pattern minus one). Proof:
 *        z lies between the midpoints of (f-, f) and (f, f+); the gaps
 *        between the floats around z are all at least u(z)/2 > |z| 2^-(p+1)
 *        (one binade down, the gap halves, no further: f-- is above
 *        |z|/2), and |z - F| < |F| 2^-(p+2) < |z| 2^-(p+1). So F lies
 *        strictly inside (mid(f--, f-), mid(f+, f++)), whose roundings are
 *        f-, f and f+ (F is never a midpoint: (a), (b)).
 *   Decision: f+ iff F is beyond the midpoint of (f, f+), f- iff F is short
 *        of the midpoint of (f-, f), else f; each by the exact test of
 *        Lemma R for that pair, which holds for any pair of neighbours x,
 *        x+ (its unit argument uses u(x) only) and answers correctly also
 *        when F lies outside [x, x+] (the remark at the end of (b); for (a)
 *        it is the sign of v - x x+ itself). Both cannot hold at once, as
 *        the tests are exact and the midpoints ordered.
 *          square root: f+ iff RN(v - f f+) > 0, f- iff RN(v - f- f) <= 0
 *              (v = x x+ is possible: zero, and then sqrt(v) < mid(x, x+));
 *          division: f+ iff RN(R + R+) has a's sign, f- iff RN(R- + R)
 *              has the other sign (R- = a - d f-; never zero).
 *   Approximations, the same formulas as above with more Newton steps
 *        (float: one coupled step for the root, one reciprocal step for the
 *        quotient; double: two of each, its estimates computed on the value
 *        converted to float, which adds at most 2^-24 to the estimate's
 *        error). Bounds on |z/F - 1|, each a polynomial in the estimate's
 *        error and the roundings, bounded term by term after exact
 *        expansion (docs/exact_quotient_bounds.py; it also reproduces the
 *        AVX-512 numbers above):
 *          float:  square root < 2^-42.2, division < 2^-43.8 (need 2^-26;
 *                  one Newton step fewer gives 2^-22.2: too coarse);
 *          double: square root < 2^-87.2, division < 2^-91.2 (need 2^-55;
 *                  one step fewer: 2^-43.9).
 *   Domain: float as above (v in [2^-100, 2^100], |a| in [2^-60, 2^60],
 *        eps in [0, 2^40]); double v in [2^-120, 2^120] (its conversion to
 *        float stays normal: the estimate's bound needs a normal input),
 *        |a| in [2^-450, 2^450], eps in [0, 2^60] (d below 2^61, whose
 *        float reciprocal is normal). Inside them no operation overflows or
 *        underflows, the residuals' units are as in Lemma R (one ulp
 *        further from F changes none of them by more than a factor 2), and
 *        f-, f+ are normal floats. Every other lane takes the IEEE
 *        operations, as above.
 */
#ifndef CYMLP_EXACT_QUOTIENT_H
#define CYMLP_EXACT_QUOTIENT_H

#include "attributes.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "optimizer_steps.h"  /* the divider's steps: the fallback of every lane */
#include "step_loop.h"        /* CYMLP_SQ_LOOP: the same sums of squares */

#if defined(__GNUC__) && defined(__x86_64__)
#define CYMLP_HAVE_FMA_QUOTIENT 1
#include <immintrin.h>
/* Each instruction set's kernels are compiled for it alone and run only
 * where the CPU reports it. ISA, the vector width in bits (512, 256), names
 * a set's kernels (cymlp_sqrt512_pd), its intrinsics (_mm512_...) and its
 * target attribute, so that the code both sets share is written once. */
#define CYMLP_TARGET_512 __attribute__((target("avx512f,fma")))
#define CYMLP_TARGET_256 __attribute__((target("avx2,fma")))

CYMLP_UNUSED static int cymlp_fma_quotient_supported(void)
{
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
}

CYMLP_UNUSED static int cymlp_avx2_quotient_supported(void)
{
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* Vectors in flight: each quotient is a chain of some 25 dependent
 * operations, too long for the out-of-order window to overlap the next
 * vector's on its own, so every stage is written for CYMLP_NV independent
 * vectors in a row (the loops below unroll into interleaved code). */
#define CYMLP_NV 4
#define CYMLP_EACH(j) for (int j = 0; j < CYMLP_NV; j++)

enum { CYMLP_NO_DIVIDER = 0, CYMLP_HW_DIVIDE = 1, CYMLP_SQRT_ONLY = 2 };

/* The steps both sets share, on arrays of CYMLP_NV vectors. One coupled
 * Newton step of the square root (g ~ sqrt(v), h ~ 1/(2 sqrt(v)); see the
 * analysis above), with r a scratch array: */
#define CYMLP_SQRT_NEWTON(ISA, SFX, g, h, r, half)                            \
    CYMLP_EACH(j) r[j] = _mm##ISA##_fnmadd_##SFX(g[j], h[j], half);           \
    CYMLP_EACH(j) g[j] = _mm##ISA##_fmadd_##SFX(g[j], r[j], g[j]);            \
    CYMLP_EACH(j) h[j] = _mm##ISA##_fmadd_##SFX(h[j], r[j], h[j]);
/* one Newton step of the reciprocal y ~ 1/d: */
#define CYMLP_RCP_NEWTON(ISA, SFX, y, d, r)                                   \
    CYMLP_EACH(j) r[j] = _mm##ISA##_fnmadd_##SFX(d[j], y[j], _mm##ISA##_set1_##SFX(1)); \
    CYMLP_EACH(j) y[j] = _mm##ISA##_fmadd_##SFX(y[j], r[j], y[j]);
/* and the first quotient q = RN(a y) with its residual r = RN(a - d q). */
#define CYMLP_DIV_START(ISA, SFX, q, r, a, d, y)                              \
    CYMLP_EACH(j) q[j] = _mm##ISA##_mul_##SFX(a[j], y[j]);                    \
    CYMLP_EACH(j) r[j] = _mm##ISA##_fnmadd_##SFX(d[j], q[j], a[j]);

/* The AVX-512 kernels of one dtype: SFX the intrinsics' suffix (pd, ps),
 * V / M / EPI / BITS its vector, mask, integer lanes and their width, SIGN
 * the sign bit, and the domain of the proof as bit patterns: v in
 * [V_LO, V_LO + V_SPAN], |a| (shifted left one bit, dropping the sign) in
 * [A_LO2, A_LO2 + A_SPAN2]. */
#define CYMLP_EXACT_QUOTIENT_512(SFX, T, V, M, EPI, BITS, SIGN, V_LO, V_SPAN,  \
                                 A_LO2, A_SPAN2)                              \
    CYMLP_TARGET_512 static inline V cymlp_next512_##SFX(V x)                 \
    {                                                                         \
        return _mm512_castsi512_##SFX(                                        \
            _mm512_add_##EPI(_mm512_cast##SFX##_si512(x), _mm512_set1_##EPI(1))); \
    }                                                                         \
    /* s = RN(sqrt(v)) for v inside the domain (see above). */                \
    CYMLP_TARGET_512 static inline void cymlp_sqrt512_##SFX(V *restrict s, const V *restrict v) \
    {                                                                         \
        const V half = _mm512_set1_##SFX(0.5);                                \
        V y[CYMLP_NV], g[CYMLP_NV], h[CYMLP_NV], r[CYMLP_NV], up[CYMLP_NV];    \
        CYMLP_EACH(j) y[j] = _mm512_rsqrt14_##SFX(v[j]);                      \
        CYMLP_EACH(j) g[j] = _mm512_mul_##SFX(v[j], y[j]);                    \
        CYMLP_EACH(j) h[j] = _mm512_mul_##SFX(y[j], half);                    \
        if (sizeof(T) == 8) { /* 14 -> 28 bits; float needs no more */       \
            CYMLP_SQRT_NEWTON(512, SFX, g, h, r, half)                        \
        }                                                                     \
        CYMLP_EACH(j) r[j] = _mm512_fnmadd_##SFX(g[j], g[j], v[j]);           \
        CYMLP_EACH(j) s[j] = _mm512_fmadd_round_##SFX(                        \
            r[j], h[j], g[j], _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);        \
        CYMLP_EACH(j) up[j] = cymlp_next512_##SFX(s[j]);                      \
        CYMLP_EACH(j) s[j] = _mm512_mask_mov_##SFX(s[j], _mm512_cmp_##SFX##_mask( \
            _mm512_fnmadd_##SFX(s[j], up[j], v[j]), _mm512_setzero_##SFX(),   \
            _CMP_GT_OQ), up[j]);                                              \
    }                                                                         \
    /* q = RN(a / d) for d > 0 and a, d, a / d inside the domain. */          \
    CYMLP_TARGET_512 static inline void cymlp_div512_##SFX(                   \
        V *restrict q, const V *restrict a, const V *restrict d)              \
    {                                                                         \
        V y[CYMLP_NV], r[CYMLP_NV], away[CYMLP_NV];                           \
        CYMLP_EACH(j) y[j] = _mm512_rcp14_##SFX(d[j]);                        \
        if (sizeof(T) == 8) {                                                 \
            CYMLP_RCP_NEWTON(512, SFX, y, d, r)                               \
        }                                                                     \
        CYMLP_DIV_START(512, SFX, q, r, a, d, y)                              \
        CYMLP_EACH(j) q[j] = _mm512_fmadd_round_##SFX(                        \
            r[j], y[j], q[j], _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);        \
        CYMLP_EACH(j) away[j] = cymlp_next512_##SFX(q[j]);                    \
        CYMLP_EACH(j) r[j] = _mm512_add_##SFX(_mm512_fnmadd_##SFX(d[j], q[j], a[j]), \
                                              _mm512_fnmadd_##SFX(d[j], away[j], a[j])); \
        /* r xor (a's sign bit): positive iff r is nonzero with a's sign */   \
        CYMLP_EACH(j) r[j] = _mm512_castsi512_##SFX(_mm512_ternarylogic_epi64( \
            _mm512_cast##SFX##_si512(r[j]), _mm512_cast##SFX##_si512(a[j]),   \
            _mm512_set1_##EPI(SIGN), 0x78));                                  \
        CYMLP_EACH(j) q[j] = _mm512_mask_mov_##SFX(q[j], _mm512_cmp_##SFX##_mask( \
            r[j], _mm512_setzero_##SFX(), _CMP_GT_OQ), away[j]);              \
    }                                                                         \
    /* The lanes whose v and a lie in the proof's domain (an integer range    \
     * test on the bit patterns: a negative v or a NaN falls outside). */     \
    CYMLP_TARGET_512 static inline M cymlp_inside512_##SFX(V a, V v)          \
    {                                                                         \
        __m512i vb = _mm512_cast##SFX##_si512(v);                             \
        __m512i ab = _mm512_slli_##EPI(_mm512_cast##SFX##_si512(a), 1);       \
        M in_v = _mm512_cmple_epu##BITS##_mask(                               \
            _mm512_sub_##EPI(vb, _mm512_set1_##EPI(V_LO)), _mm512_set1_##EPI(V_SPAN)); \
        return _mm512_mask_cmple_epu##BITS##_mask(                            \
            in_v, _mm512_sub_##EPI(ab, _mm512_set1_##EPI(A_LO2)),             \
            _mm512_set1_##EPI(A_SPAN2));                                      \
    }                                                                         \
    static inline int cymlp_all512_##SFX(M in) { return in == (M)~(M)0; }     \
    /* q where `in`, else exact */                                            \
    CYMLP_TARGET_512 static inline V cymlp_keep512_##SFX(V exact, M in, V q)  \
    {                                                                         \
        return _mm512_mask_mov_##SFX(exact, in, q);                           \
    }

/* double: v in [2^-960, 2^960], |a| in [2^-450, 2^450]; 2^k's bits are
 * (k + 1023) << 52, and twice that with the sign shifted out. */
CYMLP_EXACT_QUOTIENT_512(pd, double, __m512d, __mmask8, epi64, 64, INT64_MIN,
                         (long long)(1023 - 960) << 52, (long long)(2 * 960) << 52,
                         (long long)(1023 - 450) << 53, (long long)(2 * 450) << 53)
/* float: v in [2^-100, 2^100], |a| in [2^-60, 2^60]; 2^k is (k + 127) << 23 */
CYMLP_EXACT_QUOTIENT_512(ps, float, __m512, __mmask16, epi32, 32, INT32_MIN,
                         (127 - 100) << 23, (2 * 100) << 23,
                         (int)((unsigned)(127 - 60) << 24), (2 * 60) << 24)

/* The AVX2 kernels of one dtype (the analysis "Without AVX-512" above):
 * SET1I(k) broadcasts an integer to EPI's lanes; NEWTON the Newton steps
 * after the 12-bit estimates (1 float, 2 double); the domain [V_MIN, V_MAX]
 * for v, [A_MIN, A_MAX] for |a|, tested as floating-point comparisons
 * (AVX2 has no unsigned ones; an ordered comparison is false for NaN). */
#define CYMLP_EXACT_QUOTIENT_256(SFX, T, V, EPI, SET1I, NEWTON, V_MIN, V_MAX, \
                                 A_MIN, A_MAX)                                \
    /* the float k places away from x (bit pattern plus k) */                 \
    CYMLP_TARGET_256 static inline V cymlp_next256_##SFX(V x, int k)          \
    {                                                                         \
        return _mm256_castsi256_##SFX(                                        \
            _mm256_add_##EPI(_mm256_cast##SFX##_si256(x), SET1I(k)));         \
    }                                                                         \
    /* s = RN(sqrt(v)) from a candidate s within one place of it (c') */     \
    CYMLP_TARGET_256 static inline void cymlp_sqrt_pick256_##SFX(V *restrict s, const V *restrict v) \
    {                                                                         \
        const V zero = _mm256_setzero_##SFX();                                \
        V r[CYMLP_NV], up[CYMLP_NV], down[CYMLP_NV];                          \
        CYMLP_EACH(j) up[j] = cymlp_next256_##SFX(s[j], 1);                   \
        CYMLP_EACH(j) down[j] = cymlp_next256_##SFX(s[j], -1);                \
        /* Lemma R (a) on each side: f- iff v - f- f <= 0, f+ iff            \
         * v - f f+ > 0 (both exact tests; they never hold together). */     \
        CYMLP_EACH(j) r[j] = _mm256_cmp_##SFX(                                \
            _mm256_fnmadd_##SFX(down[j], s[j], v[j]), zero, _CMP_LE_OQ);      \
        CYMLP_EACH(j) up[j] = _mm256_blendv_##SFX(s[j], up[j], _mm256_cmp_##SFX( \
            _mm256_fnmadd_##SFX(s[j], up[j], v[j]), zero, _CMP_GT_OQ));       \
        CYMLP_EACH(j) s[j] = _mm256_blendv_##SFX(up[j], down[j], r[j]);       \
    }                                                                         \
    /* q = RN(a / d) from a candidate q within one place of it (c') */       \
    CYMLP_TARGET_256 static inline void cymlp_div_pick256_##SFX(              \
        V *restrict q, const V *restrict a, const V *restrict d)              \
    {                                                                         \
        V toward[CYMLP_NV], r[CYMLP_NV], up[CYMLP_NV], down[CYMLP_NV];        \
        CYMLP_EACH(j) up[j] = cymlp_next256_##SFX(q[j], 1);                   \
        CYMLP_EACH(j) down[j] = cymlp_next256_##SFX(q[j], -1);                \
        /* Lemma R (b) on each side, the sign bit of (R' + R) xor a deciding  \
         * (blendv reads the sign bit alone; the sums are never zero): away  \
         * (f+) iff R + R+ has a's sign, toward zero (f-) iff R- + R has the \
         * other sign. */                                                    \
        CYMLP_EACH(j) r[j] = _mm256_fnmadd_##SFX(d[j], q[j], a[j]);           \
        CYMLP_EACH(j) toward[j] = _mm256_xor_##SFX(_mm256_add_##SFX(          \
            _mm256_fnmadd_##SFX(d[j], down[j], a[j]), r[j]), a[j]);           \
        CYMLP_EACH(j) r[j] = _mm256_xor_##SFX(_mm256_add_##SFX(               \
            r[j], _mm256_fnmadd_##SFX(d[j], up[j], a[j])), a[j]);             \
        CYMLP_EACH(j) q[j] = _mm256_blendv_##SFX(up[j], q[j], r[j]);          \
        CYMLP_EACH(j) q[j] = _mm256_blendv_##SFX(q[j], down[j], toward[j]);   \
    }                                                                         \
    /* s = RN(sqrt(v)) for v inside the domain: f = RN(z), then f-, f or f+ */ \
    CYMLP_TARGET_256 static inline void cymlp_sqrt256_##SFX(V *restrict s, const V *restrict v) \
    {                                                                         \
        const V half = _mm256_set1_##SFX(0.5);                                \
        V g[CYMLP_NV], h[CYMLP_NV], r[CYMLP_NV];                              \
        CYMLP_EACH(j) h[j] = cymlp_rsqrt256_##SFX(v[j]);                      \
        CYMLP_EACH(j) g[j] = _mm256_mul_##SFX(v[j], h[j]);                    \
        CYMLP_EACH(j) h[j] = _mm256_mul_##SFX(h[j], half);                    \
        for (int k = 0; k < NEWTON; k++) {                                    \
            CYMLP_SQRT_NEWTON(256, SFX, g, h, r, half)                        \
        }                                                                     \
        CYMLP_EACH(j) r[j] = _mm256_fnmadd_##SFX(g[j], g[j], v[j]);           \
        CYMLP_EACH(j) s[j] = _mm256_fmadd_##SFX(r[j], h[j], g[j]);            \
        cymlp_sqrt_pick256_##SFX(s, v);                                       \
    }                                                                         \
    /* q = RN(a / d) for d > 0 and a, d, a / d inside the domain. */          \
    CYMLP_TARGET_256 static inline void cymlp_div256_##SFX(                   \
        V *restrict q, const V *restrict a, const V *restrict d)              \
    {                                                                         \
        V y[CYMLP_NV], r[CYMLP_NV];                                           \
        CYMLP_EACH(j) y[j] = cymlp_rcp256_##SFX(d[j]);                        \
        for (int k = 0; k < NEWTON; k++) {                                    \
            CYMLP_RCP_NEWTON(256, SFX, y, d, r)                               \
        }                                                                     \
        CYMLP_DIV_START(256, SFX, q, r, a, d, y)                              \
        CYMLP_EACH(j) q[j] = _mm256_fmadd_##SFX(r[j], y[j], q[j]);            \
        cymlp_div_pick256_##SFX(q, a, d);                                     \
    }                                                                         \
    CYMLP_TARGET_256 static inline V cymlp_inside256_##SFX(V a, V v)          \
    {                                                                         \
        V mag = _mm256_andnot_##SFX(_mm256_set1_##SFX(-0.0), a);              \
        V in_v = _mm256_and_##SFX(                                            \
            _mm256_cmp_##SFX(v, _mm256_set1_##SFX(V_MIN), _CMP_GE_OQ),        \
            _mm256_cmp_##SFX(v, _mm256_set1_##SFX(V_MAX), _CMP_LE_OQ));       \
        V in_a = _mm256_and_##SFX(                                            \
            _mm256_cmp_##SFX(mag, _mm256_set1_##SFX(A_MIN), _CMP_GE_OQ),      \
            _mm256_cmp_##SFX(mag, _mm256_set1_##SFX(A_MAX), _CMP_LE_OQ));     \
        return _mm256_and_##SFX(in_v, in_a);                                  \
    }                                                                         \
    CYMLP_TARGET_256 static inline int cymlp_all256_##SFX(V in)               \
    {                                                                         \
        return _mm256_movemask_##SFX(in) == (1 << (sizeof(V) / sizeof(T))) - 1; \
    }                                                                         \
    CYMLP_TARGET_256 static inline V cymlp_keep256_##SFX(V exact, V in, V q)  \
    {                                                                         \
        return _mm256_blendv_##SFX(exact, q, in);                             \
    }

/* The estimates (relative error at most 1.5 2^-12, as Intel documents
 * rsqrtps and rcpps): float directly, double through a float (its domain
 * keeps the conversion in float's normal range). */
CYMLP_TARGET_256 static inline __m256 cymlp_rsqrt256_ps(__m256 v) { return _mm256_rsqrt_ps(v); }
CYMLP_TARGET_256 static inline __m256 cymlp_rcp256_ps(__m256 d) { return _mm256_rcp_ps(d); }
CYMLP_TARGET_256 static inline __m256d cymlp_rsqrt256_pd(__m256d v)
{
    return _mm256_cvtps_pd(_mm_rsqrt_ps(_mm256_cvtpd_ps(v)));
}
CYMLP_TARGET_256 static inline __m256d cymlp_rcp256_pd(__m256d d)
{
    return _mm256_cvtps_pd(_mm_rcp_ps(_mm256_cvtpd_ps(d)));
}

CYMLP_EXACT_QUOTIENT_256(pd, double, __m256d, epi64, _mm256_set1_epi64x, 2,
                         0x1p-120, 0x1p120, 0x1p-450, 0x1p450)
CYMLP_EXACT_QUOTIENT_256(ps, float, __m256, epi32, _mm256_set1_epi32, 1,
                         0x1p-100f, 0x1p100f, 0x1p-60f, 0x1p60f)

/* eps's range in each set's proof (checked once per call) */
#define CYMLP_EPS_HI_512pd 0x1p400
#define CYMLP_EPS_HI_512ps 0x1p40f
#define CYMLP_EPS_HI_256pd 0x1p60
#define CYMLP_EPS_HI_256ps 0x1p40f

/* q = a / (sqrt(v) + eps) as the IEEE operations round it, for
 * 0 <= eps <= CYMLP_EPS_HI; the square root alone with CYMLP_SQRT_ONLY, the
 * division by the divider with CYMLP_HW_DIVIDE. The lanes outside the
 * domain (rare: one mask test per block) take the IEEE operations. */
#define CYMLP_QUOTIENT(ISA, SFX, V, M)                                        \
    CYMLP_TARGET_##ISA static inline void cymlp_quotient##ISA##_##SFX(        \
        V *restrict q, const V *restrict a, const V *restrict v, V eps, int how) \
    {                                                                         \
        V d[CYMLP_NV];                                                        \
        M in[CYMLP_NV];                                                       \
        int all = 1;                                                          \
        cymlp_sqrt##ISA##_##SFX(d, v);                                        \
        if (how == CYMLP_SQRT_ONLY) {                                         \
            CYMLP_EACH(j) q[j] = d[j];                                        \
        } else {                                                              \
            CYMLP_EACH(j) d[j] = _mm##ISA##_add_##SFX(d[j], eps);             \
            if (how == CYMLP_HW_DIVIDE) {                                     \
                CYMLP_EACH(j) q[j] = _mm##ISA##_div_##SFX(a[j], d[j]);        \
            } else {                                                          \
                cymlp_div##ISA##_##SFX(q, a, d);                              \
            }                                                                 \
        }                                                                     \
        CYMLP_EACH(j) {                                                       \
            in[j] = cymlp_inside##ISA##_##SFX(a[j], v[j]);                    \
            all &= cymlp_all##ISA##_##SFX(in[j]);                             \
        }                                                                     \
        if (!all) {                                                           \
            CYMLP_EACH(j) {                                                   \
                V exact = _mm##ISA##_sqrt_##SFX(v[j]);                        \
                if (how != CYMLP_SQRT_ONLY)                                   \
                    exact = _mm##ISA##_div_##SFX(a[j], _mm##ISA##_add_##SFX(exact, eps)); \
                q[j] = cymlp_keep##ISA##_##SFX(exact, in[j], q[j]);           \
            }                                                                 \
        }                                                                     \
    }

CYMLP_QUOTIENT(512, pd, __m512d, __mmask8)
CYMLP_QUOTIENT(512, ps, __m512, __mmask16)
CYMLP_QUOTIENT(256, pd, __m256d, __m256d)
CYMLP_QUOTIENT(256, ps, __m256, __m256)

/* Adam's step through the exact quotient (HOW: CYMLP_NO_DIVIDER, or
 * CYMLP_HW_DIVIDE to keep the divider for the division alone), with the
 * divider's arithmetic otherwise: the gradient and moments are the same
 * separate multiplies and adds as ONE (the divider's one-element update, no
 * FMA), and the squares go to the same lanes in the same order
 * (CYMLP_SQ_LOOP), so the bits are those of DIVIDER, the divider's step. A
 * block is CYMLP_NV vectors; what is left after the last whole block takes
 * the divider's loop. */
#define CYMLP_ADAM_FMA_STEP(NAME, ISA, SFX, T, V, HOW, DIVIDER, ONE)          \
    CYMLP_TARGET_##ISA static inline void NAME##_block(                       \
        T *restrict w, const T *restrict g_raw, T *restrict m, T *restrict v, \
        T alpha, T inv_n, T b1, T c1, T b2, T c2, T eps, T lr_t,              \
        T *restrict part)                                                     \
    {                                                                         \
        const int lanes = (int)(sizeof(V) / sizeof(T));                       \
        V wj[CYMLP_NV], g[CYMLP_NV], a[CYMLP_NV], vi[CYMLP_NV], q[CYMLP_NV];   \
        CYMLP_EACH(j) {                                                       \
            wj[j] = _mm##ISA##_loadu_##SFX(w + j * lanes);                    \
            g[j] = _mm##ISA##_mul_##SFX(                                      \
                _mm##ISA##_add_##SFX(_mm##ISA##_loadu_##SFX(g_raw + j * lanes), \
                                     _mm##ISA##_mul_##SFX(_mm##ISA##_set1_##SFX(alpha), wj[j])), \
                _mm##ISA##_set1_##SFX(inv_n));                                \
            V mi = _mm##ISA##_add_##SFX(                                      \
                _mm##ISA##_mul_##SFX(_mm##ISA##_set1_##SFX(b1), _mm##ISA##_loadu_##SFX(m + j * lanes)), \
                _mm##ISA##_mul_##SFX(_mm##ISA##_set1_##SFX(c1), g[j]));       \
            vi[j] = _mm##ISA##_add_##SFX(                                     \
                _mm##ISA##_mul_##SFX(_mm##ISA##_set1_##SFX(b2), _mm##ISA##_loadu_##SFX(v + j * lanes)), \
                _mm##ISA##_mul_##SFX(_mm##ISA##_set1_##SFX(c2), _mm##ISA##_mul_##SFX(g[j], g[j]))); \
            _mm##ISA##_storeu_##SFX(m + j * lanes, mi);                       \
            _mm##ISA##_storeu_##SFX(v + j * lanes, vi[j]);                    \
            a[j] = _mm##ISA##_mul_##SFX(_mm##ISA##_set1_##SFX(-lr_t), mi);    \
        }                                                                     \
        cymlp_quotient##ISA##_##SFX(q, a, vi, _mm##ISA##_set1_##SFX(eps), HOW); \
        CYMLP_EACH(j) {                                                       \
            wj[j] = _mm##ISA##_add_##SFX(wj[j], q[j]);                        \
            _mm##ISA##_storeu_##SFX(w + j * lanes, wj[j]);                    \
        }                                                                     \
        if (part != NULL) { /* element i0 + k to lane k % CYMLP_SQ_LANES */   \
            CYMLP_EACH(j) {                                                   \
                T *lane = part + j * lanes % CYMLP_SQ_LANES;                  \
                _mm##ISA##_storeu_##SFX(lane, _mm##ISA##_add_##SFX(           \
                    _mm##ISA##_loadu_##SFX(lane), _mm##ISA##_mul_##SFX(wj[j], wj[j]))); \
            }                                                                 \
        }                                                                     \
    }                                                                         \
    CYMLP_TARGET_##ISA CYMLP_UNUSED static void NAME(                                    \
        T *restrict w, const T *restrict g_raw, T *restrict m,               \
        T *restrict v, ptrdiff_t size, T alpha, T inv_n, T b1, T c1,          \
        T b2, T c2, T eps, T lr_t, double *restrict sq)                       \
    {                                                                         \
        const ptrdiff_t width = CYMLP_NV * (ptrdiff_t)(sizeof(V) / sizeof(T)); \
        if (!(eps >= 0 && eps <= CYMLP_EPS_HI_##ISA##SFX)) {                  \
            DIVIDER(w, g_raw, m, v, size, alpha, inv_n, b1, c1, b2, c2, eps, lr_t, sq); \
            return;                                                           \
        }                                                                     \
        if (sq == NULL) {                                                     \
            ptrdiff_t idx = 0;                                                \
            for (; idx + width <= size; idx += width)                         \
                NAME##_block(w + idx, g_raw + idx, m + idx, v + idx, alpha,   \
                             inv_n, b1, c1, b2, c2, eps, lr_t, NULL);         \
            for (; idx < size; idx++)                                         \
                (void)ONE(w, g_raw, m, v, idx, alpha, inv_n, b1, c1, b2, c2, eps, lr_t); \
            return;                                                           \
        }                                                                     \
        CYMLP_SQ_LOOP(T, width,                                               \
            NAME##_block(w + i0_, g_raw + i0_, m + i0_, v + i0_, alpha, inv_n, \
                         b1, c1, b2, c2, eps, lr_t, part_),                   \
            ONE(w, g_raw, m, v, idx, alpha, inv_n, b1, c1, b2, c2, eps, lr_t)) \
    }

/* The four steps of one instruction set: FMA and HYBRID, double and float. */
#define CYMLP_ADAM_FMA_STEPS(ISA)                                             \
    CYMLP_ADAM_FMA_STEP(cymlp_adam_fma##ISA##_d, ISA, pd, double, __m##ISA##d, \
                        CYMLP_NO_DIVIDER, cymlp_adam_divider_d, cymlp_adam_divider_d_one) \
    CYMLP_ADAM_FMA_STEP(cymlp_adam_fma##ISA##_f, ISA, ps, float, __m##ISA,    \
                        CYMLP_NO_DIVIDER, cymlp_adam_divider_f, cymlp_adam_divider_f_one) \
    CYMLP_ADAM_FMA_STEP(cymlp_adam_hybrid##ISA##_d, ISA, pd, double, __m##ISA##d, \
                        CYMLP_HW_DIVIDE, cymlp_adam_divider_d, cymlp_adam_divider_d_one) \
    CYMLP_ADAM_FMA_STEP(cymlp_adam_hybrid##ISA##_f, ISA, ps, float, __m##ISA, \
                        CYMLP_HW_DIVIDE, cymlp_adam_divider_f, cymlp_adam_divider_f_one)

CYMLP_ADAM_FMA_STEPS(512)
CYMLP_ADAM_FMA_STEPS(256)

/* The quotients alone, for the tests: every element through the vector
 * kernel, the last block from a copy padded with ones (inside the domain). */
#define CYMLP_FMA_QUOTIENTS(ISA, SFX, T, V)                                   \
    CYMLP_TARGET_##ISA CYMLP_UNUSED static void cymlp_fma_quotients##ISA##_##SFX(          \
        const T *a, const T *v, T eps, T *out, ptrdiff_t n, int how)          \
    {                                                                         \
        enum { LANES_ = sizeof(V) / sizeof(T), BLOCK_ = CYMLP_NV * LANES_ };  \
        for (ptrdiff_t i = 0; i < n; i += BLOCK_) {                           \
            T ab[BLOCK_], vb[BLOCK_], qb[BLOCK_];                             \
            V av[CYMLP_NV], vv[CYMLP_NV], q[CYMLP_NV];                        \
            ptrdiff_t k = n - i < BLOCK_ ? n - i : BLOCK_;                    \
            for (ptrdiff_t e = 0; e < BLOCK_; e++) {                          \
                ab[e] = e < k ? a[i + e] : (T)1;                              \
                vb[e] = e < k ? v[i + e] : (T)1;                              \
            }                                                                 \
            CYMLP_EACH(j) {                                                   \
                av[j] = _mm##ISA##_loadu_##SFX(ab + j * LANES_);              \
                vv[j] = _mm##ISA##_loadu_##SFX(vb + j * LANES_);              \
            }                                                                 \
            cymlp_quotient##ISA##_##SFX(q, av, vv, _mm##ISA##_set1_##SFX(eps), how); \
            CYMLP_EACH(j) _mm##ISA##_storeu_##SFX(qb + j * LANES_, q[j]);     \
            memcpy(out + i, qb, (size_t)k * sizeof(T));                       \
        }                                                                     \
    }

CYMLP_FMA_QUOTIENTS(512, pd, double, __m512d)
CYMLP_FMA_QUOTIENTS(512, ps, float, __m512)
CYMLP_FMA_QUOTIENTS(256, pd, double, __m256d)
CYMLP_FMA_QUOTIENTS(256, ps, float, __m256)

/* For the tests: the AVX2 paths' rounding decision alone, on candidates c
 * that are RN(F) or one place off it (what RN(z) may be, (c')): out =
 * RN(sqrt(v)) (sqrt_only) or RN(a / v), v > 0, inside the domain; n a
 * multiple of the block. The approximations almost never leave a candidate
 * one place off, so only this way does every branch of the decision run. */
#define CYMLP_AVX2_PICKS(SFX, T, V)                                           \
    CYMLP_TARGET_256 static inline void cymlp_avx2_picks_##SFX(               \
        const T *a, const T *v, const T *c, T *out, ptrdiff_t n, int sqrt_only) \
    {                                                                         \
        enum { LANES_ = sizeof(V) / sizeof(T), BLOCK_ = CYMLP_NV * LANES_ };  \
        for (ptrdiff_t i = 0; i + BLOCK_ <= n; i += BLOCK_) {                 \
            V av[CYMLP_NV], vv[CYMLP_NV], q[CYMLP_NV];                        \
            CYMLP_EACH(j) {                                                   \
                av[j] = _mm256_loadu_##SFX(a + i + j * LANES_);               \
                vv[j] = _mm256_loadu_##SFX(v + i + j * LANES_);               \
                q[j] = _mm256_loadu_##SFX(c + i + j * LANES_);                \
            }                                                                 \
            if (sqrt_only)                                                    \
                cymlp_sqrt_pick256_##SFX(q, vv);                              \
            else                                                              \
                cymlp_div_pick256_##SFX(q, av, vv);                           \
            CYMLP_EACH(j) _mm256_storeu_##SFX(out + i + j * LANES_, q[j]);    \
        }                                                                     \
    }

CYMLP_AVX2_PICKS(pd, double, __m256d)
CYMLP_AVX2_PICKS(ps, float, __m256)

#else
#define CYMLP_HAVE_FMA_QUOTIENT 0
CYMLP_UNUSED static int cymlp_fma_quotient_supported(void) { return 0; }
CYMLP_UNUSED static int cymlp_avx2_quotient_supported(void) { return 0; }
/* never called: the engine checks cymlp_avx2_quotient_supported first.
 * Functions, not empty macros: the caller's arguments stay used (an empty
 * macro left _testing's sqrt_only and Cython's index temporaries unused,
 * warnings on aarch64 and in every non-x86 build). */
#define CYMLP_AVX2_PICKS_NONE(SFX, T)                                         \
    CYMLP_UNUSED static void cymlp_avx2_picks_##SFX(                          \
        const T *a, const T *v, const T *c, T *out, ptrdiff_t n, int sqrt_only) \
    {                                                                         \
        (void)a; (void)v; (void)c; (void)out; (void)n; (void)sqrt_only;       \
    }
CYMLP_AVX2_PICKS_NONE(pd, double)
CYMLP_AVX2_PICKS_NONE(ps, float)
#endif

#endif
