"""
==============================================
Tuning an MLP in a Pipeline with GridSearchCV
==============================================

cymlp's estimators are scikit-learn estimators, so the usual tools for
choosing hyper-parameters work on them unchanged. Here a ``Pipeline`` scales
the pixels of the digits and feeds them to :class:`cymlp.MLPClassifier`, and
``GridSearchCV`` picks the size of the hidden layer and the strength of the
L2 penalty ``alpha`` by cross-validation.
"""

# %%
# The pipeline
# ------------
# Scaling belongs inside the pipeline: in each cross-validation split the
# scaler then learns its means and variances from the training folds only,
# and the held-out fold stays unseen.

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from cymlp import MLPClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)

pipe = Pipeline(
    [
        ("scale", StandardScaler()),
        (
            "mlp",
            MLPClassifier(
                learning_rate_init=0.01,
                # each fit stops when its validation score stops improving
                early_stopping=True,
                max_iter=300,
                random_state=0,
            ),
        ),
    ]
)

# %%
# The search
# ----------
# Parameters of a pipeline step are named ``<step>__<parameter>``. Three
# network sizes and four penalties make 12 candidates; with 3-fold
# cross-validation that is 36 fits, and a final refit of the best candidate on
# all the training data.

param_grid = {
    "mlp__hidden_layer_sizes": [(8,), (32,), (128,)],
    "mlp__alpha": [1e-4, 1e-2, 1.0, 10.0],
}
search = GridSearchCV(pipe, param_grid, cv=3)
search.fit(X_train, y_train)

print("best parameters:", search.best_params_)
print("cross-validated accuracy: %.3f" % search.best_score_)
print(
    "test accuracy of the refitted best pipeline: %.3f"
    % search.score(X_test, y_test)
)

# %%
# The whole grid
# --------------
# ``cv_results_`` holds, for every candidate, the accuracy on each held-out
# fold, their mean and standard deviation, and the time the fits took. Small
# networks lack capacity whatever the penalty, and a strong penalty
# (``alpha=10``) holds every network back. The spread over the folds (right)
# shows how much of the differences between neighbouring candidates is noise.

sizes = param_grid["mlp__hidden_layer_sizes"]
alphas = param_grid["mlp__alpha"]
results = search.cv_results_
mean = np.empty((len(sizes), len(alphas)))
std = np.empty_like(mean)
for size, alpha, mean_score, std_score in zip(
    results["param_mlp__hidden_layer_sizes"],
    results["param_mlp__alpha"],
    results["mean_test_score"],
    results["std_test_score"],
):
    mean[sizes.index(size), alphas.index(alpha)] = mean_score
    std[sizes.index(size), alphas.index(alpha)] = std_score
print(
    "%d fits in %.1f s in all"
    % (
        len(results["params"]) * search.n_splits_,
        np.sum(results["mean_fit_time"]) * search.n_splits_,
    )
)

fig, (ax_map, ax_err) = plt.subplots(1, 2, figsize=(10, 3.8))
image = ax_map.imshow(mean, cmap="viridis", aspect="auto")
middle = mean.min() + 0.5 * (mean.max() - mean.min())
for i in range(len(sizes)):
    for j in range(len(alphas)):
        ax_map.text(
            j,
            i,
            "%.3f" % mean[i, j],
            ha="center",
            va="center",
            color="white" if mean[i, j] < middle else "black",
        )
ax_map.set_xticks(range(len(alphas)), ["%g" % a for a in alphas])
ax_map.set_yticks(range(len(sizes)), [str(s) for s in sizes])
ax_map.set_xlabel("alpha")
ax_map.set_ylabel("hidden_layer_sizes")
ax_map.set_title("mean cross-validated accuracy")
fig.colorbar(image, ax=ax_map)

for i, size in enumerate(sizes):
    ax_err.errorbar(
        np.arange(len(alphas)) + 0.08 * (i - 1),
        mean[i],
        yerr=std[i],
        marker="o",
        capsize=3,
        label="hidden_layer_sizes=%s" % (size,),
    )
ax_err.set_xticks(range(len(alphas)), ["%g" % a for a in alphas])
ax_err.set_xlabel("alpha")
ax_err.set_ylabel("accuracy (mean and std over folds)")
ax_err.set_title("accuracy against alpha")
ax_err.legend(loc="lower left")
fig.tight_layout()

# %%
# Running the fits in parallel
# ----------------------------
# ``n_jobs`` spreads the fits over processes (joblib's default). Because a
# cymlp epoch runs without the GIL, threads work too, and share the data
# instead of copying it to each process. Fits running at the same time share
# the cores among themselves, so no thread limit is needed:
#
# .. code-block:: python
#
#     from joblib import parallel_config
#
#     with parallel_config(backend="threading"):
#         GridSearchCV(pipe, param_grid, cv=3, n_jobs=2).fit(X_train, y_train)
#
# See the user guide's page on threads for how cymlp shares the cores.
#
# To spread a search over the machines of a dask cluster, see the user guide
# on scaling out with dask.
plt.show()
