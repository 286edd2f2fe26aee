"""
=========================================
A trained network as a feature step
=========================================

cymlp's estimators are also transformers (a cymlp addition):
``transform(X)`` returns the activations of the last hidden layer, the
features the network learned, so a network can feed another model in a
:class:`~sklearn.pipeline.Pipeline`. ``hidden_activations(X, layer=k)``
returns those of any hidden layer.
"""

# %%
# A network with a narrow last hidden layer
# -----------------------------------------
# On the digits, a network whose last hidden layer has 10 units compresses
# each 64-pixel image into 10 numbers. A logistic regression then classifies
# from those 10 numbers alone, as accurately as from all 64 pixels.

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from cymlp import MLPClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)

pipe = make_pipeline(
    StandardScaler(),
    MLPClassifier(hidden_layer_sizes=(64, 10), max_iter=300, random_state=0),
    LogisticRegression(max_iter=1000),
)
pipe.fit(X_train, y_train)
print(f"logistic regression on the network's 10 features: {pipe.score(X_test, y_test):.3f}")

raw = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
raw.fit(X_train, y_train)
print(f"logistic regression on the 64 pixels:             {raw.score(X_test, y_test):.3f}")

# %%
# The features as a DataFrame
# ---------------------------
# ``set_output(transform="pandas")`` works as for any scikit-learn
# transformer; the columns are named after the estimator, one per unit of the
# last hidden layer. The first three test digits, one column each (the frame
# transposed, so that all ten features show):

mlp = pipe[1]
X_test_scaled = pipe[0].transform(X_test)
features = mlp.set_output(transform="pandas").transform(X_test_scaled)
features.head(3).round(2).T

# %%
# What the first and the last hidden layer see
# --------------------------------------------
# The test digits in two dimensions (PCA), from the first hidden layer's 64
# activations and from the last one's 10, coloured by digit: the classes
# already group in these two directions, and the logistic regression above
# separates them with all 10.

fig, axes = plt.subplots(1, 2, figsize=(9, 4), layout="constrained")
for ax, layer in zip(axes, (0, 1)):
    h = mlp.hidden_activations(X_test_scaled, layer=layer)
    xy = PCA(n_components=2).fit_transform(h)
    points = ax.scatter(xy[:, 0], xy[:, 1], c=y_test, cmap="tab10", s=8)
    ax.set_title(f"hidden layer {layer} ({h.shape[1]} units), PCA")
    ax.set_xlabel("first principal component")
    ax.set_ylabel("second principal component")
    ax.set_xticks([])
    ax.set_yticks([])
fig.legend(*points.legend_elements(), title="digit", loc="outside right center")
plt.show()
