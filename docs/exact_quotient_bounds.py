"""Rigorous bounds on |z/F - 1| for the exact quotient's approximations z.

Stage by stage: each quantity's relative error is a polynomial in the
previous stage's errors (bounded) and fresh roundings |r| <= 2^-p; after full
expansion, |poly| <= sum |coef| prod(bounds) (triangle inequality), in exact
rationals. Square root: G = g/sqrt(v) = 1 + al, 2 h sqrt(v) = 1 + al + dl
(dl kept apart: al and the error of h nearly cancel in 1/2 - g h).
"""
from fractions import Fraction as Fr
import math
import sympy as sp

def bound(expr, bnds):
    poly = sp.Poly(sp.expand(expr), *bnds.keys())
    tot = Fr(0)
    for monom, c in poly.terms():
        c = sp.Rational(c)
        t = Fr(abs(c.p), c.q)
        for k, b in zip(monom, bnds.values()):
            t *= b ** k
        tot += t
    return tot

al, dl, et, b, r1, r2, r3 = sp.symbols("al dl et b r1 r2 r3")

def sqrt_bound(p, B, steps):
    u = Fr(1, 2**p)
    A = bound((1 + b) * (1 + r1) - 1, {b: B, r1: u})
    D = bound(-(1 + b) * r1, {b: B, r1: u})
    for _ in range(steps):
        G, H = 1 + al, (1 + al + dl) / 2
        e = (sp.Rational(1, 2) - G * H) * (1 + r1)
        G1, H1 = G * (1 + e) * (1 + r2), H * (1 + e) * (1 + r3)
        bn = {al: A, dl: D, r1: u, r2: u, r3: u}
        A, D = bound(G1 - 1, bn), bound(2 * H1 - G1, bn)
    G, H = 1 + al, (1 + al + dl) / 2
    return bound(G + (1 - G**2) * (1 + r1) * H - 1, {al: A, dl: D, r1: u})

def div_bound(p, B, steps):
    u = Fr(1, 2**p)
    E = B
    for _ in range(steps):
        Y = 1 + et
        E = bound(Y * (1 - et * (1 + r1)) * (1 + r2) - 1, {et: E, r1: u, r2: u})
    Y = 1 + et
    P = Y * (1 + r1)
    return bound(P + (1 - P) * (1 + r2) * Y - 1, {et: E, r1: u, r2: u})

def lg(x):
    return math.log2(x)

# AVX2's estimates: 1.5 2^-12 (Intel's bound for rsqrtps, rcpps); double goes
# through a float: its conversion moves the result by at most 2^-24 more.
cases = [("avx2 float", 24, Fr(3, 2**13), 1, 1),
         ("avx2 double", 53, Fr(3, 2**13) + Fr(1, 2**24), 2, 2),
         ("avx512 float", 24, Fr(1, 2**14), 0, 0),
         ("avx512 double", 53, Fr(1, 2**14), 1, 1)]
for name, p, B, ss, ds in cases:
    print(f"{name}: need < 2^-{p + 2}: sqrt 2^{lg(sqrt_bound(p, B, ss)):.2f}, "
          f"div 2^{lg(div_bound(p, B, ds)):.2f}; one step fewer: "
          + (f"sqrt 2^{lg(sqrt_bound(p, B, ss - 1)):.2f} div 2^{lg(div_bound(p, B, ds - 1)):.2f}"
             if ss else "-"))
