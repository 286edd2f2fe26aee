"""
=====================================
Training speed against scikit-learn
=====================================

cymlp computes what scikit-learn's MLP computes, so the two can be timed on
exactly the same work: same data, same parameters, same seed, same number of
epochs. This example does that on the digits data, while the documentation
builds, for several minibatch sizes.

The numbers are this machine's, at the moment the documentation was built;
the ratio between the two libraries matters more than the times. The
benchmark suite in the source repository (``benchmarks/run.py``) measures
more workloads, more carefully; see the performance page of the user guide.
"""

# %%
# The setup
# ---------
# Both libraries train the same network for the same 5 epochs (``tol=0``
# and a patience longer than the training, so that neither stops early) from
# the same initial weights. Each measurement is the best of 3 repeats, with the
# two libraries taking turns so that a busy machine slows both alike. Both
# run on one thread, which makes the times steadier on a shared machine:
# ``threadpool_limits(1)`` limits scikit-learn's BLAS and cymlp's own threads
# alike (cymlp never changes your BLAS setting; it follows a BLAS limit, as
# the user guide's page on threads explains).

import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import sklearn
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SklearnMLP
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

import cymlp

X, y = load_digits(return_X_y=True)
X = StandardScaler().fit_transform(X)
n_epochs, n_repeats = 5, 3
batch_sizes = [16, 32, 64, 200]


def seconds_per_epoch(cls, batch_size):
    model = cls(
        hidden_layer_sizes=(100,),
        batch_size=batch_size,
        max_iter=n_epochs,
        tol=0.0,
        n_iter_no_change=n_epochs + 1,
        random_state=0,
    )
    with warnings.catch_warnings():
        # stopping at max_iter is the point here, not a problem
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        model.fit(X, y)
        elapsed = time.perf_counter() - start
    return elapsed / model.n_iter_, model


libraries = {"scikit-learn": SklearnMLP, "cymlp": cymlp.MLPClassifier}
timings = {name: [] for name in libraries}
with threadpool_limits(limits=1):
    for batch_size in batch_sizes:
        best = dict.fromkeys(libraries, np.inf)
        models = {}
        for repeat in range(n_repeats):
            names = list(libraries)
            if repeat % 2:
                names.reverse()  # take turns at going first
            for name in names:
                t, models[name] = seconds_per_epoch(
                    libraries[name], batch_size
                )
                best[name] = min(best[name], t)
        for name in libraries:
            timings[name].append(best[name])
        ours, theirs = models["cymlp"], models["scikit-learn"]
        difference = max(
            np.abs(a - b).max() for a, b in zip(ours.coefs_, theirs.coefs_)
        )
        print(
            "batch %3d: scikit-learn %6.1f ms/epoch, cymlp %5.1f ms/epoch, "
            "%4.1fx faster; largest weight difference %.1e"
            % (
                batch_size,
                1e3 * best["scikit-learn"],
                1e3 * best["cymlp"],
                best["scikit-learn"] / best["cymlp"],
                difference,
            )
        )

print("scikit-learn %s, cymlp %s" % (sklearn.__version__, cymlp.__version__))

# %%
# The plot
# --------
# Time per epoch for each batch size, and the speedup above each pair. The
# last column of the printout above confirms that the two libraries learned
# the same weights, to floating-point rounding.

fig, ax = plt.subplots(figsize=(8, 4.5))
positions = np.arange(len(batch_sizes))
width = 0.38
sk_bars = ax.bar(
    positions - width / 2,
    1e3 * np.array(timings["scikit-learn"]),
    width,
    label="scikit-learn",
    color="C0",
)
cy_bars = ax.bar(
    positions + width / 2,
    1e3 * np.array(timings["cymlp"]),
    width,
    label="cymlp",
    color="C1",
)
for i, (sk, cy) in enumerate(zip(timings["scikit-learn"], timings["cymlp"])):
    ax.annotate(
        "%.1fx" % (sk / cy),
        xy=(positions[i], 1e3 * sk),
        xytext=(0, 4),
        textcoords="offset points",
        ha="center",
        fontweight="bold",
    )
ax.set_xticks(positions, ["batch %d" % b for b in batch_sizes])
ax.set_ylabel("milliseconds per epoch")
ax.set_title(
    "Digits (1797 x 64), hidden (100,), adam: time per training epoch"
)
ax.legend()
ax.margins(y=0.12)
fig.tight_layout()

# %%
# The smaller the batch, the more minibatches per epoch, and the more
# scikit-learn's per-minibatch Python overhead weighs; cymlp runs the whole
# epoch in one compiled call, so its time per epoch falls towards that of the
# arithmetic itself. With large batches and large layers the matrix products
# dominate both, and the ratio narrows towards what BLAS allows.
plt.show()
