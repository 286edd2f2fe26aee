"""
=================================
Loss curves and early stopping
=================================

A network with many more weights than training samples can learn its
training set by heart, mistakes in the labels included. The training loss
then keeps falling while the loss on new data stops falling and starts to
rise: the network overfits. Early stopping watches a validation set during
training and keeps the weights of the epoch that did best on it.

This example follows the curves that cymlp records during training:
``loss_curve_`` (training loss), ``validation_scores_`` (validation
accuracy, as in scikit-learn) and ``validation_loss_curve_`` (validation loss,
a cymlp addition), and draws them with :class:`cymlp.TrainingCurveDisplay`.
"""

# %%
# A small, noisy training set and a big network
# ---------------------------------------------
# 400 digits to train on, 500 to validate on, and the rest to test the final
# models. Real labels are rarely perfect; here one training digit in five
# gets a random label instead of its own. The network has 256 hidden units
# (about 19,000 weights) and no L2 penalty (``alpha=0``): a recipe for
# overfitting.
#
# scikit-learn's early stopping sets aside ``validation_fraction`` of the
# training data at random. cymlp can take a validation set of your own
# instead, through ``fit(X, y, X_val=..., y_val=...)``, and then trains on all
# of ``X``; that is what we do here, with correct labels in the validation
# set.

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from cymlp import MLPClassifier, TrainingCurveDisplay

X, y = load_digits(return_X_y=True)
X_train, X_rest, y_train, y_rest = train_test_split(
    X, y, train_size=400, stratify=y, random_state=0
)
X_val, X_test, y_val, y_test = train_test_split(
    X_rest, y_rest, train_size=500, stratify=y_rest, random_state=0
)
scaler = StandardScaler().fit(X_train)
X_train, X_val, X_test = (
    scaler.transform(a) for a in (X_train, X_val, X_test)
)

rng = np.random.RandomState(0)
relabel = rng.rand(len(y_train)) < 0.2
y_noisy = np.where(relabel, rng.randint(0, 10, len(y_train)), y_train)
print(
    "wrong training labels: %d of %d"
    % ((y_noisy != y_train).sum(), len(y_train))
)

params = dict(
    hidden_layer_sizes=(256,),
    alpha=0.0,
    learning_rate_init=0.003,
    random_state=0,
)

# %%
# Watching long after the best epoch
# ----------------------------------
# First we let training go on long after the validation accuracy stopped
# improving, by giving early stopping a patience (``n_iter_no_change``) of 100
# epochs. The curves are recorded at every epoch, and at the end the model
# gets the weights of its best epoch.

watch = MLPClassifier(
    early_stopping=True, n_iter_no_change=100, max_iter=500, **params
)
watch.fit(X_train, y_noisy, X_val=X_val, y_val=y_val)

best_epoch = int(np.argmax(watch.validation_scores_)) + 1
lowest_loss_epoch = int(np.argmin(watch.validation_loss_curve_)) + 1
print("epochs run:               ", watch.n_iter_)
print(
    "best validation accuracy:  %.3f at epoch %d"
    % (watch.best_validation_score_, best_epoch)
)
print(
    "lowest validation loss:    %.3f at epoch %d"
    % (min(watch.validation_loss_curve_), lowest_loss_epoch)
)
print(
    "final validation accuracy: %.3f, loss %.3f"
    % (watch.validation_scores_[-1], watch.validation_loss_curve_[-1])
)

fig, ax = plt.subplots(figsize=(8, 4.5))
TrainingCurveDisplay.from_estimator(watch, ax=ax)
ax.axvline(best_epoch, color="0.4", linestyle=":")
ax.annotate(
    " best validation accuracy:\n the weights that are kept",
    xy=(best_epoch, 0.62),
    xycoords=("data", "axes fraction"),
    va="top",
    fontsize=9,
)
ax.set_title("Patience 100: the network learns the noise")
ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs
fig.tight_layout()

# %%
# In the first few epochs all three curves improve together: the network
# learns what digits look like. Then it starts to learn the wrong labels of
# the training set by heart. The training loss keeps falling, while the
# validation loss turns up and the validation accuracy drops: what the
# network learns now does not hold for new digits. Early stopping follows the
# validation *accuracy* (the estimator's ``score``), as in scikit-learn; the
# validation loss, recorded by cymlp alongside, shows the same turn.

# %%
# Stopping early, or not at all
# -----------------------------
# With the default patience, ``n_iter_no_change=10``, training stops once the
# validation accuracy has not improved by ``tol`` for 10 epochs in a row, and
# the model keeps the weights of the best epoch. Without early stopping (the
# default, ``early_stopping=False``) training runs until the *training* loss
# stops improving, and the model keeps its last weights.

stopped = MLPClassifier(early_stopping=True, max_iter=500, **params)
stopped.fit(X_train, y_noisy, X_val=X_val, y_val=y_val)
unstopped = MLPClassifier(max_iter=500, **params).fit(X_train, y_noisy)

models = {
    "no early stopping": unstopped,
    "patience 100": watch,
    "patience 10": stopped,
}
for name, model in models.items():
    print(
        "%-18s %3d epochs, test accuracy %.3f"
        % (name, model.n_iter_, model.score(X_test, y_test))
    )

fig, axes = plt.subplots(1, 2, figsize=(10, 4))
display = TrainingCurveDisplay.from_estimator(stopped, ax=axes[0])
axes[0].legend(handles=list(display.lines_.values()), loc="center right")
axes[0].set_title("Patience 10: stopped after %d epochs" % stopped.n_iter_)
axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))

labels = ["%s\n%d epochs" % (name, m.n_iter_) for name, m in models.items()]
scores = [m.score(X_test, y_test) for m in models.values()]
bars = axes[1].bar(labels, scores, color=["C3", "C0", "C2"])
axes[1].bar_label(bars, fmt="%.3f")
axes[1].set_ylim(0.7, 1.0)
axes[1].set_ylabel("accuracy on the test digits")
axes[1].set_title("Test accuracy")
fig.tight_layout()

# %%
# Both early-stopped models keep the weights of their best validation epoch
# and beat the model that trained to the end; the shorter patience got there
# in a fraction of the epochs.

# %%
# Stopping on the validation loss instead
# ---------------------------------------
# Accuracy moves in steps of one validation digit; the validation loss moves
# with every change of the network's confidence. ``scoring="loss"`` stops on
# it and keeps the weights of the lowest validation loss (``scoring`` also
# takes any scorer name, e.g. ``"balanced_accuracy"``).

on_loss = MLPClassifier(early_stopping=True, scoring="loss", max_iter=500, **params)
on_loss.fit(X_train, y_noisy, X_val=X_val, y_val=y_val)
print(
    "stopped on the loss after %d epochs; lowest validation loss %.4f; "
    "test accuracy %.3f"
    % (on_loss.n_iter_, min(on_loss.validation_loss_curve_), on_loss.score(X_test, y_test))
)
plt.show()
