"""Another library's code in a process of its own (PyTorch, JAX).

Why: a library's threads do not stop when its call returns. PyTorch's OpenMP
threads spin for a while after each call, XLA keeps a pool of its own; in
the suite's process those threads compete with the next timed fit, whose
engine then finds a busy machine (benchmarks/RESULTS.md, 2026-12-04: cymlp's
thread scaling fell from 1.81x to 1.49x next to PyTorch). In a worker process
they are still on the same cores, as any other program would be, but no
longer in cymlp's or scikit-learn's process. No torch or jax code runs in
the suite's process: every row that times them (training, prediction,
latency, the optimizer steps, peak memory) asks a worker.

The suite's side is ``Worker``: one per library and row, started before the
row's warm-up and closed after its repeats, so that its timed runs
interleave with the other libraries' as before; the worker times each run
itself and answers with seconds, so the pipe's round trip is not timed.
The worker's side is ``serve`` (``python -m suite.worker LIB THREADS``): it
reads pickled requests ``(name, *args)`` from stdin and answers ``(ok,
value)`` on stdout; anything the library prints goes to stderr. The
requests are the methods of the library's loop (``torch_ref.TorchLoop``,
``jax_ref.JaxLoop``), and "quit".

X reaches a worker as a ``.npz`` file written once per data set and run
(``data_file``), read by the worker before the timed runs.
"""

import atexit
import os
import pickle
import subprocess
import sys
import tempfile

import numpy as np

BENCHMARKS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_FILES = {}
_TMP = None


def data_file(name, X, y):
    """The path of a ``.npz`` holding X and y (written on first use, removed
    at exit)."""
    global _TMP
    if name not in _FILES:
        if _TMP is None:
            _TMP = tempfile.TemporaryDirectory(prefix="cymlp-bench-")
            atexit.register(_TMP.cleanup)
        path = os.path.join(_TMP.name, f"{name}.npz")
        np.savez(path, X=X, y=y)
        _FILES[name] = path
    return _FILES[name]


class WorkerError(RuntimeError):
    """A request failed in the worker (the message: the error's type and first line)."""


class Worker:
    """A worker process running ``lib``'s code ("torch" or "jax") on ``threads`` threads.

    torch: ``torch.set_num_threads(threads)``. jax: XLA has no setting that
    holds its CPU client to a number of threads (``--xla_cpu_multi_thread_eigen=false``
    alone still left a "one-thread" worker busy on 1.8 cores here, faster than
    the one-thread FLOP limit), so with fewer threads than usable CPUs the
    worker pins itself to that many CPUs (``pin_cpus``); otherwise XLA's
    default, every core. jax's ``info["cpus"]``: how many CPUs the worker may
    run on (None: unknown).
    """

    def __init__(self, lib, threads):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (BENCHMARKS, env.get("PYTHONPATH"))
                                            if p)
        if lib == "jax" and threads == 1:
            env["XLA_FLAGS"] = " ".join(f for f in (
                env.get("XLA_FLAGS"), "--xla_cpu_multi_thread_eigen=false") if f)
        self.lib = lib
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "suite.worker", lib, str(threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self.info = self.call("info")

    def call(self, name, *args):
        """Run request ``name(*args)`` in the worker; its value, or WorkerError."""
        pickle.dump((name, *args), self.proc.stdin)
        self.proc.stdin.flush()
        try:
            ok, value = pickle.load(self.proc.stdout)
        except EOFError:
            raise WorkerError(f"the {self.lib} worker exited "
                              f"(status {self.proc.wait()})") from None
        if not ok:
            raise WorkerError(value)
        return value

    def close(self):
        if self.proc.poll() is None:
            try:
                pickle.dump(("quit",), self.proc.stdin)
                self.proc.stdin.close()
            except OSError:
                pass
            self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def open_worker(lib, threads, *requests):
    """Start ``lib``'s worker and make ``requests`` of it, in order.

    Parameters
    ----------
    lib : {"torch", "jax"}
    threads : int
        The worker's threads (see ``Worker``).
    *requests : tuple
        ``(name, *args)`` each, as ``Worker.call`` takes them: loading the
        row's data, warming up.

    Returns
    -------
    worker : Worker or None
        None when starting it or a request failed (the worker is then closed).
    answers : list
        The requests' values.
    note : str or None
        When the worker failed, the line for the row's notes: no column for
        ``lib``, and why.
    """
    worker = None
    try:
        worker = Worker(lib, threads)
        answers = [worker.call(*request) for request in requests]
    except WorkerError as exc:
        if worker is not None:
            worker.close()
        return None, [], f"{lib} worker failed, no {lib} column: {exc}"
    return worker, answers, None


def _loop(lib, threads):
    """The worker's loop object: ``info``, ``load(X, y)``, ``warm(params,
    variants)``, ``fit(params, epochs, ...)``."""
    if lib == "torch":
        from suite.torch_ref import TorchLoop

        return TorchLoop(threads)
    if lib == "jax":
        from suite.jax_ref import JaxLoop

        return JaxLoop(threads)
    raise ValueError(lib)


def usable_cpus():
    """The CPUs this process may run on (None where the OS does not say)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return None


def pin_cpus(threads):
    """Hold this process and the threads it starts from now on to the first
    ``threads`` of its usable CPUs, when that is fewer than it has (Linux:
    ``sched_setaffinity``; elsewhere nothing). Returns how many CPUs it may
    then run on, or None where that is unknown."""
    cpus = usable_cpus()
    if cpus is None:
        return None
    if threads < len(cpus) and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cpus[:max(threads, 1)])
        cpus = usable_cpus()
    return len(cpus)


def serve(lib, threads):
    # before the library starts its thread pools, which keep the mask they
    # are created with
    cpus = pin_cpus(threads) if lib == "jax" else None
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # what the library prints goes to stderr, not into the answers
    inp = sys.stdin.buffer
    loop = None
    while True:
        try:
            request = pickle.load(inp)
        except EOFError:
            return
        name, args = request[0], request[1:]
        if name == "quit":
            return
        try:
            if loop is None:
                loop = _loop(lib, threads)
            if name == "load":
                with np.load(args[0]) as f:
                    value = loop.load(f["X"], f["y"])
            elif name == "fit":  # seconds per epoch only: the weights stay here
                value = loop.fit(*args)[0]
            elif name == "check":
                from suite.jax_ref import check_one_epoch

                value = check_one_epoch()
            else:
                value = getattr(loop, name)(*args)
            if name == "info" and lib == "jax":
                value = dict(value, cpus=cpus)
            answer = (True, value)
        except Exception as exc:  # noqa: BLE001 - reported to the suite, which goes on
            lines = str(exc).strip().splitlines()
            answer = (False, type(exc).__name__ + (f": {lines[0]}" if lines else ""))
        pickle.dump(answer, out)
        out.flush()


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
