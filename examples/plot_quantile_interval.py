"""
===========================================
Prediction intervals from quantile networks
===========================================

A regressor trained with the squared error predicts the conditional mean:
one number per input, with no word on how far the truth may be from it.
``MLPRegressor(loss="quantile", quantile=q)`` (a cymlp addition) minimises
the pinball loss instead and predicts the conditional ``q``-quantile: the
value below which a fraction ``q`` of the targets fall. Two of them, at 0.05
and 0.95, bound a 90% prediction interval.
"""

# %%
# Data whose noise grows with x
# -----------------------------
# The targets scatter around a sine curve, more widely as x grows
# (heteroscedastic noise), so a good interval must widen from left to right.

import matplotlib.pyplot as plt
import numpy as np

from cymlp import MLPRegressor

rng = np.random.RandomState(0)


def sample(n):
    X = rng.uniform(0, 5, size=(n, 1))
    y = np.sin(X[:, 0]) + (0.05 + 0.15 * X[:, 0]) * rng.normal(size=n)
    return X, y


X_train, y_train = sample(1000)
X_test, y_test = sample(1000)

# %%
# Three networks: the 0.05 quantile, the median and the 0.95 quantile
# ---------------------------------------------------------------------
# The same small network for each; only ``quantile`` changes. lbfgs suits a
# data set this small.

models = {
    q: MLPRegressor(
        loss="quantile",
        quantile=q,
        hidden_layer_sizes=(32,),
        activation="tanh",
        solver="lbfgs",
        max_iter=1000,
        random_state=0,
    ).fit(X_train, y_train)
    for q in (0.05, 0.5, 0.95)
}

# %%
# How often do held-out targets fall below each quantile?
# -------------------------------------------------------
# About 5%, 50% and 95% of the time if the networks learned the quantiles,
# and about 90% of the targets inside the interval.

low, high = models[0.05].predict(X_test), models[0.95].predict(X_test)
for q, model in models.items():
    print(f"quantile {q:.2f}: {np.mean(y_test <= model.predict(X_test)):.1%} below")
print(f"inside the 90% interval: {np.mean((low <= y_test) & (y_test <= high)):.1%}")

# %%
# The interval
# ------------

grid = np.linspace(0, 5, 200)[:, None]
fig, ax = plt.subplots(figsize=(7, 4))
ax.scatter(X_test[:, 0], y_test, s=4, color="0.6", label="held-out data")
ax.fill_between(
    grid[:, 0],
    models[0.05].predict(grid),
    models[0.95].predict(grid),
    alpha=0.3,
    label="90% interval (0.05 to 0.95 quantile)",
)
ax.plot(grid[:, 0], models[0.5].predict(grid), label="median (0.5 quantile)")
ax.set_xlabel("x")
ax.set_ylabel("y")
ax.legend(loc="lower left")
ax.set_title("Quantile networks: a prediction interval that widens with the noise")
plt.show()

# %%
# ``loss="absolute_error"`` also estimates the median (with twice the
# pinball loss of ``quantile=0.5``), and ``loss="huber"`` is the squared error
# for residuals up to ``huber_delta`` and grows linearly beyond, so that a few
# outliers do not drag the fit.
