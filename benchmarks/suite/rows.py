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
    sk_target: float = None
    notes: list = field(default_factory=list)
    torch_variant: str = None  # "eager" | "compiled": which loop the torch column timed
    params: int = None        # step-* rows: how many parameters one step updates

    def best(self, lib):
        t = self.times.get(lib)
        return min(t) if t else None

    def ratio(self):
        return self.best(self.baseline) / self.best("cymlp")

    def ratio_med(self):
        b, c = self.times[self.baseline], self.times["cymlp"]
        return statistics.median(x / y for x, y in zip(b, c))

    def floor_multiple(self):
        return self.best("cymlp") / min(self.floor) if self.floor else None

    def floor_multiple_med(self):
        if not self.floor:
            return None
        return statistics.median(c / f for c, f in zip(self.times["cymlp"], self.floor))

    def exact_bound(self):
        """sklearn / (GEMM floor + optimizer steps): the largest speedup an
        implementation with sklearn's arithmetic can reach on this BLAS."""
        if not self.exact_floor:
            return None
        return self.best("sklearn") / min(self.exact_floor)

    def torch_ratio(self):
        return self.best("torch") / self.best("cymlp") if self.times.get("torch") else None
