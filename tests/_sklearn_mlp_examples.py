"""scikit-learn's MLP gallery examples, reduced, as one script (test_patch.py).

Each function below is the code of one example in scikit-learn's gallery
(scikit-learn 1.9, ``examples/neural_networks`` and
``examples/inspection``), kept as written (the same estimators, parameters,
seeds, preprocessing and order of calls) except for:

- data: what scikit-learn ships (digits instead of MNIST from OpenML,
  diabetes instead of the bike-sharing data), so that nothing is downloaded;
- plots: gone; the numbers they would draw are recorded instead;
- the alpha example's lbfgs runs: ``--alpha-max-iter`` lowers their 2000
  iterations (the test's 30 keep rounding differences below 1e-10).

Like the examples, it imports the estimators the public way, ``from
sklearn.neural_network import ...`` at the top, so run as a plain script it
trains scikit-learn's estimators, and run under ``python -m cymlp.patch`` it
trains cymlp's. ``python _sklearn_mlp_examples.py OUT [--alpha-max-iter N]``
pickles a dict of plain numbers and arrays (no estimators, so that the file
loads anywhere) to OUT.
"""

import argparse
import pickle
import sys
import warnings

import numpy as np
from sklearn import datasets
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_digits, make_circles, make_classification, make_moons
from sklearn.exceptions import ConvergenceWarning
from sklearn.inspection import partial_dependence
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, QuantileTransformer, StandardScaler


def _fitted(mlp):
    """The numbers of a fitted MLP that the examples print or plot."""
    out = {
        "class": f"{type(mlp).__module__}.{type(mlp).__qualname__}",
        "n_iter": mlp.n_iter_,
        "loss": float(mlp.loss_),
        "coefs": [c.copy() for c in mlp.coefs_],
        "intercepts": [b.copy() for b in mlp.intercepts_],
    }
    if getattr(mlp, "loss_curve_", None) is not None:
        out["loss_curve"] = np.asarray(mlp.loss_curve_)
    if getattr(mlp, "validation_scores_", None) is not None:
        out["validation_scores"] = np.asarray(mlp.validation_scores_)
    return out


def training_curves():
    """"Compare Stochastic learning strategies for MLPClassifier"."""
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
    results = {}

    def plot_on_dataset(X, y, name):
        X = MinMaxScaler().fit_transform(X)
        # digits is larger but converges fairly quickly
        max_iter = 15 if name == "digits" else 400
        for label, param in zip(labels, params):
            mlp = MLPClassifier(random_state=0, max_iter=max_iter, **param)
            # some parameter combinations will not converge as can be seen on
            # the plots so they are ignored here
            with warnings.catch_warnings():
                warnings.filterwarnings(
                    "ignore", category=ConvergenceWarning, module="sklearn"
                )
                mlp.fit(X, y)
            results[name, label] = {**_fitted(mlp), "score": mlp.score(X, y)}

    iris = datasets.load_iris()
    X_digits, y_digits = datasets.load_digits(return_X_y=True)
    data_sets = [
        (iris.data, iris.target),
        (X_digits, y_digits),
        datasets.make_circles(noise=0.2, factor=0.5, random_state=1),
        datasets.make_moons(noise=0.3, random_state=0),
    ]
    for data, name in zip(data_sets, ["iris", "digits", "circles", "moons"]):
        plot_on_dataset(*data, name=name)
    return results


def mnist_filters():
    """"Visualization of MLP weights on MNIST", on digits (8x8, values 0-16)."""
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, random_state=0, test_size=0.7
    )
    mlp = MLPClassifier(
        hidden_layer_sizes=(40,),
        max_iter=8,
        alpha=1e-4,
        solver="sgd",
        verbose=10,
        random_state=1,
        learning_rate_init=0.2,
    )
    # this example won't converge because of resource usage constraints on
    # our Continuous Integration infrastructure, so we catch the warning and
    # ignore it here
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning, module="sklearn")
        mlp.fit(X_train, y_train)
    return {
        **_fitted(mlp),
        "train_score": mlp.score(X_train, y_train),
        "test_score": mlp.score(X_test, y_test),
        # the example draws these, each as an image
        "filters": mlp.coefs_[0].T.reshape(-1, 8, 8),
    }


def mlp_alpha(max_iter=2000):
    """"Varying regularization in Multi-layer Perceptron".

    The example trains lbfgs for up to 2000 iterations, where rounding
    differences grow until the two libraries' models differ visibly (see the
    drop-in page of the user guide); the test passes a smaller max_iter.
    """
    h = 0.02  # step size in the mesh
    alphas = np.logspace(-1, 1, 5)
    classifiers = []
    names = []
    for alpha in alphas:
        classifiers.append(
            make_pipeline(
                StandardScaler(),
                MLPClassifier(
                    solver="lbfgs",
                    alpha=alpha,
                    random_state=1,
                    max_iter=max_iter,
                    early_stopping=True,
                    hidden_layer_sizes=[10, 10],
                ),
            )
        )
        names.append(f"alpha {alpha:.2f}")

    X, y = make_classification(
        n_features=2, n_redundant=0, n_informative=2, random_state=0,
        n_clusters_per_class=1,
    )
    rng = np.random.RandomState(2)
    X += 2 * rng.uniform(size=X.shape)
    linearly_separable = (X, y)
    data_sets = [
        make_moons(noise=0.3, random_state=0),
        make_circles(noise=0.2, factor=0.5, random_state=1),
        linearly_separable,
    ]
    results = {}
    for ds_cnt, (X, y) in enumerate(data_sets):
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=0.4, random_state=42
        )
        x_min, x_max = X[:, 0].min() - 0.5, X[:, 0].max() + 0.5
        y_min, y_max = X[:, 1].min() - 0.5, X[:, 1].max() + 0.5
        xx, yy = np.meshgrid(np.arange(x_min, x_max, h), np.arange(y_min, y_max, h))
        for name, clf in zip(names, classifiers):
            with warnings.catch_warnings():
                # the reduced max_iter stops lbfgs early, on purpose
                warnings.filterwarnings("ignore", category=ConvergenceWarning)
                clf.fit(X_train, y_train)
            score = clf.score(X_test, y_test)
            # the decision surface the example draws
            Z = clf.predict_proba(np.column_stack([xx.ravel(), yy.ravel()]))[:, 1]
            results[ds_cnt, name] = {
                **_fitted(clf[-1]), "score": score, "surface": Z.reshape(xx.shape),
            }
    return results


def partial_dependence_mlp():
    """The MLPRegressor part of "Partial Dependence and Individual Conditional
    Expectation Plots", on the diabetes data (its "sex" column as the
    categorical feature) instead of the bike-sharing data.
    """
    X, y = datasets.load_diabetes(return_X_y=True, as_frame=True)
    X["sex"] = (X["sex"] > 0).map({True: "a", False: "b"}).astype("category")
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.1, random_state=0)
    numerical_features = [c for c in X.columns if c != "sex"]
    categorical_features = ["sex"]
    mlp_preprocessor = ColumnTransformer(
        transformers=[
            ("num", QuantileTransformer(n_quantiles=100), numerical_features),
            ("cat", OneHotEncoder(handle_unknown="ignore"), categorical_features),
        ]
    )
    mlp_model = make_pipeline(
        mlp_preprocessor,
        MLPRegressor(
            hidden_layer_sizes=(30, 15),
            learning_rate_init=0.01,
            early_stopping=True,
            random_state=0,
        ),
    )
    mlp_model.fit(X_train, y_train)
    pd_results = partial_dependence(
        mlp_model, X_train, features=["bmi", "bp"], kind="both",
        grid_resolution=20,
    )
    return {
        **_fitted(mlp_model[-1]),
        "test_r2": mlp_model.score(X_test, y_test),
        "best_validation_score": mlp_model[-1].best_validation_score_,
        "pd_average": pd_results["average"],
        "pd_individual": pd_results["individual"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="where to pickle the results")
    parser.add_argument("--alpha-max-iter", type=int, default=2000,
                        help="max_iter of the alpha example (scikit-learn's: 2000)")
    args = parser.parse_args()
    results = {
        "argv": list(sys.argv),
        "training_curves": training_curves(),
        "mnist_filters": mnist_filters(),
        "mlp_alpha": mlp_alpha(args.alpha_max_iter),
        "partial_dependence": partial_dependence_mlp(),
    }
    with open(args.out, "wb") as f:
        pickle.dump(results, f)


if __name__ == "__main__":
    main()
