"""``python -m cymlp``: the demo runs, and what it prints is true.

The printed accuracies and weight differences are checked against models fitted
here with scikit-learn directly, on the same split and parameters.
"""

import re
import subprocess
import sys
import warnings

import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SkMLP
from sklearn.preprocessing import StandardScaler

from cymlp.__main__ import main


def _reference_accuracy(seed, max_iter, hidden):
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=seed)
    scaler = StandardScaler().fit(X_train)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk = SkMLP(hidden_layer_sizes=hidden, max_iter=max_iter,
                   random_state=seed).fit(scaler.transform(X_train), y_train)
    return sk.score(scaler.transform(X_test), y_test), sk.n_iter_


@pytest.mark.parametrize("blas_threads", ["1", "0"])
def test_demo_reports_sklearn_accuracy_and_matching_weights(capsys, global_random_seed,
                                                            blas_threads):
    seed = global_random_seed
    main(["--max-iter", "4", "--repeat", "1", "--hidden", "20", "--seed", str(seed),
          "--blas-threads", blas_threads])
    out = capsys.readouterr().out
    acc, n_iter = _reference_accuracy(seed, 4, (20,))
    rows = dict(re.findall(r"^(scikit-learn|cymlp)\s+([0-9.]+)\s", out, re.M))
    assert float(rows["scikit-learn"]) == pytest.approx(acc, abs=1e-4)
    assert float(rows["cymlp"]) == pytest.approx(acc, abs=1e-4)
    assert re.search(rf"^cymlp\s+\S+\s+\S+\s+\S+\s+{n_iter}\s", out, re.M)
    coef_diff = float(re.search(r"max \|coefs_ difference\|:\s+(\S+)", out).group(1))
    assert coef_diff < 1e-10
    assert "identical test predictions:   100.00%" in out
    assert ("BLAS threads: 1" in out) == (blas_threads == "1")


def test_demo_rejects_negative_blas_threads(capsys):
    with pytest.raises(SystemExit):
        main(["--blas-threads", "-1"])
    assert "--blas-threads must be >= 0" in capsys.readouterr().err


def test_demo_runs_as_a_module():
    proc = subprocess.run(
        [sys.executable, "-m", "cymlp", "--max-iter", "2", "--repeat", "1",
         "--hidden", "5"],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "speedup (sklearn / cymlp)" in proc.stdout
