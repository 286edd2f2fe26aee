"""How far cymlp's results drift from scikit-learn's, against sklearn's own sensitivity.

cymlp reproduces scikit-learn's arithmetic, but not the order of every sum
(its matrix products run on SciPy's BLAS, with their own blocking), so each
operation can round differently by a unit in the last place. Most training
damps such differences; some amplifies them. This script measures two such
cases and, as the yardstick, how far scikit-learn moves from *itself* when the
training data move by one unit in the last place (``np.nextafter`` away from
zero on every nonzero value of X), a perturbation of the same size as the rounding.

1. Long lbfgs runs: the setup of scikit-learn's ``plot_mlp_alpha`` example
   (three 2-D data sets, five alphas, ``solver="lbfgs"``, ``max_iter=2000``,
   hidden layers (10, 10), after a StandardScaler): 15 fits.
2. float32 adam: the digits data in float32, hidden (100,), 200 epochs, five
   seeds; and the same in float64 for contrast.

For each fit it reports ``n_iter_`` and dP, the largest difference of
``predict_proba`` from scikit-learn's (on the example's plotting grid for the
2-D sets, on the training data for digits). Run from the repository root::

    python benchmarks/drift.py            # about a minute

docs/user_guide/drop_in.rst and the README quote its numbers.
"""

import warnings

import numpy as np
from sklearn.datasets import load_digits, make_circles, make_classification, make_moons
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.preprocessing import StandardScaler

import cymlp


def one_ulp(X):
    """X with every nonzero value moved by one unit in the last place, away from zero.

    Zeros stay zeros (the digits' blank pixels would otherwise become
    subnormal numbers, a change of another kind).
    """
    moved = np.nextafter(X, np.copysign(np.inf, X)).astype(X.dtype)
    return np.where(X == 0, X, moved)


def example_datasets():
    """The three data sets of scikit-learn's plot_mlp_alpha example."""
    X, y = make_classification(n_features=2, n_redundant=0, n_informative=2,
                               random_state=0, n_clusters_per_class=1)
    X += 2 * np.random.RandomState(2).uniform(size=X.shape)
    return {
        "moons": make_moons(noise=0.3, random_state=0),
        "circles": make_circles(noise=0.2, factor=0.5, random_state=1),
        "linear": (X, y),
    }


def compare(make, X_fit, y, X_eval):
    """Fit scikit-learn on X, cymlp on X, scikit-learn on X moved by one ulp.

    Returns the three n_iter_ and the largest predict_proba differences of
    cymlp and of the moved scikit-learn from scikit-learn.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = make(SkMLPClassifier).fit(X_fit, y)
        ours = make(cymlp.MLPClassifier).fit(X_fit, y)
        moved = make(SkMLPClassifier).fit(one_ulp(X_fit), y)
    p = ref.predict_proba(X_eval)
    return (
        (ref.n_iter_, ours.n_iter_, moved.n_iter_),
        np.abs(ours.predict_proba(X_eval) - p).max(),
        np.abs(moved.predict_proba(X_eval) - p).max(),
    )


def report(title, rows):
    print(f"\n{title}")
    print(f"{'fit':<22} {'n_iter_ sk / cymlp / sk+ulp':>28} {'dP cymlp':>11} {'dP sk+ulp':>12}")
    for name, iters, d_ours, d_moved in rows:
        print(f"{name:<22} {' / '.join(map(str, iters)):>28} {d_ours:>11.2g} {d_moved:>12.2g}")
    for label, column in (("cymlp", 2), ("sklearn, X moved one ulp", 3)):
        d = np.array([r[column] for r in rows])
        n_iter = sum(r[1][0] != r[1][column - 1] for r in rows)
        print(f"{label:<25} dP median {np.median(d):.2g}, max {d.max():.2g}; "
              f"dP > 0.01 in {(d > 0.01).sum()} of {len(rows)} fits; "
              f"n_iter_ differs in {n_iter}")


def lbfgs_example():
    rows = []
    for name, (X, y) in example_datasets().items():
        X = StandardScaler().fit_transform(X)
        X_train, _, y_train, _ = train_test_split(X, y, test_size=0.4, random_state=42)
        # the example's plotting grid, step 0.02 around the data
        xx, yy = np.meshgrid(
            np.arange(X[:, 0].min() - 0.5, X[:, 0].max() + 0.5, 0.02),
            np.arange(X[:, 1].min() - 0.5, X[:, 1].max() + 0.5, 0.02),
        )
        grid = np.c_[xx.ravel(), yy.ravel()]
        for alpha in np.logspace(-1, 1, 5):
            def make(cls, alpha=alpha):
                return cls(solver="lbfgs", alpha=alpha, random_state=1, max_iter=2000,
                           early_stopping=True, hidden_layer_sizes=[10, 10])
            rows.append((f"{name} alpha={alpha:.2g}", *compare(make, X_train, y_train, grid)))
    report("1. lbfgs, max_iter=2000 (sklearn's plot_mlp_alpha setup)", rows)


def adam_digits(dtype):
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(dtype)
    rows = []
    for seed in range(5):
        def make(cls, seed=seed):
            return cls(hidden_layer_sizes=(100,), max_iter=200, random_state=seed)
        rows.append((f"seed={seed}", *compare(make, X, y, X)))
    report(f"2. adam, digits in {np.dtype(dtype).name}, max_iter=200", rows)


if __name__ == "__main__":
    lbfgs_example()
    adam_digits(np.float32)
    adam_digits(np.float64)
