"""Adam's quotient a / (sqrt(v) + eps) without the divider: the same bits.

The FMA paths (csrc/exact_quotient.h: "fma" in AVX-512 code, "fma-avx2" in AVX2
code, each with a proof of its own) must give exactly numpy's square root
and division, which round correctly (IEEE 754); "hybrid" and "hybrid-avx2"
take their square root and the divider's division. Each is compared bit for bit with numpy on random
inputs over the whole exponent range, on constructed edge cases, and (float32)
exhaustively; then the whole Adam step of every path with the divider's.
"""

import numpy as np
import pytest

from cymlp import _engine

from cymlp._engine import _testing


def runs(path):
    """Whether this CPU (and build) runs an Adam quotient path.

    Parameters
    ----------
    path : str

    Returns
    -------
    bool
    """
    try:
        _testing._kernel_adam_quotient(np.ones(1), np.ones(1), 1e-8, path)
    except ValueError:  # its instruction set is missing
        return False
    return True


# the paths without the divider here: those with none at all, then hybrid
FMA_PATHS = tuple(path for path in ("fma", "fma-avx2") if runs(path))
FAST_PATHS = FMA_PATHS + tuple(path for path in ("hybrid", "hybrid-avx2") if runs(path))
needs_fast = pytest.mark.skipif(not FAST_PATHS, reason="the FMA paths need AVX-512 or AVX2")

DTYPES = (np.float32, np.float64)
UINT = {np.float32: np.uint32, np.float64: np.uint64}
# the binary exponents of a value's range: (smallest subnormal, largest)
EXPONENTS = {np.float32: (-149, 127), np.float64: (-1074, 1023)}
# random eps: sklearn's, a larger one, none, and one drawn per chunk
EPSILONS = (1e-8, 1e-7, 0.0, None)


def reference(a, v, eps):
    """numpy's ``a / (sqrt(v) + eps)`` in the dtype of ``a`` and ``v``.

    Parameters
    ----------
    a, v : ndarray
    eps : float

    Returns
    -------
    ndarray
    """
    with np.errstate(all="ignore"):
        return a / (np.sqrt(v) + v.dtype.type(eps))


def assert_same_bits(got, want, *inputs):
    """Assert that two arrays hold the same bit patterns, any NaN matching any.

    A NaN's sign and payload depend on which operand the instruction takes it
    from (sqrt(-1) + nan), which a compiler may order either way, in numpy as
    in the step: only NaN-ness is the arithmetic's.

    Parameters
    ----------
    got, want : ndarray
        Of one dtype and shape.
    *inputs : ndarray
        Shown for the first mismatches.
    """
    uint = UINT[got.dtype.type]
    bad = np.flatnonzero((got.view(uint) != want.view(uint)) & ~(np.isnan(got) & np.isnan(want)))
    if bad.size:
        first = bad[:5]
        raise AssertionError(
            f"{bad.size} of {got.size} differ; first at {first}: got {got[first]!r}, "
            f"want {want[first]!r}, inputs {[x[first] for x in inputs]!r}")


def log_uniform(rng, n, lo, hi, dtype, signed=False):
    """Values with exponents uniform in [lo, hi] and uniform significands.

    Parameters
    ----------
    rng : numpy.random.Generator
    n : int
    lo, hi : int
        Binary exponents; below the dtype's normal range the values round
        to subnormals or zero, above it to infinity.
    dtype : type
    signed : bool, default=False
        A random sign on each value.

    Returns
    -------
    ndarray of dtype, shape (n,)
    """
    with np.errstate(over="ignore", under="ignore"):
        x = np.ldexp(1 + rng.random(n), rng.integers(lo, hi + 1, n)).astype(dtype)
    if signed:
        x[rng.random(n) < 0.5] *= -1
    return x


def check_quotients(a, v, eps, paths=FAST_PATHS):
    """Each path's quotients (and square roots) against numpy's, bit for bit.

    Parameters
    ----------
    a, v : ndarray
        Of one dtype.
    eps : float
    paths : tuple of str, default=FAST_PATHS
    """
    want = reference(a, v, eps)
    with np.errstate(invalid="ignore"):
        root = np.sqrt(v)
    for path in paths:
        assert_same_bits(_testing._kernel_adam_quotient(a, v, eps, path), want, a, v)
        assert_same_bits(_testing._kernel_adam_quotient(a, v, eps, path, sqrt_only=True),
                         root, v)


@needs_fast
@pytest.mark.parametrize("dtype", DTYPES)
def test_random_quotients(dtype):
    # 10^8 quotients by each FMA path (10^7 by hybrid, whose square root is
    # the same code), in chunks: v from subnormal to near the largest value
    # (float64: every other chunk over 2^+-140, around the AVX2 path's
    # domain, which the whole range would mostly miss), a of either sign
    # over the exponents a step meets (and past them).
    rng = np.random.default_rng(20240613)
    a_span = 600 if dtype is np.float64 else 80
    for chunk in range(10):
        n = 10_000_000
        lo, hi = EXPONENTS[dtype] if dtype is np.float32 or chunk % 2 == 0 else (-140, 140)
        v = log_uniform(rng, n, lo, hi, dtype)
        a = log_uniform(rng, n, -a_span, a_span, dtype, signed=True)
        eps = EPSILONS[chunk % len(EPSILONS)]
        eps = rng.random() if eps is None else eps
        check_quotients(a, v, eps, FAST_PATHS if chunk == 0 else FMA_PATHS)


def midpoint_squares(rng, n, dtype, span):
    """v whose square root lies on or next to a rounding midpoint.

    s with its last bit set is a midpoint at half the precision's spacing:
    v = s * s rounds to a value whose root is within an ulp of that midpoint;
    v and its neighbours (+-1, +-2 ulp) are returned.

    Parameters
    ----------
    rng : numpy.random.Generator
    n : int
    dtype : type
    span : int
        s's binary exponents lie in [-span, span].

    Returns
    -------
    ndarray of dtype
    """
    s = log_uniform(rng, n, -span, span, dtype)
    bits = s.view(UINT[dtype]) | 1
    s = bits.view(dtype)
    v = s * s
    bits = v.view(UINT[dtype])
    near = [v]
    for step in (1, 2):
        near += [(bits + UINT[dtype](step)).view(dtype), (bits - UINT[dtype](step)).view(dtype)]
    return np.concatenate(near)


def edge_values(dtype):
    """The special values of a dtype: zeros, subnormals, extremes, inf, NaN.

    Parameters
    ----------
    dtype : type

    Returns
    -------
    ndarray of dtype
        Positive and negative.
    """
    info = np.finfo(dtype)
    uint = UINT[dtype]
    nbits = 8 * np.dtype(dtype).itemsize
    mant = info.nmant
    all_ones = (((uint(1) << uint(mant)) - uint(1)).astype(uint)
                | (np.arange(1, 2**(nbits - 1 - mant) - 1, 37, dtype=uint) << uint(mant)))
    values = np.concatenate([
        np.array([0.0, info.smallest_subnormal, 2 * info.smallest_subnormal,
                  info.smallest_normal, info.smallest_normal * (1 - info.eps),
                  info.tiny * 4, info.max, info.max / 2, info.max / 4, 1.0, 2.0,
                  1 - info.epsneg, 1 + info.eps, 0.5, np.sqrt(info.max), np.sqrt(info.tiny),
                  1e-8, 1e-16, 1e-30, 1e30, np.inf, np.nan], dtype=dtype),
        all_ones.view(dtype),  # significands all ones, at many exponents
    ])
    return np.concatenate([values, -values])


@needs_fast
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("eps", [1e-8, 1e-7, 0.0, 0.5, 1e-30, 1e30, -1e-8, np.inf, np.nan])
def test_edge_quotients(dtype, eps):
    # every pair of special values, with every eps (including ones outside
    # the FMA path's range, which must fall back as a whole)
    e = edge_values(dtype)
    a, v = np.meshgrid(e, e)
    check_quotients(a.ravel().copy(), v.ravel().copy(), eps)


@needs_fast
@pytest.mark.parametrize("dtype", DTYPES)
def test_constructed_quotients(dtype):
    rng = np.random.default_rng(7)
    n = 200_000
    # roots near midpoints over each path's domain (AVX2's float64 one is
    # 2^+-120: half of them there)
    v = np.concatenate([midpoint_squares(rng, n // 2, dtype, 40 if dtype is np.float32 else 200),
                        midpoint_squares(rng, n // 2, dtype, 40)])
    a = log_uniform(rng, v.size, -30, 30, dtype, signed=True)
    uint = UINT[dtype]
    mant = np.finfo(dtype).nmant
    bias = np.finfo(dtype).maxexp - 1
    ones = (uint(1) << uint(mant)) - uint(1)
    # denominators whose significand is all ones (eps = 0: d = sqrt(v)) at
    # 2^-27 to 2^32, and quotients a / d that are exact or land next to a
    # midpoint
    d = ((rng.integers(bias - 27, bias + 33, n).astype(uint) << uint(mant)) | ones).view(dtype)
    q = log_uniform(rng, n, -20, 20, dtype, signed=True)
    q = (q.view(uint) | uint(1)).view(dtype)
    for eps in (1e-8, 0.0):
        check_quotients(a, v, eps)
        check_quotients(q * d, d * d, eps)
        check_quotients(d, v[:n], eps)
    # eps-dominated denominators, huge and tiny ratios (overflow to inf,
    # underflow to subnormal or zero), and subnormal v
    lo, hi = EXPONENTS[dtype]
    tiny_v = log_uniform(rng, n, lo, lo + 60, dtype)
    small_a = log_uniform(rng, n, lo, lo + 80, dtype, signed=True)
    huge_a = log_uniform(rng, n, hi - 40, hi, dtype, signed=True)
    for eps in (1e-8, 1.0, 0.0):
        check_quotients(small_a, tiny_v, eps)
        check_quotients(huge_a, tiny_v, eps)
        check_quotients(small_a, log_uniform(rng, n, hi - 40, hi, dtype), eps)


@needs_fast
@pytest.mark.parametrize("exponent", [-100, -64, -1, 0, 1, 23, 99])
def test_float32_all_significands(exponent):
    # every float32 significand at a few exponents, as v, and as a
    significands = (np.arange(2**23, dtype=np.uint32) | np.uint32(127 << 23)).view(np.float32)
    x = np.ldexp(significands, exponent).astype(np.float32)
    rng = np.random.default_rng(exponent + 1000)
    other = log_uniform(rng, x.size, -20, 20, np.float32, signed=True)
    for eps in (1e-8, 0.0):
        check_quotients(other, x, eps)
        check_quotients(x, np.abs(other), eps)


@needs_fast
def test_float32_every_square_root():
    # the square root of every positive float32 (subnormals, normals, inf)
    chunk = 2**26
    dummy = np.ones(chunk, np.float32)
    for start in range(0, 0x7F800001, chunk):
        bits = np.arange(start, min(start + chunk, 0x7F800001), dtype=np.uint32)
        v = bits.view(np.float32)
        for path in FMA_PATHS:
            got = _testing._kernel_adam_quotient(dummy[: v.size], v, 0.0, path, sqrt_only=True)
            assert_same_bits(got, np.sqrt(v), v)


def adam_buffers(rng, n, dtype):
    """Parameters, gradient and moments of a step, as a training run has them.

    Parameters
    ----------
    rng : numpy.random.Generator
    n : int
    dtype : type

    Returns
    -------
    list of ndarray
        params, gradient, first moment, second moment.
    """
    params = rng.standard_normal(n).astype(dtype) * dtype(0.1)
    grad = rng.standard_normal(n).astype(dtype) * dtype(0.1)
    m = rng.standard_normal(n).astype(dtype) * dtype(1e-3)
    v = (rng.random(n) * 1e-5).astype(dtype)
    if n > 3:  # a few lanes outside the FMA path's domain: v zero, a zero
        v[1], m[2], grad[2], params[2] = 0, 0, 0, 0
    return [params, grad, m, v]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [0, 1, 7, 15, 16, 17, 31, 33, 64, 1000, 1024, 1041, 4099])
@pytest.mark.parametrize("fold", [False, True])
def test_step_paths_agree(dtype, size, fold):
    # the whole step: w, m, v and the sum of squares, over several steps
    start = adam_buffers(np.random.default_rng(size), size, dtype)
    results = {}
    for path in ("divider", "auto") + FAST_PATHS:
        bufs = [b.copy() for b in start]
        sums = []
        for step in range(3):
            sums.append(_testing._kernel_optimizer_step(
                "adam", bufs[0], bufs[1], bufs[2], bufs[3], 1e-4, 32.0, 1e-3 * (step + 1),
                return_sum_squares=fold, path=path))
        results[path] = bufs, sums
    want, want_sums = results["divider"]
    for path, (got, sums) in results.items():
        for g, w in zip(got, want):
            assert_same_bits(g, w)
        assert sums == want_sums, path


def test_path_names():
    paths = _testing._adam_step_path()
    assert set(paths) == {"float32", "float64"}
    assert set(paths.values()) <= {"divider", "fma", "hybrid", "fma-avx2", "hybrid-avx2"}
    with pytest.raises(ValueError, match="unknown Adam path"):
        _testing._kernel_adam_quotient(np.ones(1), np.ones(1), 1e-8, "fast")


def sqrt_mod_power_of_two(c, t):
    """The odd x in [0, 2^t) with x * x = c modulo 2^t, for c = 1 modulo 8.

    Parameters
    ----------
    c : int
    t : int
        At least 3.

    Returns
    -------
    list of int
        The four roots.
    """
    x = 1
    for k in range(3, t):  # x is a root modulo 2^k; fix bit k - 1 for 2^(k+1)
        if (x * x - c) % (1 << (k + 1)):
            x += 1 << (k - 1)
    m = 1 << t
    return sorted({x % m, -x % m, (x + m // 2) % m, (-x + m // 2) % m})


def hardest_square_roots(dtype, count):
    """v whose square root lies closest to a rounding midpoint.

    With M odd of p + 1 bits (a midpoint between two p-bit floats) and
    M^2 = c modulo 2^(p+2) for a small c, v = (M^2 - c) / 2^(p+2) has p
    bits, and sqrt(v 2^(p+2)) = M - c / (2M) + ...: |c| 2^-(p+2) of an ulp
    from the midpoint, which an approximation must resolve on either side.

    Parameters
    ----------
    dtype : type
    count : int
        How many c of each sign.

    Returns
    -------
    ndarray of dtype
        Each v at several even scalings (the root scales exactly).
    """
    p = np.finfo(dtype).nmant + 1
    t = p + 2
    found = []
    for r in range(count):
        for c in (1 + 8 * r, -7 - 8 * r):
            for m in sqrt_mod_power_of_two(c % (1 << t), t):
                if (1 << p) <= m < (1 << (p + 1)):
                    found.append((m * m - c) >> t)
    base = np.array(found, dtype=dtype)  # p bits: exact
    with np.errstate(over="ignore", under="ignore"):
        return np.concatenate([np.ldexp(base, 2 * j - p - 2).astype(dtype)
                               for j in (-40, -17, -1, 0, 3, 20, 41)])


def hardest_quotients(dtype, count, rng):
    """a and d with a / d closest to a rounding midpoint.

    For D odd of p bits and A = +-1 / 2^e modulo D, A 2^e / D lies 1 / D
    from an integer N; with N odd and A / D of the binade that makes N 2^-e
    a midpoint, a / d is some 2^-p of an ulp from it, on either side.

    Parameters
    ----------
    dtype : type
    count : int
        How many divisors D.
    rng : numpy.random.Generator

    Returns
    -------
    list of (int, ndarray)
        (D, the numerators A of D at several scalings and both signs).
    """
    p = np.finfo(dtype).nmant + 1
    cases = []
    for _ in range(count):
        d = int(rng.integers(1 << (p - 2), 1 << (p - 1))) * 2 + 1
        numerators = []
        for e in (p, p + 1):  # quotients in [1, 2), then in [1/2, 1)
            for sign in (1, -1):
                a0 = sign * pow(1 << e, -1, d) % d
                for a in (a0, a0 + d):
                    n = (a << e) // d if sign == 1 else -(-(a << e) // d)
                    in_binade = (a >= d) == (e == p)
                    if (1 << (p - 1)) <= a < (1 << p) and in_binade and n % 2 == 1:
                        numerators.append(a)
        if numerators:
            a = np.array(numerators, dtype=dtype)
            scaled = np.concatenate([np.ldexp(a, j).astype(dtype) for j in (-30, -5, 0, 12, 30)])
            cases.append((d, np.concatenate([scaled, -scaled])))
    return cases


@needs_fast
@pytest.mark.parametrize("dtype", DTYPES)
def test_hardest_cases(dtype):
    # the square roots and quotients nearest a midpoint, where the estimate's
    # candidate is most often the wrong one of its neighbours
    v = hardest_square_roots(dtype, 3000)
    check_quotients(np.ones_like(v), v, 0.0)
    # d = 1 + (D - 1) exactly, by eps (v = 1): one divisor per call
    for d, a in hardest_quotients(dtype, 300, np.random.default_rng(11)):
        check_quotients(a, np.ones_like(a), float(d - 1))


@pytest.mark.skipif("fma-avx2" not in FMA_PATHS, reason="the AVX2 path needs AVX2 and FMA")
@pytest.mark.parametrize("dtype", DTYPES)
def test_avx2_decision_every_branch(dtype):
    # the approximations leave their candidate one place off almost never
    # (no test input above does), so the decision is run on its own: from
    # the correct result and from each neighbour it must return the correct
    # one, over the domain and on the hardest cases
    rng = np.random.default_rng(99)
    n = 1 << 20
    v_span = 100 if dtype is np.float32 else 120
    v = np.concatenate([log_uniform(rng, n, -v_span, v_span - 1, dtype),
                        hardest_square_roots(dtype, 400)[:n]])
    v = v[: v.size // 64 * 64]
    d = log_uniform(rng, v.size, -40, 40, dtype)
    a = log_uniform(rng, v.size, -60, 59, dtype, signed=True)
    for sqrt_only, want in ((True, np.sqrt(v)), (False, a / d)):
        for toward in (None, 0, np.inf):  # the correct result, then a neighbour each way
            c = want if toward is None else np.nextafter(want, dtype(toward) * np.sign(want))
            got = _testing._kernel_adam_pick_avx2(a, v if sqrt_only else d, c.astype(dtype),
                                                 sqrt_only=sqrt_only)
            assert_same_bits(got, want, a, v, d)
