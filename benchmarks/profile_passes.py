"""Where an epoch's time goes, pass by pass: the engine's pass timer.

Trains the MNIST-shaped network of the benchmarks ((100,), adam, batch 200)
in float32 and float64, on one thread and on two, with the engine's pass
timer on (``cymlp._engine._testing._pass_profile``, a hook the estimators never
turn on), and prints milliseconds per epoch in each kind of work, as thread 0
(the team's leader) spent them, and thread 1 beside it on two threads. Then
the same epoch's matrix products alone, through the engine's BLAS: whole (one
call a product, the GEMM floor), cut into the engine's chunks (what the
chunks' repacking of shared operands adds), and those chunks on two threads
side by side (each thread half the minibatches: the suite's ``EngineProducts``).

Run: ``python benchmarks/profile_passes.py [--rows 20000] [--epochs 3]
[--repeats 3]``. Each configuration is fitted ``repeats`` times, the
configurations interleaved; the fit with the shortest engine time is shown.
The contention adaptation (csrc/team.h) is off, so that a team of two runs
every epoch of the two-thread rows whatever the machine's load.
"""

import argparse
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

from common import load_average, make_mnist_like
from suite.floors import EngineProducts

import cymlp
from cymlp._engine import _testing

HIDDEN = (100,)
BATCH = 200

# (label, kinds added up): the rows of the table, in the order of a minibatch
ROWS = [
    ("gather (row pass)", ["gather"]),
    ("forward products", ["forward_gemm"]),
    ("bias + activation", ["forward_elementwise"]),
    ("loss + output delta", ["loss"]),
    ("delta products", ["backward_gemm"]),
    ("derivative", ["backward_elementwise"]),
    ("row pass: barrier wait", ["rows_wait"]),
    ("weight-gradient products", ["gradient_gemm"]),
    ("bias sums", ["bias_sums"]),
    ("gradient pass: barrier wait", ["gradient_wait"]),
    ("optimizer step", ["step"]),
    ("step: barrier wait", ["step_wait"]),
]


def fit(X, y, epochs, threads):
    """Fit `epochs` epochs on `threads` threads; returns (seconds, profile)."""
    est = cymlp.MLPClassifier(hidden_layer_sizes=HIDDEN, solver="adam", batch_size=BATCH,
                              max_iter=epochs, tol=0.0, n_iter_no_change=epochs + 1,
                              random_state=0)
    _testing._pass_profile()  # reset
    with threadpool_limits(limits=threads, user_api="openmp"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        est.fit(X, y)
        seconds = time.perf_counter() - start
    return seconds, _testing._pass_profile()


def products(rows, dtype, threads, chunked):
    """Seconds of one epoch's products (rows // BATCH minibatches): on one
    thread (forward, deltas, weight gradients, all); on `threads` threads,
    the engine's chunks side by side as the benchmark suite's bound times
    them (``EngineProducts``: each thread its share of the minibatches, the
    slowest thread's time)."""
    units = [784, *HIDDEN, 10]
    if threads == 1:
        parts = _testing._products(units, BATCH, rows // BATCH, dtype, chunked)
        return (*parts, sum(parts))
    assert chunked, "side by side, only the engine's chunks are timed"
    return (EngineProducts(units, rows - rows % BATCH, BATCH, dtype, threads).epoch(),)


def ms(seconds, epochs):
    return f"{1e3 * seconds / epochs:.1f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    E = args.epochs

    X64, y = make_mnist_like(args.rows)
    data = {"float32": X64.astype(np.float32), "float64": X64}
    configs = [(dt, nt) for dt in ("float32", "float64") for nt in (1, 2)]
    _testing._contention(adapt=False)
    _testing._pass_profile(enable=True)
    fit(data["float32"], y, 1, 2)  # warm-up: threads, BLAS buffers, Adam's path

    best = {}
    overhead = {c: {"off": [], "on": []} for c in configs}
    for _ in range(args.repeats):
        for dt, nt in configs:
            # the timer's own cost: the same fit with it off, then on
            _testing._pass_profile(enable=False)
            overhead[dt, nt]["off"].append(fit(data[dt], y, E, nt)[0])
            _testing._pass_profile(enable=True)
            seconds, prof = fit(data[dt], y, E, nt)
            overhead[dt, nt]["on"].append(seconds)
            if (dt, nt) not in best or prof["call"][0] < best[dt, nt][1]["call"][0]:
                best[dt, nt] = (seconds, prof)
    _testing._pass_profile(enable=False)
    _testing._contention(adapt=True)

    floors = {}
    for _ in range(args.repeats):
        for dt in ("float32", "float64"):
            for label, nt, chunked in (("whole", 1, False), ("chunked", 1, True),
                                       ("chunked", 2, True)):
                s = products(args.rows, dt, nt, chunked)
                key = (dt, label, nt)
                floors[key] = min(floors.get(key, s), s, key=lambda p: p[-1])

    head = ["ms per epoch"] + [f"{dt} {nt}T" for dt, nt in configs]
    table = []
    for label, kinds in ROWS:
        row = [label]
        for c in configs:
            prof = best[c][1]
            per = [sum(prof[k][t] for k in kinds) for t in range(c[1])]
            row.append(" / ".join(ms(p, E) for p in per))
        table.append(row)
    other = ["rest of the epoch (thread 0)"]
    call = ["engine call, all of it (thread 0)"]
    wall = ["fit / epochs (wall)"]
    for c in configs:
        prof = best[c][1]
        counted = sum(prof[k][0] for _, kinds in ROWS for k in kinds)
        other.append(ms(prof["call"][0] - counted, E))
        call.append(ms(prof["call"][0], E))
        wall.append(ms(best[c][0], E))
    table += [other, call, wall]
    for part, name in enumerate(["forward", "delta", "weight-gradient", "all"]):
        row = [f"{name} products alone, whole / chunked"]
        for dt, nt in configs:
            row.append(f"{ms(floors[dt, 'whole', 1][part], 1)} / "
                       f"{ms(floors[dt, 'chunked', 1][part], 1)}" if nt == 1 else
                       "" if part < 3 else
                       f"chunked: {ms(floors[dt, 'chunked', 2][0], 1)}")
        table.append(row)
    timer = ["fit / epochs, timer off / on (min)"]
    for c in configs:
        timer.append(f"{ms(min(overhead[c]['off']), E)} / {ms(min(overhead[c]['on']), E)}")
    table.append(timer)

    widths = [max(len(r[i]) for r in [head] + table) for i in range(len(head))]
    print(f"MNIST-shaped {args.rows}x784, hidden {HIDDEN}, adam, batch {BATCH}; "
          f"{E} epochs a fit, best of {args.repeats} (engine time); load average "
          f"{load_average()}")
    print("two threads: thread 0 / thread 1")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in table:
        print("| " + " | ".join(v.ljust(w) for v, w in zip(r, widths)) + " |")


if __name__ == "__main__":
    main()
