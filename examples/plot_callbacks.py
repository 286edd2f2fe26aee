"""
=============================================
Watching training with scikit-learn callbacks
=============================================

scikit-learn 1.9 brought a callback framework (:mod:`sklearn.callback`): an
estimator's fit is a task, its iterations are subtasks, and callbacks set
with ``set_callbacks`` are told when each one begins and ends. cymlp's
estimators make one subtask per epoch (per iteration with lbfgs), so
scikit-learn's ready-made callbacks work on them unchanged:

* :class:`~sklearn.callback.ScoringMonitor` scores the network as it stood
  after every epoch;
* :class:`~sklearn.callback.ProgressBar` draws a bar per fit, nested inside
  the bars of a ``Pipeline`` or a grid search.

A callback set on a meta-estimator reaches the cymlp estimators inside it.
Without any callback, an epoch costs nothing more.
"""

# %%
# The score of every epoch, as a pandas frame
# -------------------------------------------
# Handwritten digits, 8x8 pixels each. ``ScoringMonitor`` computes its scores
# on the data given to ``fit``, from a copy of the network as it was at the
# end of each epoch.

import warnings

import matplotlib.pyplot as plt
from sklearn.callback import ProgressBar, ScoringMonitor
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import StandardScaler

from cymlp import MLPClassifier

warnings.filterwarnings("ignore", category=ConvergenceWarning, module="sklearn|cymlp")

X, y = load_digits(return_X_y=True)
X = StandardScaler().fit_transform(X)

monitor = ScoringMonitor(scoring=["accuracy", "neg_log_loss"])
clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=30, random_state=0)
clf.set_callbacks(monitor).fit(X, y)

log = monitor.get_logs().data_as_pandas
epochs = log[log.task_name == "epoch"]
print(epochs[["task_id", "accuracy", "neg_log_loss"]].head(8).to_string(index=False))

# %%
# The frame has one row per epoch (``task_id`` counts them from 0) and one for
# the whole fit. Plotted, it shows how quickly a small network learns the
# digits it trains on.

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(epochs.task_id + 1, epochs.accuracy, marker="o", label="accuracy")
ax.plot(epochs.task_id + 1, -epochs.neg_log_loss, marker="o", label="log-loss")
ax.set_xlabel("epoch")
ax.set_title("Scores after every epoch (ScoringMonitor)")
ax.legend()
fig.tight_layout()

# %%
# Progress bars of a grid search
# ------------------------------
# ``ProgressBar`` set on the search follows the fits inside it: the search,
# each candidate and split and, with ``max_propagation_depth=None`` (the
# default stops one level down), the network's epochs inside each fit.

# sphinx_gallery_start_ignore
# rich sizes its bars to the terminal's width; this page's output block is
# narrower than a terminal
import os  # noqa: E402

os.environ["COLUMNS"] = "96"
# sphinx_gallery_end_ignore
search = GridSearchCV(
    MLPClassifier(max_iter=15, random_state=0),
    {"hidden_layer_sizes": [(16,), (32,)]},
    cv=2,
)
search.set_callbacks(ProgressBar(max_propagation_depth=None))
search.fit(X, y)
print("best:", search.best_params_, "accuracy %.3f" % search.best_score_)

# %%
# Stopping from a callback
# ------------------------
# A callback whose ``on_fit_task_end`` returns True stops the current level of
# iterations: here, the epochs of one fit, as soon as the training accuracy
# passes 99%.


class StopAtAccuracy:
    def __init__(self, target):
        self.target = target

    def setup(self, estimator, context):
        pass

    def teardown(self, estimator, context):
        pass

    def on_fit_task_begin(self, estimator, context):
        pass

    def on_fit_task_end(self, estimator, context, *, X=None, y=None,
                        fitted_estimator=None):
        if context.task_name != "epoch":
            return False
        return fitted_estimator.score(X, y) >= self.target


clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=200, random_state=0)
clf.set_callbacks(StopAtAccuracy(0.99)).fit(X, y)
print("stopped after %d epochs, training accuracy %.4f" % (clf.n_iter_, clf.score(X, y)))
