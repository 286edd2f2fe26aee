"""
===========================================
The benchmark suite: every workload at once
===========================================

The source repository's benchmark suite (``benchmarks/run.py``) times cymlp
and scikit-learn's MLP side by side, in one process, on every workload of the
project's performance targets, and writes its measurements to
``benchmarks/results.json`` (``--json``). This example plots the committed
results of one full run: for each workload, how many times faster cymlp
was than scikit-learn, next to the target. The README's table and the
performance page of the user guide are written from the same file. One run on
a shared machine is noisy; ``benchmarks/RESULTS.md`` discusses the spread.

Training rows are seconds per epoch; ``predict-*`` rows are one call of
``predict_proba``; ``grid-*`` rows a whole ``GridSearchCV``. The ``grid-thr2``
row compares cymlp with itself: joblib's threading backend with two jobs
against one, which works because cymlp releases the GIL for every epoch.
``step-*`` rows time one optimizer step alone (nanoseconds per parameter)
and have no target: they are listed at the end, not charted.
"""

# %%
# Read the suite's results
# ------------------------

import json
import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

try:  # sphinx-gallery runs examples with __file__ set
    here = Path(__file__).resolve().parent
except NameError:  # pasted into a session
    here = Path.cwd()
results = json.loads((here.parent / "benchmarks" / "results.json").read_text())
print(textwrap.fill(f"Measured {results['date']} on {results['machine']}; "
                    f"{results['threads']}.", width=72))

rows = [r for r in results["rows"] if r["target"] is not None]
steps = [r for r in results["rows"] if r["name"].startswith("step-")]
print(f"\n{'workload':<14} {'speedup':>8} {'target':>8} {'bound':>8}  verdict")
for r in rows:
    bound = f"{r['exact_bound']:.2f}x" if r.get("exact_bound") else "-"
    verdict = "met" if r["speedup"] >= r["target"] else "missed"
    print(f"{r['name']:<14} {r['speedup']:>7.2f}x {r['target']:>7g}x {bound:>8}  {verdict}")

# %%
# Speedup against the targets
# ---------------------------
# Bars are the measured ratio (the best of the repeats), green where the
# target is met and orange where it is missed; the black ticks are the
# targets. A logarithmic axis, since the ratios span two orders of magnitude:
# small-batch training is where scikit-learn's per-minibatch Python overhead
# dominates, large-batch training is bounded by the matrix products both
# libraries share.
#
# The grey diamonds are the most that any implementation reproducing
# scikit-learn's weights could reach on this BLAS: scikit-learn's time over
# the time of the run's matrix products and optimizer steps alone (the square
# root and division Adam does per parameter cannot be skipped without changing
# the weights). Where a diamond sits left of its target tick, the target is out
# of reach by construction.

names = [r["name"] for r in rows]
speedups = np.array([r["speedup"] for r in rows])
targets = np.array([r["target"] for r in rows])
met = speedups >= targets

fig, ax = plt.subplots(figsize=(8, 0.42 * len(rows) + 1.6), layout="constrained")
y = np.arange(len(rows))
ax.barh(y, speedups, color=np.where(met, "C2", "C1"))
for yi, t in zip(y, targets):
    ax.plot([t, t], [yi - 0.4, yi + 0.4], color="black", linewidth=2)
for yi, r in zip(y, rows):
    if r.get("exact_bound"):
        ax.plot(r["exact_bound"], yi, marker="D", markersize=6, color="grey",
                markerfacecolor="none")
ax.axvline(1, color="grey", linewidth=1, linestyle=":")
ax.set_xscale("log")
ticks = [1, 2, 5, 10, 20, 50, 100]
ax.set_xticks(ticks, [f"{t}x" for t in ticks])
ax.set_xticks([], minor=True)
ax.set_yticks(y, names)
ax.invert_yaxis()
ax.set_xlabel("speedup over scikit-learn (log scale)")
ax.set_title("cymlp vs scikit-learn: measured speedup per workload")
ax.legend(
    handles=[
        plt.Rectangle((0, 0), 1, 1, color="C2", label="target met"),
        plt.Rectangle((0, 0), 1, 1, color="C1", label="target missed"),
        plt.Line2D([], [], color="black", linewidth=2, label="target"),
        plt.Line2D([], [], color="grey", marker="D", linestyle="none",
                   markerfacecolor="none", label="bound (exact arithmetic)"),
    ],
    loc="lower right",
    fontsize=8,
)
plt.show()

# %%
# How close to the hardware
# -------------------------
# For the training rows the suite also times the epoch's matrix products
# alone, through the same kind of BLAS: the floor no implementation of these
# products can beat. cymlp's epoch as a multiple of that floor, with the
# target of the large rows (at most 1.3 times the floor):

floor_rows = [r for r in rows if r["cymlp_over_floor"] is not None]
fig, ax = plt.subplots(figsize=(8, 0.42 * len(floor_rows) + 1.4), layout="constrained")
y = np.arange(len(floor_rows))
ax.barh(y, [r["cymlp_over_floor"] for r in floor_rows], color="C0")
for yi, r in zip(y, floor_rows):
    if r["floor_target"]:
        ax.plot([r["floor_target"]] * 2, [yi - 0.4, yi + 0.4], color="black",
                linewidth=2)
ax.axvline(1, color="black", linewidth=1)
ax.set_yticks(y, [r["name"] for r in floor_rows])
ax.invert_yaxis()
ax.set_xlabel("cymlp's time / the time of its matrix products alone "
              "(black ticks: target)")
ax.set_title("Distance from the GEMM floor (1 = nothing but the products)")
plt.show()

# %%
# One optimizer step alone
# ------------------------
# The ``step-*`` rows time one Adam or SGD step over all parameters, in
# nanoseconds per parameter, with no target: they show what the per-parameter
# arithmetic costs. For Adam, ``-divider``, ``-fma`` and ``-hybrid`` force
# one way to its correctly rounded quotient; the rows without a suffix take
# the one chosen when cymlp is loaded.

print(f"{'step':<30} {'sklearn':>9} {'cymlp':>9}")
for r in steps:
    sk, cy = r["best_seconds"]["sklearn"] * 1e9, r["best_seconds"]["cymlp"] * 1e9
    print(f"{r['name']:<30} {sk:>6.2f} ns {cy:>6.2f} ns")
