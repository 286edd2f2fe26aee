"""
===================================================
Running scikit-learn's own example, patched
===================================================

:func:`cymlp.patch_sklearn` makes ``sklearn.neural_network.MLPClassifier``
and ``MLPRegressor`` cymlp's classes, so that code written for scikit-learn,
which you may not want to or cannot edit, trains with cymlp. The same
``random_state`` gives the same weights, so the code's results stay what
they were; only the time changes.

This example runs the code of scikit-learn's gallery example "Compare
Stochastic learning strategies for MLPClassifier" twice, unpatched and
patched, and compares the times and the results. On the command line the
same thing is ``python -m cymlp.patch script.py``; see
:doc:`/user_guide/patching`.
"""

# %%
# scikit-learn's example
# ----------------------
# Below is that example's code: seven ways to set the learning rate of
# ``solver="sgd"`` and ``"adam"``, each trained on four small data sets,
# with its loss curves drawn. Two things differ from scikit-learn's page:
# the code is inside a function, so that it can run twice here, and its
# ``print`` calls are gone (a table below shows the same numbers side by
# side). Its import stays as written, at the top of the code: inside the
# function it runs at every call and picks up whatever
# ``sklearn.neural_network.MLPClassifier`` is at that moment.

import time
import warnings

import matplotlib.pyplot as plt
import numpy as np

# Imported here, before anything is timed, so that neither run pays for
# loading them: the example's own imports then find them loaded.
import sklearn.datasets  # noqa: F401
import sklearn.neural_network  # noqa: F401
from sklearn.exceptions import ConvergenceWarning

import cymlp


def compare_learning_strategies():
    from sklearn import datasets
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import MinMaxScaler

    # different learning rate schedules and momentum parameters
    params = [
        {"solver": "sgd", "learning_rate": "constant", "momentum": 0,
         "learning_rate_init": 0.2},
        {"solver": "sgd", "learning_rate": "constant", "momentum": 0.9,
         "nesterovs_momentum": False, "learning_rate_init": 0.2},
        {"solver": "sgd", "learning_rate": "constant", "momentum": 0.9,
         "nesterovs_momentum": True, "learning_rate_init": 0.2},
        {"solver": "sgd", "learning_rate": "invscaling", "momentum": 0,
         "learning_rate_init": 0.2},
        {"solver": "sgd", "learning_rate": "invscaling", "momentum": 0.9,
         "nesterovs_momentum": False, "learning_rate_init": 0.2},
        {"solver": "sgd", "learning_rate": "invscaling", "momentum": 0.9,
         "nesterovs_momentum": True, "learning_rate_init": 0.2},
        {"solver": "adam", "learning_rate_init": 0.01},
    ]
    labels = [
        "constant learning-rate", "constant with momentum",
        "constant with Nesterov's momentum", "inv-scaling learning-rate",
        "inv-scaling with momentum", "inv-scaling with Nesterov's momentum",
        "adam",
    ]
    plot_args = [
        {"c": "red", "linestyle": "-"},
        {"c": "green", "linestyle": "-"},
        {"c": "blue", "linestyle": "-"},
        {"c": "red", "linestyle": "--"},
        {"c": "green", "linestyle": "--"},
        {"c": "blue", "linestyle": "--"},
        {"c": "black", "linestyle": "-"},
    ]
    models = {}

    def plot_on_dataset(X, y, ax, name):
        # for each dataset, plot learning for each learning strategy
        ax.set_title(name)
        X = MinMaxScaler().fit_transform(X)
        mlps = []
        if name == "digits":
            # digits is larger but converges fairly quickly
            max_iter = 15
        else:
            max_iter = 400
        for label, param in zip(labels, params):
            mlp = MLPClassifier(random_state=0, max_iter=max_iter, **param)
            # some parameter combinations will not converge as can be seen on
            # the plots so they are ignored here
            with warnings.catch_warnings():
                warnings.filterwarnings(
                    "ignore", category=ConvergenceWarning, module="sklearn"
                )
                mlp.fit(X, y)
            mlps.append(mlp)
            models[name, label] = (mlp, mlp.score(X, y))
        for mlp, label, args in zip(mlps, labels, plot_args):
            ax.plot(mlp.loss_curve_, label=label, **args)

    fig, axes = plt.subplots(2, 2, figsize=(15, 10))
    # load / generate some toy datasets
    iris = datasets.load_iris()
    X_digits, y_digits = datasets.load_digits(return_X_y=True)
    data_sets = [
        (iris.data, iris.target),
        (X_digits, y_digits),
        datasets.make_circles(noise=0.2, factor=0.5, random_state=1),
        datasets.make_moons(noise=0.3, random_state=0),
    ]
    for ax, data, name in zip(
        axes.ravel(), data_sets, ["iris", "digits", "circles", "moons"]
    ):
        plot_on_dataset(*data, ax=ax, name=name)
    fig.legend(ax.get_lines(), labels, ncol=3, loc="upper center")
    return fig, models


# %%
# Unpatched, then patched
# -----------------------
# The same call twice: first as scikit-learn ships, then after
# :func:`cymlp.patch_sklearn`; :func:`cymlp.unpatch_sklearn` puts
# scikit-learn's classes back afterwards. (``patch_sklearn(verbose=True)``
# would say on standard error what it replaced.)
#
# One thing does change, and it is visible here: the example hides the
# ``ConvergenceWarning`` of the runs that stop at ``max_iter`` with a filter
# on ``module="sklearn"``, and cymlp warns from its own modules, so under the
# patch those warnings come through. They are counted below rather than
# printed; ``module="sklearn|cymlp"`` would hide them in both cases.

plt.close(plt.figure())  # matplotlib's first figure costs extra: not timed
runs = {}
for patched in (False, True):
    if patched:
        cymlp.patch_sklearn()
    print("patched:", cymlp.sklearn_is_patched())
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            start = time.perf_counter()
            fig, models = compare_learning_strategies()
            seconds = time.perf_counter() - start
    finally:
        cymlp.unpatch_sklearn()
    n_warnings = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    runs[patched] = {"fig": fig, "models": models, "seconds": seconds,
                     "warnings": n_warnings}

unpatched, patched = runs[False], runs[True]
plt.close(unpatched["fig"])  # the same picture as the patched run's
some_model = next(iter(patched["models"].values()))[0]
print("patched run trained", type(some_model).__module__, type(some_model).__name__)
print(
    "whole example: %.2f s unpatched, %.2f s patched (%.1fx)"
    % (unpatched["seconds"], patched["seconds"],
       unpatched["seconds"] / patched["seconds"])
)
print(
    "warnings through the example's filter: %d unpatched, %d patched"
    % (unpatched["warnings"], patched["warnings"])
)

# %%
# The same results
# ----------------
# For every data set and learning strategy: the training score each run
# reports, the number of epochs, and the largest difference between the two
# runs' loss curves and weights. The scores and epochs are equal; the
# differences are rounding, far below anything the example prints or draws.

print("%-8s %-37s %7s %7s %6s %9s %9s" % (
    "data", "strategy", "score", "patched", "epochs", "loss diff", "coef diff"))
same = 0
for key, (sk_model, sk_score) in unpatched["models"].items():
    cy_model, cy_score = patched["models"][key]
    same += sk_score == cy_score and sk_model.n_iter_ == cy_model.n_iter_
    loss_diff = np.max(np.abs(np.subtract(sk_model.loss_curve_, cy_model.loss_curve_)))
    coef_diff = max(np.max(np.abs(a - b)) for a, b in zip(sk_model.coefs_, cy_model.coefs_))
    print("%-8s %-37s %7.4f %7.4f %6d %9.1e %9.1e" % (
        *key, sk_score, cy_score, cy_model.n_iter_, loss_diff, coef_diff))
print("same score and number of epochs: %d of %d models" % (same, len(unpatched["models"])))

# %%
# The time
# --------
# The whole example, unpatched and patched: 28 fits on small data, where
# scikit-learn's time goes mostly to Python work around each minibatch and
# cymlp runs each epoch as one compiled call. Both times include what the
# two runs share, loading the data and drawing the figure, so the ratio of
# the fits alone is larger. The numbers are the machine's that built this
# page, at that moment.

fig, ax = plt.subplots(figsize=(7, 2.2))
bar_labels = ["unpatched\n(scikit-learn)", "patched\n(cymlp)"]
totals = [unpatched["seconds"], patched["seconds"]]
ax.barh(bar_labels, totals, color=["C0", "C1"])
for y, value in enumerate(totals):
    ax.annotate("%.2f s" % value, xy=(value, y), xytext=(4, 0),
                textcoords="offset points", va="center")
ax.invert_yaxis()
ax.set_xlabel("seconds for the whole example")
ax.set_title("%.1fx faster, the same results" % (totals[0] / totals[1]))
ax.margins(x=0.15)
fig.tight_layout()
plt.show()

# %%
# Nothing in the example's code changed, and nothing else in scikit-learn
# did: only the two names in ``sklearn.neural_network``, for as long as the
# patch was on. :func:`cymlp.sklearn_is_patched` tells which is in place.

print("patched now:", cymlp.sklearn_is_patched())
