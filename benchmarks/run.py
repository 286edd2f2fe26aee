"""The benchmark suite: every workload of the performance issue, side by side.

For each workload this script times, interleaved, ``cymlp``, scikit-learn's
MLP with the same parameters and -- when installed -- a plain PyTorch CPU
training loop and a whole-epoch ``jax.jit`` loop of the same network (same
layers, batch size and optimizer, an epoch of shuffled minibatches; torch
and jax run in worker processes of their own). Training rows also get
their GEMM floor and FLOP limit. It prints one table of times and ratios,
with each ratio's target and whether it is met.

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
