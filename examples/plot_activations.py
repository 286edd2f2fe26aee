"""
======================================
Sigmoid versus ReLU (and tanh)
======================================

The activation function of the hidden layers decides how well gradients flow
back through a network. We train the same network on the same data three
times, changing only ``activation``: the logistic sigmoid, the hyperbolic
tangent and the rectified linear unit (ReLU), and compare how fast each
learns and how accurate each ends up.

A callback records the accuracy on held-out data after every epoch, so that
the learning curves show accuracy as well as the training loss, and stops
every run after the same number of epochs.
"""

# %%
# The three functions
# -------------------
# The logistic sigmoid squashes its input into (0, 1) and its slope is at most
# 0.25; tanh squashes into (-1, 1) with a slope of at most 1, centred on zero;
# ReLU passes positive inputs unchanged, with slope 1. Backpropagation
# multiplies the slopes of the layers it passes through, so with several
# sigmoid layers the gradient reaching the first layers shrinks by a factor of
# 4 or more per layer.

import matplotlib.pyplot as plt
import numpy as np
from scipy.special import expit
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from cymlp import MLPClassifier

z = np.linspace(-4, 4, 401)
functions = {
    "logistic": (expit(z), expit(z) * (1 - expit(z))),
    "tanh": (np.tanh(z), 1 - np.tanh(z) ** 2),
    "relu": (np.maximum(z, 0), (z > 0).astype(float)),
}
fig, (ax_f, ax_d) = plt.subplots(1, 2, figsize=(9, 3.2))
for name, (f, df) in functions.items():
    ax_f.plot(z, f, label=name)
    ax_d.plot(z, df, label=name)
ax_f.set_title("activation f(z)")
ax_d.set_title("slope f'(z)")
for ax in (ax_f, ax_d):
    ax.axhline(0, color="0.8", lw=0.8)
    ax.set_xlabel("z")
    ax.legend()
fig.tight_layout()

# %%
# Same data, same network, same seed
# ----------------------------------
# The digits data, standardised, with a quarter held out. The network has four
# hidden layers of 32 units: deep enough for the slopes to matter. Everything
# but ``activation`` is the same in the three runs, including the seed, so the
# initial weights are drawn alike.

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

n_epochs = 80
results = {}
for activation in ["logistic", "tanh", "relu"]:
    test_accuracy = []

    def record(info, test_accuracy=test_accuracy):
        # called after every epoch, with the estimator being trained
        test_accuracy.append(info["estimator"].score(X_test, y_test))
        return info["epoch"] == n_epochs  # True stops training

    clf = MLPClassifier(
        hidden_layer_sizes=(32, 32, 32, 32),
        activation=activation,
        tol=0,  # no early convergence: every run trains n_epochs epochs
        n_iter_no_change=n_epochs,
        callbacks=record,
        random_state=0,
    )
    clf.fit(X_train, y_train)
    results[activation] = (clf.loss_curve_, test_accuracy)
    print(
        "%-8s  final training loss %.3f   test accuracy %.3f"
        % (activation, clf.loss_curve_[-1], test_accuracy[-1])
    )

# %%
# Learning curves and accuracy, side by side
# ------------------------------------------
# ReLU and tanh drive the loss down within a few dozen epochs. The sigmoid
# network barely moves at first: the gradient reaching its lower layers is
# small, and it stays far behind in accuracy after the same number of epochs.

fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
for activation, (loss, accuracy) in results.items():
    epochs = np.arange(1, len(loss) + 1)
    ax_loss.plot(epochs, loss, label=activation)
    ax_acc.plot(epochs, accuracy, label=activation)
ax_loss.set_yscale("log")
ax_loss.set_title("training loss")
ax_acc.set_title("accuracy on the held-out quarter")
ax_acc.set_ylim(0, 1)
for ax in (ax_loss, ax_acc):
    ax.set_xlabel("epoch")
    ax.legend()
fig.tight_layout()

# %%
# The sigmoid is not useless: with one hidden layer, or a larger learning
# rate, it gets there too, only more slowly. It remains the output
# activation for binary and multilabel classification, where a probability in
# (0, 1) is what is wanted. For hidden layers ReLU is the usual default, as in
# scikit-learn; cymlp also offers ``"leaky_relu"``, ``"elu"``, ``"gelu"``,
# ``"silu"`` and ``"softplus"``, which keep a non-zero slope for negative
# inputs or round off ReLU's corner.
plt.show()
