"""
===========================================
The benchmark suite: every workload at once
===========================================

The source repository's benchmark suite (``benchmarks/run.py``) times cymlp
and scikit-learn's MLP side by side, in one process, on every workload of the
project's performance targets, and writes its measurements to
``benchmarks/results.json`` (``--json``). This example plots the committed
results of one full run: for each workload, how many times faster cymlp
was than scikit-learn, next to the target. One run on a shared machine is
noisy (a grid search disturbed by outside load can swing by a third);
``benchmarks/RESULTS.md`` gives the spread over several runs.

Training rows are seconds per epoch; ``predict-*`` rows are one call of
``predict_proba``; ``grid-*`` rows a whole ``GridSearchCV``. The ``grid-thr2``
row compares cymlp with itself: joblib's threading backend with two jobs
against one, which works because cymlp releases the GIL for every epoch.
``step-*`` rows, in results written by a suite that has them, time one
optimizer step alone (nanoseconds per parameter) and have no target.
"""

# %%
# Read the suite's results
# ------------------------

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

try:  # sphinx-gallery runs examples with __file__ set
    here = Path(__file__).resolve().parent
except NameError:  # pasted into a session
    here = Path.cwd()
results = json.loads((here.parent / "benchmarks" / "results.json").read_text())
rows = results["rows"]
print(f"BLAS threads during the run: {results['blas_threads']}, "
      f"load average: {results['load_average']}")
for r in rows:
    target = "-" if r["target"] is None else f">= {r['target']:g}x"
    print(f"{r['name']:<14} {r['speedup']:6.2f}x  (target {target})")

# %%
# Speedup against the targets
# ---------------------------
# Bars are the measured ratio (the best of the repeats); the black ticks are
# the targets. A logarithmic axis, since the ratios span two orders of
# magnitude: small-batch training is where scikit-learn's per-minibatch
# Python overhead dominates, large-batch training is bounded by the matrix
# products both libraries share.
#
# The grey diamonds are the most that any implementation reproducing
# scikit-learn's weights could reach on this BLAS: scikit-learn's time over
# the time of the run's matrix products and optimizer steps alone (the square
# root and division Adam does per parameter cannot be skipped without changing
# the weights). Where a diamond sits left of its target tick, the target is out
# of reach by construction.

names = [r["name"] for r in rows]
speedups = np.array([r["speedup"] for r in rows])
targets = [r["target"] for r in rows]
met = [t is None or s >= t for s, t in zip(speedups, targets)]

fig, ax = plt.subplots(figsize=(8, 4.5))
y = np.arange(len(rows))
ax.barh(y, speedups, color=["C2" if m else "C1" for m in met])
for yi, t in zip(y, targets):
    if t is not None:
        ax.plot([t, t], [yi - 0.4, yi + 0.4], color="black", linewidth=2)
for yi, r in zip(y, rows):
    if r.get("exact_bound"):  # absent from results written by older versions
        ax.plot(r["exact_bound"], yi, marker="D", markersize=6, color="grey",
                markerfacecolor="none")
ax.axvline(1, color="grey", linewidth=1, linestyle=":")
ax.set_xscale("log")
ax.set_yticks(y, names)
ax.invert_yaxis()
ax.set_xlabel("speedup over scikit-learn (log scale); black: target; "
              "grey: bound for an exact implementation")
ax.set_title("cymlp vs scikit-learn, benchmark suite (green: target met)")
fig.tight_layout()
plt.show()

# %%
# How close to the hardware
# -------------------------
# For the training rows the suite also times the epoch's matrix products
# alone, through the same BLAS: the floor no implementation of these products
# can beat. cymlp's epoch as a multiple of that floor:

floor_rows = [r for r in rows if r["cymlp_over_floor"] is not None]
fig, ax = plt.subplots(figsize=(8, 3.5))
y = np.arange(len(floor_rows))
ax.barh(y, [r["cymlp_over_floor"] for r in floor_rows], color="C0")
ax.axvline(1, color="black", linewidth=1)
ax.set_yticks(y, [r["name"] for r in floor_rows])
ax.invert_yaxis()
ax.set_xlabel("cymlp epoch time / time of its GEMMs alone")
ax.set_title("Distance from the GEMM floor (1 = nothing but the products)")
fig.tight_layout()
plt.show()
