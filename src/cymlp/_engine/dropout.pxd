# Dropout: a counter-based generator (splitmix64), seeded once per epoch from
# the estimator's RandomState, so that fits are reproducible, and a thread
# can start its share of a layer's masks where the serial sequence would be.
from cython cimport floating
from libc.stdint cimport uint64_t


cdef struct Dropout:
    const double* rate        # L + 1 rates, one per layer (0: no dropout there)
    uint64_t state            # generator state, advanced as masks are drawn


cdef inline uint64_t splitmix64(uint64_t* state) noexcept nogil:
    cdef uint64_t z
    state[0] += <uint64_t> 0x9E3779B97F4A7C15
    z = state[0]
    z = (z ^ (z >> 30)) * <uint64_t> 0xBF58476D1CE4E5B9
    z = (z ^ (z >> 27)) * <uint64_t> 0x94D049BB133111EB
    return z ^ (z >> 31)


cdef inline uint64_t splitmix64_skip(uint64_t state, Py_ssize_t n) noexcept nogil:
    """The state after n draws from state: the generator is a counter."""
    return state + <uint64_t> n * <uint64_t> 0x9E3779B97F4A7C15


cdef inline uint64_t past_masks(const Dropout* drop, const Py_ssize_t* units,
                                Py_ssize_t layer, Py_ssize_t rows,
                                uint64_t state) noexcept nogil:
    """The generator's state after the masks of hidden layer `layer` (if it
    has dropout) for `rows` rows: one draw per unit and row."""
    if drop.rate[layer] > 0:
        return splitmix64_skip(state, rows * units[layer])
    return state


cdef inline void dropout_forward(
    const floating* a,         # IN  activations of a hidden layer
    floating* dropped,         # OUT a * mask
    floating* mask,            # OUT 0 (dropped) or 1 / (1 - rate) (kept)
    Py_ssize_t size, double rate, uint64_t* state,
) noexcept nogil:
    """Inverted dropout: zero each unit with probability rate, scale the rest."""
    cdef Py_ssize_t i
    cdef floating keep = <floating> (1.0 / (1.0 - rate))
    cdef double u
    for i in range(size):
        u = (splitmix64(state) >> 11) * (1.0 / 9007199254740992.0)
        mask[i] = keep if u >= rate else 0
        dropped[i] = a[i] * mask[i]
