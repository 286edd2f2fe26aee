"""One row of the results table: the times per library, and the ratios from them."""

import statistics
from dataclasses import dataclass, field

from .specs import Spec


@dataclass
class Row:
    name: str
    unit: str                 # s/epoch | s/call | s/search
    times: dict               # lib -> list of seconds (sklearn, cymlp, torch)
    spec: Spec
    baseline: str = "sklearn"  # ratio = times[baseline] / times["cymlp"]
    floor: list = None        # seconds per repeat, training rows only
    exact_floor: list = None  # GEMM floor + optimizer steps, seconds per repeat
    limit: list = None        # FLOP limit (epoch flops / large-GEMM rate), per repeat
    chunk_bound: list = None  # the engine's chunked products + gather + steps alone, per repeat
    gather: list = None       # the engine's gather of a shuffled epoch's rows alone, per repeat
    sk_target: float = None
    notes: list = field(default_factory=list)
    torch_variant: str = None  # "eager" | "compiled": which loop the torch column timed
    params: int = None        # step-* rows: how many parameters one step updates
    scaling: float = None     # training rows: cymlp on one OpenMP thread / as set
    products_scaling: float = None  # the engine's chunked products alone: one thread / as set

    def best(self, lib):
        t = self.times.get(lib)
        return min(t) if t else None

    def ratio(self):
        return self.best(self.baseline) / self.best("cymlp")

    def ratio_med(self):
        b, c = self.times[self.baseline], self.times["cymlp"]
        return statistics.median(x / y for x, y in zip(b, c))

    def _cymlp_over(self, base):
        """cymlp / ``base`` (seconds per repeat): of the minima, and the median
        of the per-repeat ratios; (None, None) without ``base``."""
        if not base:
            return None, None
        per_repeat = (c / b for c, b in zip(self.times["cymlp"], base))
        return self.best("cymlp") / min(base), statistics.median(per_repeat)

    def floor_multiple(self):
        return self._cymlp_over(self.floor)[0]

    def floor_multiple_med(self):
        return self._cymlp_over(self.floor)[1]

    def limit_multiple(self):
        """cymlp / FLOP limit (training rows)."""
        return self._cymlp_over(self.limit)[0]

    def limit_multiple_med(self):
        return self._cymlp_over(self.limit)[1]

    def limit_bound(self):
        """The engine's chunked products, gather of the shuffled rows and
        optimizer steps alone / FLOP limit: the least cymlp / FLOP limit that
        the engine's chunks allow."""
        if not self.chunk_bound or not self.limit:
            return None
        return min(self.chunk_bound) / min(self.limit)

    def gather_share(self):
        """The gather of a shuffled epoch's rows alone / FLOP limit: its part
        of limit_bound (None where the row does not gather)."""
        if not self.gather or not self.limit or not any(self.gather):
            return None
        return min(self.gather) / min(self.limit)

    def _other_ratio(self, lib):
        return self.best(lib) / self.best("cymlp") if self.times.get(lib) else None

    def jax_ratio(self):
        """JAX loop / cymlp (above 1: cymlp is faster)."""
        return self._other_ratio("jax")

    def exact_bound(self):
        """sklearn / (GEMM floor + optimizer steps): the largest speedup an
        implementation with sklearn's arithmetic can reach on this BLAS."""
        if not self.exact_floor:
            return None
        return self.best("sklearn") / min(self.exact_floor)

    def torch_ratio(self):
        return self._other_ratio("torch")
