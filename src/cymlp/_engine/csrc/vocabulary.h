/* The engine's vocabulary: every activation, loss and optimizer is one row
 * here, and the C kernels, the Cython engine (vocabulary.pxd) and Python
 * (cymlp._engine.vocabulary: the estimators' parameter checks, the ONNX
 * converter, the docs' tests) all take their codes and traits from it.
 *
 * A row is X(NAME, code, "name", ...): the code is the row's identity in
 * the kernels' dispatch (each kernel names the codes it handles, and an
 * unknown one is refused when a network is made, never sent to another
 * kernel); the codes are never stored (pickles keep names), so a new row may
 * take any unused one.
 */
#ifndef CYMLP_VOCABULARY_H
#define CYMLP_VOCABULARY_H

#include <math.h> /* HUGE_VAL */

/* Traits of an activation. */
enum {
    CYMLP_HIDDEN = 1,        /* allowed in hidden layers */
    CYMLP_OUTPUT = 2,        /* allowed as an output activation (a loss's link) */
    CYMLP_NEEDS_PRE = 4,     /* f'(z) cannot be written in terms of f(z): keep z */
    CYMLP_TAKES_SLOPE = 8,   /* reads the estimator's negative_slope */
    CYMLP_UFUNC = 16,        /* computed by numpy's / scipy's own ufunc loop, as scikit-learn does */
    CYMLP_SKLEARN = 32       /* scikit-learn has it (rows without it are cymlp's own) */
};

/* X(NAME, code, name, traits) */
#define CYMLP_ACTIVATION_ROWS(X)                                                     \
    X(IDENTITY, 0, "identity", CYMLP_HIDDEN | CYMLP_OUTPUT | CYMLP_SKLEARN)          \
    X(LOGISTIC, 1, "logistic",                                                      \
      CYMLP_HIDDEN | CYMLP_OUTPUT | CYMLP_UFUNC | CYMLP_SKLEARN)                     \
    X(TANH, 2, "tanh", CYMLP_HIDDEN | CYMLP_UFUNC | CYMLP_SKLEARN)                   \
    X(RELU, 3, "relu", CYMLP_HIDDEN | CYMLP_SKLEARN)                                 \
    X(SOFTMAX, 4, "softmax", CYMLP_OUTPUT | CYMLP_UFUNC | CYMLP_SKLEARN)             \
    X(EXP, 5, "exp", CYMLP_OUTPUT | CYMLP_UFUNC | CYMLP_SKLEARN)                     \
    X(LEAKY_RELU, 6, "leaky_relu", CYMLP_HIDDEN | CYMLP_TAKES_SLOPE)                 \
    X(ELU, 7, "elu", CYMLP_HIDDEN)                                                   \
    X(GELU, 8, "gelu", CYMLP_HIDDEN | CYMLP_NEEDS_PRE)                               \
    X(SILU, 9, "silu", CYMLP_HIDDEN | CYMLP_NEEDS_PRE)                               \
    X(SOFTPLUS, 10, "softplus", CYMLP_HIDDEN)

/* Traits of a loss. */
enum {
    CYMLP_MEAN_OVER_OUTPUTS = 1, /* reported as a mean over the outputs, not a sum */
    CYMLP_HALVED = 2,            /* reported halved (scikit-learn's squared error) */
    CYMLP_RESIDUAL = 4,          /* a function of y - p with its own gradient (robust losses) */
    CYMLP_TAKES_PARAM = 8,       /* reads loss_param, in (param_low, param_high) */
    CYMLP_LOSS_SKLEARN = 16      /* scikit-learn has it */
};

/* X(NAME, code, name, link, traits, param_low, param_high): link is the code
 * of the output activation the loss's delta (out - y, or the residual's
 * gradient) is the derivative for. */
#define CYMLP_LOSS_ROWS(X)                                                           \
    X(SQUARED_ERROR, 0, "squared_error", CYMLP_IDENTITY,                             \
      CYMLP_MEAN_OVER_OUTPUTS | CYMLP_HALVED | CYMLP_LOSS_SKLEARN, 0.0, 0.0)          \
    X(LOG_LOSS, 1, "log_loss", CYMLP_SOFTMAX, CYMLP_LOSS_SKLEARN, 0.0, 0.0)          \
    X(BINARY_LOG_LOSS, 2, "binary_log_loss", CYMLP_LOGISTIC, CYMLP_LOSS_SKLEARN, 0.0, 0.0) \
    X(POISSON, 3, "poisson", CYMLP_EXP, CYMLP_LOSS_SKLEARN, 0.0, 0.0)                \
    X(ABSOLUTE_ERROR, 4, "absolute_error", CYMLP_IDENTITY,                           \
      CYMLP_MEAN_OVER_OUTPUTS | CYMLP_RESIDUAL, 0.0, 0.0)                            \
    X(HUBER, 5, "huber", CYMLP_IDENTITY,                                             \
      CYMLP_MEAN_OVER_OUTPUTS | CYMLP_RESIDUAL | CYMLP_TAKES_PARAM, 0.0, HUGE_VAL)   \
    X(QUANTILE, 6, "quantile", CYMLP_IDENTITY,                                       \
      CYMLP_MEAN_OVER_OUTPUTS | CYMLP_RESIDUAL | CYMLP_TAKES_PARAM, 0.0, 1.0)

/* Traits of an optimizer (the estimators' solver). */
enum {
    CYMLP_STOCHASTIC = 1,    /* minibatch steps in the engine's epoch */
    CYMLP_SECOND_MOMENT = 2, /* keeps a second moment buffer (state2) */
    CYMLP_FULL_BATCH = 4,    /* scipy's minimiser over the engine's loss and gradient */
    CYMLP_SOLVER_SKLEARN = 8 /* scikit-learn has it */
};

/* X(NAME, code, name, traits) */
#define CYMLP_OPTIMIZER_ROWS(X)                                                      \
    X(SGD, 0, "sgd", CYMLP_STOCHASTIC | CYMLP_SOLVER_SKLEARN)                        \
    X(ADAM, 1, "adam", CYMLP_STOCHASTIC | CYMLP_SECOND_MOMENT | CYMLP_SOLVER_SKLEARN) \
    X(LBFGS, 2, "lbfgs", CYMLP_FULL_BATCH | CYMLP_SOLVER_SKLEARN)                   \
    X(ADAMW, 3, "adamw", CYMLP_STOCHASTIC | CYMLP_SECOND_MOMENT)

/* The codes, as C enumerators: CYMLP_RELU, CYMLP_HUBER, CYMLP_ADAM, ... */
#define CYMLP_CODE_OF_ACTIVATION(NAME, code, name, traits) CYMLP_##NAME = code,
#define CYMLP_CODE_OF_LOSS(NAME, code, name, link, traits, low, high) CYMLP_##NAME = code,
enum { CYMLP_ACTIVATION_ROWS(CYMLP_CODE_OF_ACTIVATION) };
enum { CYMLP_LOSS_ROWS(CYMLP_CODE_OF_LOSS) };
enum { CYMLP_OPTIMIZER_ROWS(CYMLP_CODE_OF_ACTIVATION) };

/* The rows as data, for Python and for the trait lookups below. */
typedef struct {
    const char *name;
    int code;
    unsigned traits;
} cymlp_activation_row;

typedef struct {
    const char *name;
    int code;
    int link;
    unsigned traits;
    double param_low, param_high;
} cymlp_loss_row;

typedef cymlp_activation_row cymlp_optimizer_row;

#define CYMLP_ACTIVATION_ROW(NAME, code, name, traits) {name, code, traits},
#define CYMLP_LOSS_ROW(NAME, code, name, link, traits, low, high) \
    {name, code, link, traits, low, high},

static const cymlp_activation_row cymlp_activation_rows[] = {
    CYMLP_ACTIVATION_ROWS(CYMLP_ACTIVATION_ROW)
};
static const cymlp_loss_row cymlp_loss_rows[] = {CYMLP_LOSS_ROWS(CYMLP_LOSS_ROW)};
static const cymlp_optimizer_row cymlp_optimizer_rows[] = {
    CYMLP_OPTIMIZER_ROWS(CYMLP_ACTIVATION_ROW)
};

#define CYMLP_N_ACTIVATIONS ((int)(sizeof cymlp_activation_rows / sizeof cymlp_activation_rows[0]))
#define CYMLP_N_LOSSES ((int)(sizeof cymlp_loss_rows / sizeof cymlp_loss_rows[0]))
#define CYMLP_N_OPTIMIZERS ((int)(sizeof cymlp_optimizer_rows / sizeof cymlp_optimizer_rows[0]))

/* The traits of a code; 0 for a code that has no row (which no network
 * holds: see Network). Codes are row indices, checked by the tests. */
static inline unsigned cymlp_activation_traits(int code)
{
    return code >= 0 && code < CYMLP_N_ACTIVATIONS ? cymlp_activation_rows[code].traits : 0u;
}

static inline unsigned cymlp_loss_traits(int code)
{
    return code >= 0 && code < CYMLP_N_LOSSES ? cymlp_loss_rows[code].traits : 0u;
}

static inline unsigned cymlp_optimizer_traits(int code)
{
    return code >= 0 && code < CYMLP_N_OPTIMIZERS ? cymlp_optimizer_rows[code].traits : 0u;
}

#endif
