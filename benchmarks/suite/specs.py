"""The workloads: what each one runs, its targets, and the data it runs on."""

from dataclasses import dataclass, field

import numpy as np

from common import make_breast_cancer, make_digits, make_mnist_like


@dataclass
class Spec:
    """A workload; its targets are those of the performance issues (#12 threads,
    #13 small data, #24 the FLOP limit)."""

    name: str
    desc: str
    kind: str                 # train | predict | latency | grid | memory | step
    sk_target: float = None   # baseline / cymlp >= this
    floor_target: float = None  # cymlp / GEMM floor <= this
    torch_target: float = None  # torch / cymlp >= this
    limit_target: float = None  # cymlp / FLOP limit <= this (issue #24)
    extra: dict = field(default_factory=dict)
    jax_target: float = None    # jax / cymlp >= this (issue #24)
    scaling_target: float = None  # cymlp on one thread / at its default threads >= this (#24)


MNIST_ROWS = (60_000, 6_000)         # (full, quick)
WIDE_ROWS = (20_000, 3_000)

SPECS = [
    Spec("digits-b32", "digits 1797x64 standardized, (100,), adam, batch 32, float64",
         "train", 10, torch_target=1, jax_target=1,
         extra=dict(data="digits", params=dict(hidden_layer_sizes=(100,), solver="adam",
                                               batch_size=32), epochs=(15, 5))),
    Spec("digits-b200", "digits 1797x64 standardized, (100,), adam, batch 200, float64",
         "train", 5, torch_target=1, jax_target=1,
         extra=dict(data="digits", params=dict(hidden_layer_sizes=(100,), solver="adam",
                                               batch_size=200), epochs=(20, 10))),
    Spec("cancer-sgd-b1", "breast_cancer 569x30 standardized, (100,), sgd, batch 1, float64",
         "train", 40, torch_target=1, jax_target=1,
         extra=dict(data="cancer", params=dict(hidden_layer_sizes=(100,), solver="sgd",
                                               batch_size=1), epochs=(6, 2))),
    Spec("mnist-f64", "MNIST-shaped {mnist}x784, (100,), adam, batch 200, float64",
         "train", 2.5, 1.3, 1, 1.4, jax_target=1, scaling_target=1.7,
         extra=dict(data="mnist-f64", params=dict(hidden_layer_sizes=(100,), solver="adam",
                                                  batch_size=200), epochs=(4, 2))),
    Spec("mnist-f32", "MNIST-shaped {mnist}x784, (100,), adam, batch 200, float32",
         "train", 3.5, 1.3, 1, 1.6, jax_target=1, scaling_target=1.7,
         extra=dict(data="mnist-f32", params=dict(hidden_layer_sizes=(100,), solver="adam",
                                                  batch_size=200), epochs=(4, 2))),
    Spec("wide-f32", "MNIST-shaped {wide}x784, (256, 256), adam, batch 200, float32",
         "train", 3, 1.3, 1, 1.5, jax_target=1, scaling_target=1.7,
         extra=dict(data="wide-f32", params=dict(hidden_layer_sizes=(256, 256),
                                                 solver="adam", batch_size=200),
                    epochs=(3, 2))),
    Spec("predict-60k", "predict_proba on {mnist} MNIST-shaped rows, (100,), float32",
         "predict", 2),
    Spec("predict-1row", "predict_proba latency, one row, digits model (100,), float64",
         "latency", 6),
    Spec("grid", "GridSearchCV on digits: 2 hidden x 2 batch sizes x 3 folds = 12 fits",
         "grid", 8, extra=dict(threads_target=1.6)),
    Spec("memory-f32", "peak memory of fit, MNIST-shaped {mnist}x784 float32, 1 epoch",
         "memory", extra=dict(growth_target=0.25)),
] + [
    Spec(f"step-{solver}-f{bits}",
         f"one {solver} step alone, float{bits}, ns per parameter: the (100,) networks "
         "of MNIST-shaped data and of digits",
         "step", extra=dict(solver=solver, dtype=dtype))
    for solver in ("adam", "sgd", "adamw")
    for bits, dtype in ((64, np.float64), (32, np.float32))
]
SPEC_BY_NAME = {s.name: s for s in SPECS}
# table row names -> their workload, for --only
ALIASES = {"grid-nj1": "grid", "grid-thr2": "grid", "memory": "memory-f32"}
ALIASES.update({f"{s.name}-{net}{path}": s.name for s in SPECS if s.kind == "step"
                for net in ("mnist", "digits")
                for path in ("", "-divider", "-fma", "-hybrid", "-clip")})
# names of several workloads at once, for --only
GROUPS = {"step": [s.name for s in SPECS if s.kind == "step"]}


def workload_names(name):
    """The workloads that ``name`` stands for.

    Parameters
    ----------
    name : str
        A workload (``SPECS``), a table row (``ALIASES``) or a group (``GROUPS``).

    Returns
    -------
    list of str
        Workload names; an unknown name comes back as it is, for the caller
        to report.
    """
    return GROUPS.get(name) or [ALIASES.get(name, name)]


def default_repeats(spec, quick):
    if quick:
        return {"latency": 3, "predict": 3, "grid": 1}.get(spec.kind, 2)
    if spec.kind == "train":
        return 5 if spec.extra["data"] in ("digits", "cancer") else 3
    return {"predict": 7, "latency": 7, "grid": 3, "memory": 1, "step": 5}[spec.kind]


class Data:
    """The data sets of a run, each built once, on first use."""

    def __init__(self, quick):
        self.quick = quick
        self.n_mnist = MNIST_ROWS[quick]
        self.n_wide = WIDE_ROWS[quick]
        self._cache = {}

    def get(self, name):
        if name not in self._cache:
            if name == "digits":
                X, y = make_digits()
            elif name == "cancer":
                X, y = make_breast_cancer()
            elif name == "mnist-f64":
                X, y = make_mnist_like(max(self.n_mnist, self.n_wide))
                X, y = X[: self.n_mnist], y[: self.n_mnist]
            elif name == "mnist-f32":
                X, y = self.get("mnist-f64")
                X = X.astype(np.float32)
            elif name == "wide-f32":
                X, y = self.get("mnist-f32")
                X, y = X[: self.n_wide], y[: self.n_wide]
            else:
                raise KeyError(name)
            self._cache[name] = (np.ascontiguousarray(X), y)
        return self._cache[name]
