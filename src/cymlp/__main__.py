"""``python -m cymlp``: train cymlp and scikit-learn side by side on the digits data.

Both ``cymlp.MLPClassifier`` and ``sklearn.neural_network.MLPClassifier`` are
fitted with identical parameters and ``random_state`` on scikit-learn's bundled
8x8 digits (1797 samples, 64 features; standardized, stratified 75/25
train/test split). For each model the script prints the test accuracy, the fit
time, the time per epoch and ``n_iter_``; then the speedup (sklearn time /
cymlp time) and the largest absolute difference between the two models'
``coefs_`` and ``intercepts_`` -- near zero when both learned the same weights.

Fit times are the best of ``--repeat`` fits of each library, interleaved.
Both libraries' BLAS run one thread by default (``--blas-threads``): on data
this small a second thread buys nothing, and on a busy machine a BLAS thread
waiting for a preempted partner makes the timings swing widely.
A ConvergenceWarning (``max_iter`` reached) is caught and reported in the
output; every other warning is shown as usual. For careful timings on larger
data see ``benchmarks/run.py`` (the benchmark suite) in the source repository.
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SklearnMLP
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

import cymlp
from cymlp import MLPClassifier as CymlpMLP


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m cymlp",
        description="Train cymlp and scikit-learn MLPClassifier side by side on digits.",
    )
    parser.add_argument("--hidden", type=int, nargs="+", default=[100], metavar="N",
                        help="hidden layer sizes (default: 100)")
    parser.add_argument("--max-iter", type=int, default=200,
                        help="maximum number of epochs (default: 200)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="minibatch size (default: 'auto' = min(200, n_samples))")
    parser.add_argument("--solver", choices=["adam", "sgd"], default="adam",
                        help="optimizer (default: adam)")
    parser.add_argument("--seed", type=int, default=0,
                        help="random_state of both models and of the split (default: 0)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="fits per library; the fastest is reported (default: 3)")
    parser.add_argument("--blas-threads", type=int, default=1, metavar="N",
                        help="BLAS threads of both libraries; 0 leaves the BLAS "
                             "default (default: 1)")
    args = parser.parse_args(argv)
    if args.blas_threads < 0:
        parser.error("--blas-threads must be >= 0")
    return args


def fit_timed(cls, params, X, y):
    """Fit a fresh model; return (model, seconds, ConvergenceWarning raised?)."""
    model = cls(**params)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        model.fit(X, y)
        seconds = time.perf_counter() - start
    converged = True
    for w in caught:
        if issubclass(w.category, ConvergenceWarning):
            converged = False
        else:  # not ours to hide
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return model, seconds, converged


def max_abs_diff(arrays_a, arrays_b):
    return max(
        float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
        for a, b in zip(arrays_a, arrays_b)
    )


def main(argv=None):
    args = parse_args(argv)
    if args.blas_threads:
        with threadpool_limits(limits=args.blas_threads):
            run(args)
    else:
        run(args)


def run(args):
    """Fit both libraries on digits as ``args`` says and print the comparison."""

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=args.seed
    )
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

    params = dict(
        hidden_layer_sizes=tuple(args.hidden),
        solver=args.solver,
        max_iter=args.max_iter,
        batch_size="auto" if args.batch_size is None else args.batch_size,
        random_state=args.seed,
    )
    print(f"cymlp {getattr(cymlp, '__version__', '?')}: digits, "
          f"{X_train.shape[0]} train / {X_test.shape[0]} test samples, "
          f"{X_train.shape[1]} features, 10 classes")
    print("parameters: " + ", ".join(f"{k}={v!r}" for k, v in params.items()))
    print("BLAS threads: " + (str(args.blas_threads) if args.blas_threads
                              else "the BLAS default"))

    libraries = [("scikit-learn", SklearnMLP), ("cymlp", CymlpMLP)]
    best = {name: None for name, _ in libraries}
    for r in range(max(1, args.repeat)):
        # Alternate the order so background load falls on both alike.
        for name, cls in libraries if r % 2 == 0 else libraries[::-1]:
            model, seconds, converged = fit_timed(cls, params, X_train, y_train)
            if best[name] is None or seconds < best[name][1]:
                best[name] = (model, seconds, converged)

    print()
    print(f"{'':<14}{'test acc':>10}{'fit (s)':>10}{'s/epoch':>11}{'n_iter_':>9}  converged")
    for name, _ in libraries:
        model, seconds, converged = best[name]
        acc = model.score(X_test, y_test)
        print(f"{name:<14}{acc:>10.4f}{seconds:>10.3f}{seconds / model.n_iter_:>11.5f}"
              f"{model.n_iter_:>9}  {'yes' if converged else 'no (ConvergenceWarning)'}")

    sk, (cy, cy_seconds, _) = best["scikit-learn"][0], best["cymlp"]
    sk_seconds = best["scikit-learn"][1]
    print()
    print(f"speedup (sklearn / cymlp): fit {sk_seconds / cy_seconds:.1f}x, per epoch "
          f"{(sk_seconds / sk.n_iter_) / (cy_seconds / cy.n_iter_):.1f}x "
          f"(best of {max(1, args.repeat)} fits each)")
    if sk.n_iter_ != cy.n_iter_:
        print(f"note: the models ran a different number of epochs "
              f"({sk.n_iter_} vs {cy.n_iter_}); their weights are not comparable")
    print(f"max |coefs_ difference|:      {max_abs_diff(sk.coefs_, cy.coefs_):.3e}")
    print(f"max |intercepts_ difference|: {max_abs_diff(sk.intercepts_, cy.intercepts_):.3e}")
    agree = np.mean(sk.predict(X_test) == cy.predict(X_test))
    print(f"identical test predictions:   {agree:.2%}")
    if not all(best[name][2] for name, _ in libraries):
        print("\nConvergenceWarning was raised (max_iter reached before the loss stopped "
              "improving) and silenced above; raise --max-iter to train to convergence.")


if __name__ == "__main__":
    main()
