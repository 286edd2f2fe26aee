"""The benchmark suite's worker processes (benchmarks/suite/worker.py): how a
worker is held to the threads it was asked for where its library has no
dependable setting of its own (XLA)."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

needs_affinity = pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs CPU affinity and two usable CPUs")


def _in_subprocess(code):
    """Run ``code`` in a fresh interpreter with the suite importable; its
    last line of output, split."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(BENCHMARKS), os.environ.get("PYTHONPATH")) if p))
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                         capture_output=True, text=True, check=True).stdout
    return out.strip().splitlines()[-1].split()


@needs_affinity
def test_pin_cpus_holds_the_process_and_its_later_threads():
    # what the kernel reports for the process, and for a thread started
    # after the pinning (a library's pool), not what pin_cpus returns
    n, main, thread = _in_subprocess("""
        import os, threading
        from suite.worker import pin_cpus
        n = pin_cpus(1)
        seen = []
        t = threading.Thread(target=lambda: seen.append(len(os.sched_getaffinity(0))))
        t.start(); t.join()
        print(n, len(os.sched_getaffinity(0)), seen[0])
    """)
    assert (n, main, thread) == ("1", "1", "1")


@needs_affinity
def test_pin_cpus_leaves_a_process_asked_for_every_cpu_alone():
    usable = len(os.sched_getaffinity(0))
    n, main = _in_subprocess(f"""
        import os
        from suite.worker import pin_cpus
        print(pin_cpus({usable}), len(os.sched_getaffinity(0)))
    """)
    assert (n, main) == (str(usable), str(usable))
