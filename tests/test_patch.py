"""``cymlp.patch_sklearn`` and ``python -m cymlp.patch``.

* scikit-learn's own MLP gallery examples (tests/_sklearn_mlp_examples.py),
  run as a plain script and under ``python -m cymlp.patch``, give the same
  numbers; only the classes differ.
* Patching rebinds exactly two names of ``sklearn.neural_network``;
  unpatching binds the very same class objects as before; both are
  idempotent and safe to call from many threads at once.
* Estimators made while patched are cymlp's through and through: clone,
  pickle (also loaded unpatched), skops, repr, get_params, HTML repr,
  is_classifier / is_regressor.
* The runner passes arguments, exit status and the program's traceback
  through, for scripts, ``-m`` modules and packages.
* ``import cymlp`` patches nothing and imports neither the patch machinery
  nor ``sklearn.neural_network``.
"""

import doctest
import importlib
import logging
import os
import pickle
import subprocess
import sys
import textwrap
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import sklearn.neural_network
import sklearn.neural_network._multilayer_perceptron as sk_mlp_module
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.datasets import load_iris, make_regression

import cymlp
from cymlp import _patching

pytestmark = pytest.mark.usefixtures("one_blas_thread", "quiet")

TESTS = Path(__file__).resolve().parent
EXAMPLES_SCRIPT = TESTS / "_sklearn_mlp_examples.py"

# scikit-learn's classes, taken before any test patched anything
SK_CLASSIFIER = sk_mlp_module.MLPClassifier
SK_REGRESSOR = sk_mlp_module.MLPRegressor


@pytest.fixture(autouse=True)
def unpatched():
    """Every test starts and ends with scikit-learn's classes in place."""
    cymlp.unpatch_sklearn()
    assert sklearn.neural_network.MLPClassifier is SK_CLASSIFIER
    yield
    cymlp.unpatch_sklearn()


def _run(args, cwd=None, timeout=300):
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, cwd=cwd,
        timeout=timeout,
    )


# -- scikit-learn's examples ------------------------------------------------


def _compare(reference, patched, path=()):
    """Assert two result trees of _sklearn_mlp_examples.py match; count leaves."""
    if isinstance(reference, dict):
        assert reference.keys() == patched.keys(), path
        return sum(_compare(reference[k], patched[k], path + (k,)) for k in reference)
    if isinstance(reference, list):
        assert len(reference) == len(patched), path
        return sum(_compare(a, b, path + (i,)) for i, (a, b) in enumerate(zip(reference, patched)))
    if isinstance(reference, str):
        # which class trained: the only thing that must differ
        if path[-1] == "class":
            assert reference.startswith("sklearn.neural_network."), (path, reference)
            assert patched == "cymlp." + {
                "MLPClassifier": "_classifier.MLPClassifier",
                "MLPRegressor": "_regressor.MLPRegressor",
            }[reference.rsplit(".", 1)[1]], (path, patched)
        else:
            assert reference == patched, path
        return 1
    if isinstance(reference, (int, np.integer)) and not isinstance(reference, bool):
        # epochs run: exactly the same
        assert reference == patched, path
        return 1
    # Loss curves, weights, scores, probabilities, partial dependence: the
    # same to rounding (float64 training; the lbfgs runs are kept short
    # enough that rounding differences stay below this, see the script)
    assert_allclose(patched, reference, rtol=1e-10, atol=1e-10, err_msg=str(path))
    return 1


def test_sklearn_examples_give_the_same_numbers_under_the_runner(tmp_path):
    reference_out, patched_out = tmp_path / "sklearn.pkl", tmp_path / "cymlp.pkl"
    # both at once: they are independent, and the scikit-learn run is the slow one
    procs = [
        subprocess.Popen(
            [sys.executable, *runner, str(EXAMPLES_SCRIPT), str(out), "--alpha-max-iter", "30"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        )
        for runner, out in [([], reference_out), (["-m", "cymlp.patch"], patched_out)]
    ]
    (ref_stdout, ref_stderr), (cy_stdout, cy_stderr) = [p.communicate(timeout=600) for p in procs]
    assert procs[0].returncode == 0, ref_stderr
    assert procs[1].returncode == 0, cy_stderr

    reference = pickle.loads(reference_out.read_bytes())
    patched = pickle.loads(patched_out.read_bytes())
    # the script saw its own arguments, as given, in both runs
    for result, out in [(reference, reference_out), (patched, patched_out)]:
        assert result.pop("argv") == [str(EXAMPLES_SCRIPT), str(out), "--alpha-max-iter", "30"]
    assert set(reference) == {"training_curves", "mnist_filters", "mlp_alpha", "partial_dependence"}
    n_checked = _compare(reference, patched)
    assert n_checked > 400  # every model of every example was compared
    # the MNIST example's verbose=10 lines, printed by each library, agree
    ref_lines = [line for line in ref_stdout.splitlines() if line.startswith("Iteration")]
    assert len(ref_lines) == 8
    assert [line for line in cy_stdout.splitlines() if line.startswith("Iteration")] == ref_lines


# -- the patch itself ---------------------------------------------------------


def test_round_trip_restores_the_same_class_objects():
    private_before = dict(vars(sk_mlp_module))
    cymlp.patch_sklearn()
    assert sklearn.neural_network.MLPClassifier is cymlp.MLPClassifier
    assert sklearn.neural_network.MLPRegressor is cymlp.MLPRegressor
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    assert (MLPClassifier, MLPRegressor) == (cymlp.MLPClassifier, cymlp.MLPRegressor)
    # the private module (what pickles of scikit-learn's estimators name) is
    # never touched
    assert sk_mlp_module.MLPClassifier is SK_CLASSIFIER
    assert vars(sk_mlp_module) == private_before

    cymlp.unpatch_sklearn()
    assert sklearn.neural_network.MLPClassifier is SK_CLASSIFIER
    assert sklearn.neural_network.MLPRegressor is SK_REGRESSOR
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    assert MLPClassifier is SK_CLASSIFIER and MLPRegressor is SK_REGRESSOR
    assert vars(sk_mlp_module) == private_before


def test_patch_and_unpatch_are_idempotent():
    cymlp.patch_sklearn()
    cymlp.patch_sklearn()
    # the second call did not record cymlp's class as the one to restore
    cymlp.unpatch_sklearn()
    assert sklearn.neural_network.MLPClassifier is SK_CLASSIFIER
    assert sklearn.neural_network.MLPRegressor is SK_REGRESSOR
    cymlp.unpatch_sklearn()
    assert sklearn.neural_network.MLPClassifier is SK_CLASSIFIER
    assert not cymlp.sklearn_is_patched()


def test_only_the_two_names_change():
    import sklearn.base

    watched = [sklearn.neural_network, sk_mlp_module, sklearn.base, sklearn]
    before = [dict(vars(module)) for module in watched]
    cymlp.patch_sklearn()
    after = [dict(vars(module)) for module in watched]
    changed = {
        (module.__name__, name)
        for module, old, new in zip(watched, before, after)
        for name in old.keys() | new.keys()
        if old.get(name, None) is not new.get(name, None)
    }
    assert changed == {
        ("sklearn.neural_network", "MLPClassifier"),
        ("sklearn.neural_network", "MLPRegressor"),
    }
    assert sklearn.neural_network.BernoulliRBM is before[0]["BernoulliRBM"]
    cymlp.unpatch_sklearn()
    assert all(
        dict(vars(module)) == old for module, old in zip(watched, before)
    )


def test_names_bound_before_the_patch_stay_the_users():
    # a module of the user's, imported before the patch
    namespace = {}
    exec("from sklearn.neural_network import MLPClassifier", namespace)
    cymlp.patch_sklearn()
    assert namespace["MLPClassifier"] is SK_CLASSIFIER
    # an import that runs after the patch, and a lookup through the module
    # at call time, both see cymlp's
    later = {}
    exec("from sklearn.neural_network import MLPClassifier", later)
    assert later["MLPClassifier"] is cymlp.MLPClassifier
    import sklearn.neural_network as nn

    assert nn.MLPClassifier is cymlp.MLPClassifier


def test_patch_selected_estimators():
    cymlp.patch_sklearn("MLPRegressor")
    assert sklearn.neural_network.MLPRegressor is cymlp.MLPRegressor
    assert sklearn.neural_network.MLPClassifier is SK_CLASSIFIER
    assert cymlp.sklearn_is_patched("MLPRegressor")
    assert not cymlp.sklearn_is_patched()
    cymlp.patch_sklearn(["MLPClassifier"])
    assert cymlp.sklearn_is_patched()
    cymlp.unpatch_sklearn(["MLPRegressor"])
    assert sklearn.neural_network.MLPRegressor is SK_REGRESSOR
    assert cymlp.sklearn_is_patched("MLPClassifier")
    cymlp.unpatch_sklearn("MLPClassifier")
    assert sklearn.neural_network.MLPClassifier is SK_CLASSIFIER


@pytest.mark.parametrize("bad, error", [
    ("BernoulliRBM", ValueError),
    (["MLPClassifier", "SVC"], ValueError),
    (42, TypeError),
])
def test_unknown_estimator_names_are_refused(bad, error):
    for function in (cymlp.patch_sklearn, cymlp.unpatch_sklearn, cymlp.sklearn_is_patched):
        with pytest.raises(error):
            function(bad)
    assert sklearn.neural_network.MLPClassifier is SK_CLASSIFIER


def test_verbose_and_logging_say_what_happened(capsys, caplog):
    with caplog.at_level(logging.INFO, logger="cymlp.patch"):
        cymlp.patch_sklearn(verbose=True)
        cymlp.patch_sklearn("MLPClassifier", verbose=True)
        cymlp.unpatch_sklearn(verbose=True)
        cymlp.unpatch_sklearn("MLPRegressor")
    captured = capsys.readouterr()
    assert captured.out == ""  # a patched program's standard output is its own
    assert captured.err.splitlines() == [
        "cymlp: sklearn.neural_network.MLPClassifier -> cymlp.MLPClassifier",
        "cymlp: sklearn.neural_network.MLPRegressor -> cymlp.MLPRegressor",
        "cymlp: sklearn.neural_network.MLPClassifier is cymlp's already",
        "cymlp: sklearn.neural_network.MLPClassifier is scikit-learn's again",
        "cymlp: sklearn.neural_network.MLPRegressor is scikit-learn's again",
    ]
    # the logger gets every message, verbose or not
    assert [r.getMessage() for r in caplog.records][-1] == (
        "sklearn.neural_network.MLPRegressor was not patched")
    assert len(caplog.records) == 6


def test_unpatch_leaves_a_foreign_rebinding_alone():
    cymlp.patch_sklearn("MLPClassifier")

    class Theirs:
        pass

    sklearn.neural_network.MLPClassifier = Theirs
    try:
        with pytest.warns(RuntimeWarning, match="rebound"):
            cymlp.unpatch_sklearn("MLPClassifier")
        assert sklearn.neural_network.MLPClassifier is Theirs
        assert not cymlp.sklearn_is_patched("MLPClassifier")
    finally:
        sklearn.neural_network.MLPClassifier = SK_CLASSIFIER


def test_concurrent_patch_calls(global_random_seed):
    n_threads, rounds = 8, 50
    rng = np.random.RandomState(global_random_seed)
    # each thread its own random sequence of patch and unpatch calls
    plans = rng.rand(n_threads, rounds) < 0.7
    barrier = threading.Barrier(n_threads)
    errors = []

    def work(plan):
        try:
            barrier.wait()
            for patch in plan:
                (cymlp.patch_sklearn if patch else cymlp.unpatch_sklearn)()
                # whatever the interleaving, the names hold one of the two classes
                assert sklearn.neural_network.MLPClassifier in (SK_CLASSIFIER, cymlp.MLPClassifier)
            barrier.wait()
            cymlp.patch_sklearn()  # everyone at once
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(plan,)) for plan in plans]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert cymlp.sklearn_is_patched()
    # recorded originals are scikit-learn's, never cymlp's own class
    assert {name: record[1] for name, record in _patching._originals.items()} == {
        "MLPClassifier": SK_CLASSIFIER, "MLPRegressor": SK_REGRESSOR}
    cymlp.unpatch_sklearn()
    assert sklearn.neural_network.MLPClassifier is SK_CLASSIFIER
    assert sklearn.neural_network.MLPRegressor is SK_REGRESSOR


def test_is_patched_never_imports_sklearn_neural_network():
    code = textwrap.dedent("""
        import sys, cymlp
        assert cymlp.sklearn_is_patched() is False
        assert "sklearn.neural_network" not in sys.modules
        print("ok")
    """)
    proc = _run(["-c", code])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_importing_cymlp_patches_nothing_and_loads_no_patch_machinery():
    code = textwrap.dedent("""
        import sys
        import cymlp
        loaded = sorted(m for m in ("sklearn.neural_network", "cymlp._patching",
                                    "cymlp.patch") if m in sys.modules)
        print(loaded)
        # once sklearn.neural_network is imported, its names are scikit-learn's
        import sklearn.neural_network as nn
        print(nn.MLPClassifier.__module__, nn.MLPRegressor.__module__)
        # the lazy names work, and are one object per name
        from cymlp import patch_sklearn
        assert patch_sklearn is cymlp.patch_sklearn
        assert {"patch_sklearn", "unpatch_sklearn", "sklearn_is_patched"} <= set(dir(cymlp))
    """)
    proc = _run(["-c", code])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "[]",
        "sklearn.neural_network._multilayer_perceptron "
        "sklearn.neural_network._multilayer_perceptron",
    ]


def test_public_api_lists_the_patch_functions():
    for name in ("patch_sklearn", "unpatch_sklearn", "sklearn_is_patched"):
        assert name in cymlp.__all__
        assert getattr(cymlp, name) is getattr(_patching, name)
    api = (TESTS.parent / "docs" / "api.rst")
    if api.is_file():
        text = api.read_text()
        assert "   patch_sklearn" in text and "   unpatch_sklearn" in text


@pytest.mark.parametrize("module", [_patching, "cymlp.patch"])
def test_docstring_examples(module):
    if isinstance(module, str):
        module = importlib.import_module(module)
    # the examples patch and unpatch themselves; ELLIPSIS for paths
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
    assert not cymlp.sklearn_is_patched()


# -- estimators made while patched ----------------------------------------------


def _fit_patched_classifier(seed):
    X, y = load_iris(return_X_y=True)
    cymlp.patch_sklearn()
    clf = sklearn.neural_network.MLPClassifier(
        hidden_layer_sizes=(8,), max_iter=30, random_state=seed).fit(X, y)
    return clf, X


def test_patched_estimators_are_cymlps_throughout(global_random_seed):
    cymlp.patch_sklearn()
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=7, random_state=global_random_seed)
    reg = MLPRegressor(alpha=0.01)
    assert type(clf) is cymlp.MLPClassifier and type(reg) is cymlp.MLPRegressor
    assert type(clone(clf)) is cymlp.MLPClassifier
    assert clone(clf).get_params() == clf.get_params()
    # what scikit-learn's would say, for every parameter scikit-learn has
    sk_params = SK_CLASSIFIER(hidden_layer_sizes=(5,), max_iter=7,
                              random_state=global_random_seed).get_params()
    assert {k: clf.get_params()[k] for k in sk_params} == sk_params
    # the repr shows the parameters set, as scikit-learn's does
    assert repr(clf) == repr(SK_CLASSIFIER(hidden_layer_sizes=(5,), max_iter=7,
                                           random_state=global_random_seed))
    assert repr(reg) == repr(SK_REGRESSOR(alpha=0.01)) == "MLPRegressor(alpha=0.01)"
    html = clf._repr_html_()
    assert "MLPClassifier" in html and "cymlp.readthedocs.io" in html
    assert "scikit-learn.org" not in html.split("<style>")[0] + html.split("</style>")[-1]
    assert is_classifier(clf) and not is_regressor(clf)
    assert is_regressor(reg) and not is_classifier(reg)


def test_isinstance_follows_the_name_not_the_class_object():
    # Decision (docs/user_guide/patching.rst): no virtual subclass. While
    # patched, the name is cymlp's class, so isinstance against the name
    # holds; scikit-learn's class object never claims cymlp's estimators.
    cymlp.patch_sklearn()
    clf = sklearn.neural_network.MLPClassifier()
    assert isinstance(clf, sklearn.neural_network.MLPClassifier)
    assert not isinstance(clf, SK_CLASSIFIER)
    cymlp.unpatch_sklearn()
    assert not isinstance(clf, sklearn.neural_network.MLPClassifier)
    assert not issubclass(cymlp.MLPClassifier, SK_CLASSIFIER)
    assert not issubclass(cymlp.MLPRegressor, SK_REGRESSOR)


def test_pickles_across_patch_states(global_random_seed):
    X, y = load_iris(return_X_y=True)
    # made unpatched: scikit-learn's, pickled while patched and loaded either way
    sk_clf = SK_CLASSIFIER(hidden_layer_sizes=(4,), max_iter=5,
                           random_state=global_random_seed).fit(X, y)
    sk_bytes_unpatched = pickle.dumps(sk_clf)

    clf, _ = _fit_patched_classifier(global_random_seed)  # patches
    patched_bytes = pickle.dumps(clf)
    assert b"cymlp._classifier" in patched_bytes
    sk_bytes_patched = pickle.dumps(sk_clf)  # the private module was left alone
    for data in (sk_bytes_unpatched, sk_bytes_patched):
        loaded = pickle.loads(data)
        assert type(loaded) is SK_CLASSIFIER
        assert_array_equal(loaded.predict_proba(X), sk_clf.predict_proba(X))

    cymlp.unpatch_sklearn()
    loaded = pickle.loads(patched_bytes)
    assert type(loaded) is cymlp.MLPClassifier
    assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    # and it trains on exactly as the original does
    assert_array_equal(loaded.partial_fit(X, y).coefs_[0], clf.partial_fit(X, y).coefs_[0])


def test_pickle_made_while_patched_loads_in_a_process_that_never_patches(tmp_path, global_random_seed):
    clf, X = _fit_patched_classifier(global_random_seed)
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(clf))
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "proba.npy", clf.predict_proba(X))
    code = textwrap.dedent("""
        import pickle, sys
        import numpy as np
        clf = pickle.load(open("model.pkl", "rb"))
        assert type(clf).__module__ == "cymlp._classifier", type(clf)
        np.testing.assert_array_equal(clf.predict_proba(np.load("X.npy")), np.load("proba.npy"))
        import sklearn.neural_network
        assert sklearn.neural_network.MLPClassifier.__module__.startswith("sklearn.")
        print("ok")
    """)
    proc = _run(["-c", code], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_skops_round_trip_of_a_patched_estimator(tmp_path, global_random_seed):
    sio = pytest.importorskip("skops.io")
    X, y = make_regression(n_samples=60, n_features=4, random_state=global_random_seed)
    cymlp.patch_sklearn()
    reg = sklearn.neural_network.MLPRegressor(
        hidden_layer_sizes=(6,), max_iter=20, random_state=global_random_seed).fit(X, y)
    path = tmp_path / "model.skops"
    sio.dump(reg, path)
    cymlp.unpatch_sklearn()
    assert sio.get_untrusted_types(file=path) == ["cymlp._regressor.MLPRegressor"]
    loaded = sio.load(path, trusted=[cymlp.MLPRegressor])
    assert type(loaded) is cymlp.MLPRegressor
    assert_array_equal(loaded.predict(X), reg.predict(X))


# -- python -m cymlp.patch ----------------------------------------------------

SHOW = textwrap.dedent("""
    import json, os, pickle, sys
    import sklearn.neural_network
    from sklearn.neural_network import MLPClassifier

    class Defined:  # pickles as __main__.Defined, as in a plain run
        pass

    print(json.dumps({
        "name": __name__,
        "file": __file__,
        "argv": sys.argv,
        "path0": sys.path[0],
        "class": MLPClassifier.__module__,
        "regressor": sklearn.neural_network.MLPRegressor.__module__,
        "pickled_class": type(pickle.loads(pickle.dumps(Defined()))).__qualname__,
    }))
""")


def _show(proc):
    import json

    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_runner_runs_a_script_as_python_would(tmp_path):
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "show.py").write_text(SHOW)
    args = ["--help", "-v", "-m", "x y", "--"]  # the script's, not the runner's
    plain = _show(_run([os.path.join("scripts", "show.py"), *args], cwd=tmp_path))
    patched = _show(_run(["-m", "cymlp.patch", os.path.join("scripts", "show.py"), *args],
                         cwd=tmp_path))
    assert plain["class"].startswith("sklearn.")
    assert patched["class"] == "cymlp._classifier"
    assert patched["regressor"] == "cymlp._regressor"
    for key in ("name", "file", "argv", "path0", "pickled_class"):
        assert patched[key] == plain[key], key
    assert patched["name"] == "__main__"
    assert patched["argv"] == [os.path.join("scripts", "show.py"), *args]
    assert Path(patched["path0"]) == scripts.resolve()


def test_runner_passes_the_exit_status_through(tmp_path):
    script = tmp_path / "leave.py"
    script.write_text("import sys\nsys.exit(int(sys.argv[1]))\n")
    assert _run(["-m", "cymlp.patch", str(script), "3"]).returncode == 3
    assert _run(["-m", "cymlp.patch", str(script), "0"]).returncode == 0
    # sys.exit with a message: printed on stderr, status 1, as python does
    script.write_text("import sys\nsys.exit('no data')\n")
    proc = _run(["-m", "cymlp.patch", str(script)])
    assert proc.returncode == 1
    assert proc.stderr.strip() == "no data"


def test_runner_shows_the_scripts_traceback(tmp_path):
    script = tmp_path / "fails.py"
    script.write_text(textwrap.dedent("""
        def load(path):
            raise FileNotFoundError(path)

        try:
            load("data.csv")
        except OSError as exc:
            raise RuntimeError("cannot train") from exc
    """))
    plain = _run([str(script)])
    patched = _run(["-m", "cymlp.patch", str(script)])
    assert patched.returncode == plain.returncode == 1
    assert patched.stdout == ""
    # the very traceback python prints: the script's frames, not the runner's
    assert patched.stderr == plain.stderr
    assert 'fails.py", line 6, in <module>' in patched.stderr
    assert "RuntimeError: cannot train" in patched.stderr
    assert "runpy" not in patched.stderr and "cymlp" not in patched.stderr

    script.write_text("x = (\n")  # not even Python
    plain, patched = _run([str(script)]), _run(["-m", "cymlp.patch", str(script)])
    assert patched.returncode == 1
    assert patched.stderr == plain.stderr
    assert "SyntaxError" in patched.stderr


def test_runner_runs_modules_and_packages(tmp_path):
    (tmp_path / "show.py").write_text(SHOW)
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text(SHOW)
    for module, file in [("show", tmp_path / "show.py"), ("pkg", package / "__main__.py")]:
        plain = _show(_run(["-m", module, "a", "--b"], cwd=tmp_path))
        patched = _show(_run(["-m", "cymlp.patch", "-m", module, "a", "--b"], cwd=tmp_path))
        assert patched["class"] == "cymlp._classifier"
        assert patched["name"] == plain["name"] == "__main__"
        assert patched["argv"] == plain["argv"] == [str(file), "a", "--b"]
        assert Path(patched["file"]) == file
    # a directory with a __main__.py runs too, as `python pkg` does
    patched = _show(_run(["-m", "cymlp.patch", "pkg", "c"], cwd=tmp_path))
    assert patched["argv"] == ["pkg", "c"]
    assert patched["class"] == "cymlp._classifier"


def test_runner_module_traceback_and_exit(tmp_path):
    (tmp_path / "boom.py").write_text("import sys\nif sys.argv[1:] == ['exit']:\n"
                                     "    sys.exit(5)\nraise ValueError('boom')\n")
    proc = _run(["-m", "cymlp.patch", "-m", "boom"], cwd=tmp_path)
    assert proc.returncode == 1
    assert 'boom.py", line 4, in <module>' in proc.stderr
    assert "ValueError: boom" in proc.stderr
    assert "runpy" not in proc.stderr
    assert _run(["-m", "cymlp.patch", "-m", "boom", "exit"], cwd=tmp_path).returncode == 5


@pytest.mark.parametrize("args, status, message", [
    ([], 2, "expected a script or -m module"),
    (["--frobnicate", "x.py"], 2, "unknown option '--frobnicate'"),
    (["-m"], 2, "expected a module name"),
    (["missing.py"], 2, "can't open file"),
    (["-m", "no_such_module_here"], 1, "No module named no_such_module_here"),
    (["."], 1, "can't find '__main__' module"),
])
def test_runner_usage_errors(tmp_path, args, status, message):
    proc = _run(["-m", "cymlp.patch", *args], cwd=tmp_path)
    assert proc.returncode == status
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_runner_help_and_verbose(tmp_path):
    proc = _run(["-m", "cymlp.patch", "--help"])
    assert proc.returncode == 0
    assert proc.stdout.startswith("usage: python -m cymlp.patch")
    (tmp_path / "show.py").write_text(SHOW)
    proc = _run(["-m", "cymlp.patch", "-v", "show.py"], cwd=tmp_path)
    assert _show(proc)["argv"] == ["show.py"]
    assert "cymlp: sklearn.neural_network.MLPClassifier -> cymlp.MLPClassifier" in proc.stderr
    # without -v the runner adds nothing to the program's output
    proc = _run(["-m", "cymlp.patch", "show.py"], cwd=tmp_path)
    assert proc.stderr == ""
