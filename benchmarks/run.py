"""The benchmark suite: every workload of the performance issue, side by side.

For each workload this script times, in this one process and interleaved,
``cymlp``, scikit-learn's MLP with the same parameters and -- when ``torch``
is installed -- a plain PyTorch CPU training loop of the same network (same
layers, batch size and optimizer, an epoch of shuffled minibatches). It prints
one table of times and ratios, with each ratio's target and whether it is met.

    python benchmarks/run.py --blas-threads 1   # full run: 3-6 minutes on 2 busy cores
    python benchmarks/run.py                    # BLAS threads as set (see README: noisy)
    python benchmarks/run.py --quick            # smoke run: about a minute
    python benchmarks/run.py --only mnist-f32,grid
    python benchmarks/run.py --list             # workload names and targets

The code is the package ``benchmarks/suite`` (its docstring lists the modules
and the method); this script is its entry point.
"""

import sys

from suite.cli import main

if __name__ == "__main__":
    sys.exit(main())
