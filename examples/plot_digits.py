"""
=================================
Recognising handwritten digits
=================================

A multi-layer perceptron learns to read the 8x8 images of handwritten digits
that ship with scikit-learn. The 64 pixels of an image are the 64 units of the
network's input layer; a hidden layer of 16 units combines them, and the
output layer gives one probability per digit.

We look at the data, train :class:`cymlp.MLPClassifier`, look at what each
hidden unit learned to respond to, and see which digits it confuses.
"""

# %%
# The data
# --------
# 1,797 images of 8x8 pixels, with grey levels from 0 to 16. Each image becomes
# a row of 64 numbers: the order of the pixels does not matter to the network,
# only that it is the same for every image.

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import ConfusionMatrixDisplay
from sklearn.model_selection import train_test_split

from cymlp import MLPClassifier

digits = load_digits()
print(
    "images:",
    digits.images.shape,
    "-> rows of the input matrix:",
    digits.data.shape,
)

fig, axes = plt.subplots(2, 8, figsize=(8, 2.4))
for ax, image, label in zip(axes.ravel(), digits.images, digits.target):
    ax.imshow(image, cmap="gray_r", vmin=0, vmax=16)
    ax.set_title(str(label))
    ax.set_axis_off()
fig.suptitle("The first 16 digits, with their labels")
fig.tight_layout()

# %%
# Training
# --------
# Scaling the grey levels to [0, 1] keeps the pixels in the range the
# initial weights are made for. A quarter of the images is kept aside to
# measure accuracy on digits the network never saw.

X = digits.data / 16.0
y = digits.target
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)

clf = MLPClassifier(
    hidden_layer_sizes=(16,),
    alpha=0.1,  # some L2 penalty: smoother weights, easier to look at
    learning_rate_init=0.003,
    max_iter=500,
    random_state=0,
)
clf.fit(X_train, y_train)
print("epochs:", clf.n_iter_)
print("training accuracy: %.3f" % clf.score(X_train, y_train))
print("test accuracy:     %.3f" % clf.score(X_test, y_test))

# %%
# What the hidden units look at
# -----------------------------
# The first weight matrix, ``clf.coefs_[0]``, has one row per input pixel and
# one column per hidden unit. A column holds the 64 weights with which one
# hidden unit sums up the pixels, so it can be drawn as an 8x8 image of its
# own: red pixels push the unit's activation up when they are inked, blue ones
# push it down. Each unit has learned a stroke pattern, often a part of one
# digit against a part of another. A few units are (nearly) blank: ReLU units
# whose input became negative for every image stop learning (their gradient
# is zero), and the L2 penalty ``alpha`` then shrinks their weights to zero.

weights = clf.coefs_[0]
print("first-layer weights:", weights.shape)
limit = np.abs(weights).max()

fig, axes = plt.subplots(2, 8, figsize=(8, 2.6))
for unit, ax in enumerate(axes.ravel()):
    ax.imshow(
        weights[:, unit].reshape(8, 8), cmap="RdBu_r", vmin=-limit, vmax=limit
    )
    ax.set_title("unit %d" % unit, fontsize=8)
    ax.set_axis_off()
fig.suptitle("Input weights of each hidden unit, as 8x8 images")
fig.tight_layout()

# %%
# Where it errs
# -------------
# The confusion matrix counts, for each true digit (rows), how often each
# digit was predicted (columns). The diagonal holds the correct answers.

fig, ax = plt.subplots(figsize=(5.5, 5))
ConfusionMatrixDisplay.from_estimator(
    clf, X_test, y_test, ax=ax, colorbar=False
)
ax.set_title("Test set: true versus predicted digit")
fig.tight_layout()

# %%
# The digits it got wrong, with the probability it gave its answer:

proba = clf.predict_proba(X_test)
predicted = clf.classes_[proba.argmax(axis=1)]
wrong = np.flatnonzero(predicted != y_test)[:8]

fig, axes = plt.subplots(
    1, max(len(wrong), 1), figsize=(8, 1.6), squeeze=False
)
for ax, i in zip(axes.ravel(), wrong):
    ax.imshow(X_test[i].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
    ax.set_title(
        "%d, not %d\np=%.2f" % (predicted[i], y_test[i], proba[i].max()),
        fontsize=8,
    )
for ax in axes.ravel():
    ax.set_axis_off()
fig.tight_layout()
plt.show()
