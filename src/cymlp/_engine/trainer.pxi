# Trainer: the typed state of one fit, and the Python side of the training
# calls (a part of _core.pyx).

cdef class Trainer:
    """The training state of one fit: gradient, workspace, optimizer moments
    and settings, dropout rates; built once per fit, checked at every call.

    Parameters
    ----------
    network : Network
    dtype : float32 or float64
        The dtype of the parameters, data and state.
    max_rows : int
        The most rows one call handles at once: the batch size of
        :meth:`run_epoch`, the number of rows of :meth:`loss_grad`.
    gather : bool, default=False
        Room to gather the rows of shuffled dense minibatches (needed when
        :meth:`run_epoch` gets an ``order`` and dense X).
    dropout : array of shape (n_layers + 1,), default=None
        Dropout rate of every layer, in [0, 1) (only hidden layers' count).
    optimizer : dict, default=None
        For :meth:`run_epoch`: ``kind`` ('sgd', 'adam' or 'adamw'),
        ``learning_rate_init``, ``momentum``, ``nesterovs_momentum``,
        ``beta_1``, ``beta_2``, ``epsilon``, ``t`` (adam steps taken) and the
        moments ``state1`` (sgd velocity / adam first moment) and ``state2``
        (adam second moment; None for sgd): writeable arrays shaped like the
        parameters, updated in place; optionally ``weight_decay`` (adamw's
        decoupled decay, default 0) and ``max_grad_norm`` (clip each
        minibatch gradient's global norm to it; None, the default: no
        clipping). The settings are read here, once, as
        scikit-learn's optimizers read theirs when they are made.
    float32_weights : bool, default=False
        Only with dtype float64: compute as numpy does for float32 X and
        weights beside float64 targets (scikit-learn's regressor with such
        data). X and the parameters are float64 arrays holding float32
        values; the forward pass runs in float32 (the float32 engine's, over
        a float32 copy of the weights), and the output delta, the loss, the
        backward pass, the gradient and the optimizer moments in float64;
        every optimizer step rounds the weights to float32, as adding a
        float64 step to a float32 array does.

    Examples
    --------
    >>> import numpy as np
    >>> from cymlp._engine import Network, Trainer
    >>> net = Network([2, 3, 1], "tanh", "identity", "squared_error")
    >>> trainer = Trainer(net, np.float64, max_rows=4)
    >>> params = np.full(net.n_params, 0.1)
    >>> X, Y = np.ones((4, 2)), np.zeros((4, 1))
    >>> loss, grad = trainer.loss_grad(X, Y, None, params, alpha=0.0)
    >>> grad.shape
    (13,)
    """
    cdef readonly Network network
    cdef readonly object dtype
    cdef readonly Py_ssize_t max_rows
    cdef readonly bint gather
    cdef readonly bint float32_weights
    cdef Optimizer opt
    cdef bint has_optimizer
    cdef readonly object grad   # the gradient buffer that loss_grad fills
    cdef object _work, _rates, _state1, _state2
    cdef object _work32, _params32  # float32_weights: the forward pass's workspace and weights

    def __cinit__(self, Network network, dtype, Py_ssize_t max_rows, *, bint gather=False,
                  dropout=None, dict optimizer=None, bint float32_weights=False):
        cdef Py_ssize_t L = network.net.n_layers, n_params = network.net.n_params
        if network.net.loss < 0:
            raise ValueError("this Network was made for the forward pass only (loss=None)")
        self.network = network
        self.dtype = _working_dtype(dtype)
        if float32_weights and self.dtype != np.float64:
            raise ValueError("float32_weights needs dtype float64, got %s" % self.dtype)
        self.float32_weights = float32_weights
        if max_rows < 1:
            raise ValueError("max_rows must be at least 1, got %d" % max_rows)
        # = workspace_layout's worst case (gather, pre, dropout), in Python ints: no C wrap-around
        if max_rows * (network.net.width * 5 + network.net.units[0]) >= 2**62:
            raise MemoryError("cymlp: a workspace of %d rows is too large" % max_rows)
        self.max_rows = max_rows
        self.gather = gather
        if dropout is not None:
            rates = np.array(dropout, dtype=np.float64)
            if rates.shape != (L + 1,) or not np.all((rates >= 0) & (rates < 1)):
                raise ValueError("dropout: one rate in [0, 1) per layer (%d)" % (L + 1))
            self._rates = rates
        self.grad = np.empty(n_params, dtype=self.dtype)
        self._work = np.empty(
            max(workspace_size(&network.net, max_rows, gather, dropout is not None), 1),
            dtype=self.dtype)
        if float32_weights:
            # the float32 rows are always gathered (narrowed) into it
            self._work32 = np.empty(
                max(workspace_size(&network.net, max_rows, True, dropout is not None), 1),
                dtype=np.float32)
            self._params32 = np.empty(n_params, dtype=np.float32)
        self.has_optimizer = optimizer is not None
        if optimizer is not None:
            self._set_optimizer(optimizer)

    cdef _set_optimizer(self, dict o):
        cdef Py_ssize_t n_params = self.network.net.n_params
        kind = o["kind"]
        if kind not in STOCHASTIC_SOLVERS:
            raise ValueError("unknown optimizer %r; expected one of %s"
                             % (kind, sorted(STOCHASTIC_SOLVERS)))
        self.opt.kind = STOCHASTIC_SOLVERS[kind]
        self.opt.lr = float(o["learning_rate_init"])
        self.opt.momentum = float(o["momentum"])
        self.opt.nesterov = bool(o["nesterovs_momentum"])
        self.opt.beta_1 = float(o["beta_1"])
        self.opt.beta_2 = float(o["beta_2"])
        self.opt.epsilon = float(o["epsilon"])
        self.opt.weight_decay = float(o.get("weight_decay", 0.0))
        if not self.opt.weight_decay >= 0:
            raise ValueError("weight_decay must be >= 0, got %r" % self.opt.weight_decay)
        max_grad_norm = o.get("max_grad_norm")
        self.opt.max_grad_norm = 0.0 if max_grad_norm is None else float(max_grad_norm)
        if max_grad_norm is not None and not self.opt.max_grad_norm > 0:
            raise ValueError("max_grad_norm must be > 0 or None, got %r" % max_grad_norm)
        self.opt.t = int(o["t"])
        self.opt.alpha = 0.0
        self.opt.params32 = NULL
        if self.float32_weights:
            self.opt.params32 = <float*> _data_of(self._params32)
        self.set_moments(o["state1"], o.get("state2"))

    def set_moments(self, state1, state2=None):
        """Train these moments from the next :meth:`run_epoch` on (checked as
        the constructor's ``state1`` and ``state2``), e.g. fresh copies, so
        that moments already shown to other threads are never written."""
        cdef Py_ssize_t n_params = self.network.net.n_params
        if not self.has_optimizer:
            raise ValueError("this Trainer was made without an optimizer")
        _check_array(state1, "state1", (n_params,), self.dtype, True)
        cdef bint second = (cymlp_optimizer_traits(self.opt.kind) & CYMLP_SECOND_MOMENT) != 0
        if second:
            _check_array(state2, "state2", (n_params,), self.dtype, True)
        self._state1 = state1
        self.opt.state1 = _data_of(state1)
        self._state2 = state2 if second else None
        self.opt.state2 = _data_of(state2) if second else NULL

    @property
    def t(self):
        """Adam steps taken so far (the optimizer's ``t``)."""
        return self.opt.t

    def state_finite(self, params):
        """Whether ``params`` and the optimizer's moments hold only finite values.

        A non-finite gradient always reaches a moment (and with it, or
        later, the parameters): a check after an epoch sees every overflow
        of the epoch.

        Parameters
        ----------
        params : array (n_params,) of the trainer's dtype

        Returns
        -------
        finite : bool
        """
        self.network.check_params(params, self.dtype)
        if self.dtype == np.float32:
            return _state_finite[float](self, params)
        return _state_finite[double](self, params)

    def run_epoch(self, X, Y, sample_weight, order, params, double alpha,
                  double learning_rate, dropout_seed=None):
        """Train one epoch in place; return the sum over minibatches of loss * rows.

        Parameters
        ----------
        X : C-contiguous array or CSR matrix of the trainer's dtype, (n_samples, n_features)
        Y : C-contiguous array (n_samples, n_outputs)
        sample_weight : array (n_samples,) or None
        order : intp array (n_samples,) or None
            Visit the rows in this order (a shuffled epoch) or in storage order.
        params : array (n_params,)
            The packed parameters, updated in place.
        alpha : float
            The L2 penalty (read per call, as scikit-learn reads it per batch).
        learning_rate : float
            The epoch's rate: sgd's current rate, adam's rate before its bias
            correction (learning_rate_init unless a schedule changes it).
        dropout_seed : int in [0, 2**64), or None
            Seeds this epoch's dropout masks; required with dropout.
        """
        cdef _Rows rows = _Rows(self.network, X, Y, sample_weight)
        cdef const Py_ssize_t[::1] order_v
        cdef const Py_ssize_t* order_p = NULL
        cdef Dropout drop
        cdef Dropout* drop_p = NULL
        cdef const double[::1] rates
        cdef bint ok = True
        cdef Py_ssize_t n = rows.data.n_samples
        if not self.has_optimizer:
            raise ValueError("this Trainer was made without an optimizer")
        self._check_call(rows, params, True)
        if n == 0:
            return 0.0
        if order is not None:
            _check_array(order, "order", (n,), np.dtype(np.intp))
            if not rows.sparse and not self.gather:
                raise ValueError("a shuffled dense epoch needs a Trainer made with gather=True")
            order_v = order
            order_p = &order_v[0]
            with nogil:
                ok = is_row_order(order_p, n, n)
            if not ok:
                raise ValueError("order holds an index outside [0, %d)" % n)
        if self._rates is not None:
            if dropout_seed is None:
                raise ValueError("a Trainer with dropout needs a dropout_seed per epoch")
            rates = self._rates
            drop.rate = &rates[0]
            drop.state = <uint64_t> int(dropout_seed)
            drop_p = &drop
        self.opt.alpha = alpha
        self.opt.lr = learning_rate
        if self.dtype == np.float32:
            return _run_epoch[float](self, rows, order_p, params, drop_p)
        return _run_epoch[double](self, rows, order_p, params, drop_p)

    def loss_grad(self, X, Y, sample_weight, params, double alpha, bint with_grad=True):
        """Loss over all rows of X at once (n_samples <= max_rows), L2 term
        included, and its gradient (for lbfgs).

        Returns ``(loss, grad)``: ``grad`` is the trainer's own buffer,
        overwritten by the next call (copy it to keep it), or None without
        ``with_grad`` (a validation loss).
        """
        cdef _Rows rows = _Rows(self.network, X, Y, sample_weight)
        self._check_call(rows, params, False)
        if rows.data.n_samples > self.max_rows:
            raise ValueError("%d rows; this Trainer was made for at most %d"
                             % (rows.data.n_samples, self.max_rows))
        if rows.data.n_samples == 0:
            raise ValueError("the loss of zero rows is undefined")
        if self.dtype == np.float32:
            loss = _loss_grad[float](self, rows, params, alpha, with_grad)
        else:
            loss = _loss_grad[double](self, rows, params, alpha, with_grad)
        return loss, (self.grad if with_grad else None)

    cdef _check_call(self, _Rows rows, params, bint writeable):
        if rows.dtype != self.dtype:
            raise ValueError("X has dtype %s; this Trainer computes in %s"
                             % (rows.dtype, self.dtype))
        if rows.data.Y == NULL:
            raise ValueError("training needs targets Y")
        self.network.check_params(params, self.dtype, writeable)


def _format_bytes(size_t n):
    return "%d bytes" % n if n < 2**20 else "%.1f MiB" % (n / 2**20)


cdef _out_of_memory(const cymlp_failure* fail):
    """The MemoryError of an engine call that returned -1 (scikit-learn's
    exception for an allocation that fails)."""
    what = fail.what.decode("utf-8") if fail.what != NULL else "memory"
    return MemoryError("cymlp: could not allocate %s for %s"
                       % (_format_bytes(fail.bytes), what))


cdef bint _state_finite(Trainer self, const floating[::1] params):
    cdef Py_ssize_t n = params.shape[0]
    cdef bint ok
    with nogil:
        ok = all_finite(&params[0], n)
        if ok and self.has_optimizer:
            ok = all_finite(<const floating*> self.opt.state1, n)
        if ok and self.has_optimizer and self.opt.state2 != NULL:
            ok = all_finite(<const floating*> self.opt.state2, n)
    return ok


cdef float* _narrowed_weights(Trainer self, const double[::1] params):
    """The float32 copy of params that a float32_weights trainer's forward
    pass reads, refreshed; NULL for other trainers."""
    cdef float[::1] p32
    cdef Py_ssize_t i
    if not self.float32_weights:
        return NULL
    p32 = self._params32
    with nogil:
        for i in range(params.shape[0]):
            p32[i] = <float> params[i]
    return &p32[0]


cdef _run_epoch(Trainer self, _Rows rows, const Py_ssize_t* order, floating[::1] params,
                Dropout* drop):
    cdef double loss_sum = 0.0
    cdef int status = 0
    cdef cymlp_failure fail = cymlp_failure(NULL, 0)
    cdef floating[::1] grad = self.grad
    cdef floating[::1] work = self._work
    cdef float[::1] work32
    cdef float* w32 = NULL
    cdef int nt
    if floating is double:
        if _narrowed_weights(self, params) != NULL:
            work32 = self._work32
            w32 = &work32[0]
    with _EngineCall() as call:
        nt = call.threads
        with nogil:
            status = train_epoch_impl(&self.network.net, &self.opt, &rows.data, order,
                                      self.max_rows, &params[0], &grad[0], &work[0], drop,
                                      nt, &loss_sum, &fail, w32)
    if status != 0:
        raise _out_of_memory(&fail)
    return loss_sum


cdef _loss_grad(Trainer self, _Rows rows, floating[::1] params, double alpha, bint with_grad):
    cdef double loss = 0.0
    cdef int status = 0
    cdef floating[::1] grad = self.grad
    cdef floating[::1] work = self._work
    cdef floating* g = &grad[0] if with_grad else NULL
    cdef float[::1] work32
    cdef float* w32 = NULL
    cdef float* p32 = NULL
    cdef int nt
    cdef cymlp_failure fail = cymlp_failure(NULL, 0)
    if floating is double:
        p32 = _narrowed_weights(self, params)
        if p32 != NULL:
            work32 = self._work32
            w32 = &work32[0]
    with _EngineCall() as call:
        nt = call.threads
        with nogil:
            status = loss_grad_impl(&self.network.net, alpha, &rows.data, &params[0], g,
                                    &work[0], nt, &loss, &fail, p32, w32)
    if status != 0:
        raise _out_of_memory(&fail)
    return loss

