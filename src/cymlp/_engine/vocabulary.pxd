# The engine's vocabulary as Cython sees it: the codes and traits of every
# activation, loss and optimizer, from the one table in csrc/vocabulary.h.
# Python's view of the same rows is vocabulary.pyx.

cdef extern from "vocabulary.h" nogil:
    # activation codes
    enum:
        IDENTITY "CYMLP_IDENTITY"
        LOGISTIC "CYMLP_LOGISTIC"
        TANH "CYMLP_TANH"
        RELU "CYMLP_RELU"
        SOFTMAX "CYMLP_SOFTMAX"
        EXP "CYMLP_EXP"
        LEAKY_RELU "CYMLP_LEAKY_RELU"
        ELU "CYMLP_ELU"
        GELU "CYMLP_GELU"
        SILU "CYMLP_SILU"
        SOFTPLUS "CYMLP_SOFTPLUS"
    # loss codes
    enum:
        SQUARED_ERROR "CYMLP_SQUARED_ERROR"
        LOG_LOSS "CYMLP_LOG_LOSS"
        BINARY_LOG_LOSS "CYMLP_BINARY_LOG_LOSS"
        POISSON "CYMLP_POISSON"
        ABSOLUTE_ERROR "CYMLP_ABSOLUTE_ERROR"
        HUBER "CYMLP_HUBER"
        QUANTILE "CYMLP_QUANTILE"
    # optimizer codes
    enum:
        SGD "CYMLP_SGD"
        ADAM "CYMLP_ADAM"
        LBFGS "CYMLP_LBFGS"
        ADAMW "CYMLP_ADAMW"
    # traits
    enum:
        CYMLP_HIDDEN
        CYMLP_OUTPUT
        CYMLP_NEEDS_PRE
        CYMLP_TAKES_SLOPE
        CYMLP_UFUNC
        CYMLP_SKLEARN
        CYMLP_MEAN_OVER_OUTPUTS
        CYMLP_HALVED
        CYMLP_RESIDUAL
        CYMLP_TAKES_PARAM
        CYMLP_LOSS_SKLEARN
        CYMLP_STOCHASTIC
        CYMLP_SECOND_MOMENT
        CYMLP_FULL_BATCH
        CYMLP_SOLVER_SKLEARN
    ctypedef struct cymlp_activation_row:
        const char* name
        int code
        unsigned traits
    ctypedef struct cymlp_loss_row:
        const char* name
        int code
        int link
        unsigned traits
        double param_low
        double param_high
    ctypedef cymlp_activation_row cymlp_optimizer_row
    const cymlp_activation_row* cymlp_activation_rows
    const cymlp_loss_row* cymlp_loss_rows
    const cymlp_optimizer_row* cymlp_optimizer_rows
    const int CYMLP_N_ACTIVATIONS, CYMLP_N_LOSSES, CYMLP_N_OPTIMIZERS
    unsigned cymlp_activation_traits(int code)
    unsigned cymlp_loss_traits(int code)
    unsigned cymlp_optimizer_traits(int code)


cdef inline bint needs_preactivation(int act) noexcept nogil:
    """Whether f'(z) cannot be written in terms of f(z), so z must be kept."""
    return (cymlp_activation_traits(act) & CYMLP_NEEDS_PRE) != 0


cdef inline bint is_mean_over_outputs(int loss) noexcept nogil:
    """Losses reported as a mean over the outputs (squared error, as
    scikit-learn does, and cymlp's robust losses), not a sum."""
    return (cymlp_loss_traits(loss) & CYMLP_MEAN_OVER_OUTPUTS) != 0


cdef inline bint is_residual_loss(int loss) noexcept nogil:
    """Losses of the residual y - p with their own gradient (the robust ones)."""
    return (cymlp_loss_traits(loss) & CYMLP_RESIDUAL) != 0
