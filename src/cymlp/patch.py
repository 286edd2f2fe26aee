"""``python -m cymlp.patch``: run a program with scikit-learn's MLP patched.

::

    python -m cymlp.patch [-v] script.py [arguments ...]
    python -m cymlp.patch [-v] -m module [arguments ...]

The program runs as ``python script.py [arguments ...]`` (or ``python -m
module ...``) would run it, after :func:`cymlp.patch_sklearn`: its
``__name__`` is ``"__main__"``, ``sys.argv`` is what it would be there
(the script's path as given, then its arguments), the script's directory
comes first on ``sys.path``, its exit status is the process's, and an
exception that ends it prints the program's traceback, without this
runner's frames, and exits with status 1.

Everything after the script's path (or the module's name) belongs to the
program, even words that look like this runner's options.
"""

from __future__ import annotations

import builtins
import importlib.machinery
import importlib.util
import io
import os
import pkgutil
import runpy
import sys
import types

from ._patching import patch_sklearn

__all__ = ["main"]

PROG = "python -m cymlp.patch"

USAGE = f"""\
usage: {PROG} [-h] [-v] script.py [arguments ...]
       {PROG} [-h] [-v] -m module [arguments ...]

Run a Python script or module with scikit-learn's MLPClassifier and
MLPRegressor replaced by cymlp's (cymlp.patch_sklearn()), as
`python script.py ...` or `python -m module ...` would run it.

options:
  -h, --help     show this message and exit
  -v, --verbose  print what was patched to standard error
  -m module      run a module (or a package's __main__) as a script
"""


class _UsageError(Exception):
    pass


def _parse(argv):
    """(verbose, kind, target, program_args) from the runner's arguments."""
    verbose = False
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-h", "--help"):
            print(USAGE, end="")
            raise SystemExit(0)
        if arg in ("-v", "--verbose"):
            verbose = True
        elif arg == "-m" or (arg.startswith("-m") and not arg.startswith("--")):
            # "-m name" and "-mname", as the interpreter accepts them
            if arg == "-m":
                if i + 1 >= len(argv):
                    raise _UsageError("argument -m: expected a module name")
                return verbose, "module", argv[i + 1], argv[i + 2:]
            return verbose, "module", arg[2:], argv[i + 1:]
        elif arg == "--":
            if i + 1 >= len(argv):
                raise _UsageError("expected a script after --")
            return verbose, "script", argv[i + 1], argv[i + 2:]
        elif arg.startswith("-") and arg != "-":
            raise _UsageError(f"unknown option {arg!r}")
        else:
            return verbose, "script", arg, argv[i + 1:]
        i += 1
    raise _UsageError("expected a script or -m module")


def _run_file(path):
    """Run the Python source file ``path`` as ``python path`` runs it."""
    # runpy.run_path would set __file__ to the path as given; the
    # interpreter (3.9 on) makes it absolute while sys.argv[0] stays as
    # given, and scripts that chdir and then read __file__ rely on that.
    # So the module is built here, as the interpreter builds it.
    full = os.path.abspath(path)
    with io.open_code(full) as f:
        source = f.read()
    # compiled from bytes, so that a coding declaration is honoured
    code = compile(source, full, "exec", dont_inherit=True)
    main = types.ModuleType("__main__")
    main.__file__ = full
    main.__cached__ = None
    main.__loader__ = importlib.machinery.SourceFileLoader("__main__", full)
    main.__spec__ = None
    main.__builtins__ = builtins
    # classes and functions the script defines pickle as __main__.<name>,
    # and multiprocessing's spawned children find the script by __file__
    sys.modules["__main__"] = main
    exec(code, main.__dict__)


def _check_module(name):
    """None if ``name`` can run with ``-m``, else the interpreter's complaint."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError) as exc:
        return f"{exc.__class__.__name__}: {exc}"
    if spec is None:
        return f"No module named {name}"
    if spec.submodule_search_locations is not None:
        main_name = name + ".__main__"
        try:
            main_spec = importlib.util.find_spec(main_name)
        except ImportError as exc:
            return f"{exc.__class__.__name__}: {exc}"
        if main_spec is None:
            return (
                f"No module named {main_name}; {name!r} is a package and "
                "cannot be directly executed"
            )
    return None


def _program_traceback(tb):
    """``tb`` without its first frames, those of this runner and of runpy."""
    own = (globals(), runpy.__dict__)
    while tb is not None and any(tb.tb_frame.f_globals is g for g in own):
        tb = tb.tb_next
    return tb


def main(argv=None):
    r"""Run a script or module with scikit-learn's MLP patched; the entry point.

    The command ``python -m cymlp.patch [-v] script.py [arguments ...]`` (or
    ``... -m module [arguments ...]``) calls this function. It patches
    scikit-learn (:func:`cymlp.patch_sklearn`), sets ``sys.argv`` and
    ``sys.path[0]`` as the interpreter would for the program, and runs it
    as ``__main__``. It leaves them so: it is meant to be the last thing a
    process does.

    Parameters
    ----------
    argv : list of str, default=None
        The runner's arguments; ``None`` reads ``sys.argv[1:]``.

    Returns
    -------
    status : int
        0 when the program ends normally, 1 when an exception ends it (its
        traceback is printed), 2 for a usage error or a script that cannot
        be opened. A ``sys.exit`` of the program is not caught: its status
        is the process's.

    Examples
    --------
    A script that prints its arguments and the class its import gives:

    >>> import os, subprocess, sys, tempfile
    >>> script = (
    ...     "import sys\n"
    ...     "from sklearn.neural_network import MLPClassifier\n"
    ...     "print(sys.argv[1:], MLPClassifier.__module__)\n"
    ... )
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "show.py")
    ...     with open(path, "w") as f:
    ...         _ = f.write(script)
    ...     run = subprocess.run(
    ...         [sys.executable, "-m", "cymlp.patch", path, "--flag", "x"],
    ...         capture_output=True, text=True)
    >>> print(run.stdout.strip(), run.returncode)
    ['--flag', 'x'] cymlp._classifier 0
    """
    if argv is None:
        argv = sys.argv[1:]
    try:
        verbose, kind, target, args = _parse(list(argv))
    except _UsageError as exc:
        print(USAGE.split("\n\n")[0], file=sys.stderr)
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2

    if kind == "script":
        if not os.path.exists(target):
            # the interpreter's own message and status for a missing script
            print(
                f"{PROG}: can't open file {os.path.abspath(target)!r}: "
                "[Errno 2] No such file or directory",
                file=sys.stderr,
            )
            return 2
        importer = pkgutil.get_importer(target)
        if importer is not None and importer.find_spec("__main__") is None:
            print(
                f"{PROG}: can't find '__main__' module in {target!r}",
                file=sys.stderr,
            )
            return 1
    else:
        problem = _check_module(target)
        if problem is not None:
            print(f"{PROG}: {problem}", file=sys.stderr)
            return 1

    patch_sklearn(verbose=verbose)

    try:
        if kind == "script":
            sys.argv = [target, *args]
            if not getattr(sys.flags, "safe_path", False) and sys.path:
                # `python -m cymlp.patch` put the working directory first;
                # `python script.py` puts the script's directory there, and
                # `python archive.zip` the archive (which run_path inserts)
                if importer is None:
                    sys.path[0] = os.path.dirname(os.path.realpath(target))
                else:
                    del sys.path[0]
            if importer is None:
                _run_file(target)
            else:
                # a directory or zip archive with a __main__.py: runpy runs
                # those as the interpreter does
                runpy.run_path(target, run_name="__main__")
        else:
            # run_module replaces sys.argv[0] by the module's file, as -m does
            sys.argv = [target, *args]
            runpy.run_module(target, run_name="__main__", alter_sys=True)
    except SystemExit:
        raise
    except Exception as exc:
        # The interpreter would print this; printing it here lets the
        # traceback start at the program's own frames. The hook prints the
        # exception's own __traceback__ (its tb argument only fills in a
        # missing one), so that is what is trimmed.
        exc.__traceback__ = _program_traceback(exc.__traceback__)
        sys.excepthook(type(exc), exc, exc.__traceback__)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
