# Network: the geometry of a network, the forward pass over it, and the
# checks of every array handed to the engine (a part of _core.pyx).

# Rows per chunk in predict: as many as keep a chunk's input rows and its
# activations within about 2 MiB (a typical L2 cache), so the finiteness check
# and the GEMM read the chunk from cache and memory does not grow with X; at
# least 64 rows, for efficient GEMMs, and at most 4096.
cdef enum:
    PREDICT_CHUNK_BYTES = 2 * 1024 * 1024
    PREDICT_CHUNK_MIN = 64
    PREDICT_CHUNK_MAX = 4096


def _working_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype != np.float32 and dtype != np.float64:
        raise ValueError("cymlp's engine computes in float32 or float64, not %s" % dtype)
    return dtype


cdef _check_array(object a, str name, tuple shape, object dtype, bint writeable=False):
    """Raise ValueError unless `a` is a C-contiguous ndarray of exactly this
    shape and dtype (and writeable if asked): the engine's contract with its
    callers, checked before any pointer into `a` is taken."""
    cdef cnp.ndarray arr
    cdef int k
    cdef bint ok
    if cnp.PyArray_Check(a):
        # the fast path, through numpy's C API: predicting one row checks
        # every layer's arrays, and Python attribute lookups would cost more
        # than the prediction
        arr = <cnp.ndarray> a
        ok = (cnp.PyArray_NDIM(arr) == len(shape)
              and cnp.PyArray_TYPE(arr) == (<cnp.dtype> dtype).type_num
              and cnp.PyArray_IS_C_CONTIGUOUS(arr) and cnp.PyArray_ISNOTSWAPPED(arr)
              and (not writeable or cnp.PyArray_ISWRITEABLE(arr)))
        k = 0
        while ok and k < len(shape):
            ok = cnp.PyArray_DIM(arr, k) == <Py_ssize_t> shape[k]
            k += 1
        if ok:
            return
    if not isinstance(a, np.ndarray):
        raise ValueError("%s must be a numpy array, got %s" % (name, type(a).__name__))
    if a.shape != tuple(shape):
        raise ValueError("%s has shape %s; the network expects %s"
                         % (name, a.shape, tuple(shape)))
    if a.dtype != dtype:
        raise ValueError("%s has dtype %s; expected %s" % (name, a.dtype, dtype))
    if not a.flags.c_contiguous:
        raise ValueError("%s must be C-contiguous" % name)
    if writeable and not a.flags.writeable:
        raise ValueError("%s must be writeable" % name)


cdef inline void* _data_of(a):
    # the caller has checked `a` with _check_array
    return cnp.PyArray_DATA(<cnp.ndarray> a)


cdef class Network:
    """Geometry of a fully connected network and the forward pass over it.

    Parameters
    ----------
    layer_units : sequence of int
        Widths of all layers, input first, output last; each at least 1.
    activation : str or sequence of str
        Hidden activation, a key of ``HIDDEN_ACTIVATIONS``: one for every
        hidden layer, or one per hidden layer (``len(layer_units) - 2``).
    out_activation : str
        Output activation, a key of ``OUTPUT_ACTIVATIONS``; with ``loss=None``
        any key of ``ACTIVATIONS``.
    loss : str or None
        A key of ``LOSSES``; the robust losses ('absolute_error', 'huber',
        'quantile') need the 'identity' output. None: a network for the
        forward pass only (a :class:`Trainer` refuses it), which may end in a
        hidden activation: built over the first k + 1 layers of a network,
        its :meth:`predict` computes the activations of hidden layer k.
    negative_slope : float, default=0.01
        Slope of 'leaky_relu' for negative inputs (>= 0).
    loss_param : float, default=None
        The threshold delta of 'huber' (> 0) or the quantile of 'quantile'
        (in (0, 1)); required by those two losses, ignored by the others.

    Notes
    -----
    The estimators validate what users pass; this class validates again what
    it is given, so that no call can make a kernel read outside its arrays.
    Training state lives in a :class:`Trainer`.

    Examples
    --------
    >>> import numpy as np
    >>> from cymlp._engine import Network
    >>> net = Network([2, 3, 1], "relu", "identity", "squared_error")
    >>> net.n_params
    13
    >>> coefs, intercepts = net.views(np.ones(net.n_params))
    >>> net.predict(np.ones((1, 2)), coefs, intercepts)
    array([[10.]])
    """
    cdef Net net
    cdef object _index   # owns units / offsets

    def __cinit__(self, layer_units, activation, str out_activation, loss,
                  double negative_slope=0.01, loss_param=None):
        cdef Py_ssize_t L = len(layer_units) - 1, i
        cdef Py_ssize_t[::1] index
        if L < 1:
            raise ValueError("a network needs at least an input and an output layer")
        # one name (checked even without a hidden layer) or one per hidden layer
        single = isinstance(activation, str)
        hidden = [activation] * (L - 1) if single else list(activation)
        if not single and len(hidden) != L - 1:
            raise ValueError("%d hidden activations for %d hidden layers"
                             % (len(hidden), L - 1))
        for name in [activation] if single else hidden:
            if not isinstance(name, str) or name not in HIDDEN_ACTIVATIONS:
                raise ValueError("unknown hidden activation %r; expected one of %s"
                                 % (name, sorted(HIDDEN_ACTIVATIONS)))
        # a forward-only network may end in any activation: the training
        # kernels (whose deltas assume the loss's own output) never see it
        out_table = ACTIVATIONS if loss is None else OUTPUT_ACTIVATIONS
        if out_activation not in out_table:
            raise ValueError("unknown output activation %r; expected one of %s"
                             % (out_activation, sorted(out_table)))
        if loss is not None and loss not in LOSSES:
            raise ValueError("unknown loss %r; expected one of %s" % (loss, sorted(LOSSES)))
        param = 0.0
        if loss is not None:
            row = LOSS_ROWS[LOSSES[loss]]
            # the output delta is the loss's gradient for its own output
            # activation only (out - y is the canonical links' derivative)
            if out_activation != row.link:
                raise ValueError("loss %r needs the %r output activation, got %r"
                                 % (loss, row.link, out_activation))
            if row.param_range is not None:
                low, high = row.param_range
                if loss_param is None or not low < float(loss_param) < high:
                    raise ValueError("loss %r needs loss_param in (%g, %g), got %r"
                                     % (loss, low, high, loss_param))
                param = float(loss_param)
        units = [int(u) for u in layer_units]
        if min(units) < 1:
            raise ValueError("every layer needs at least one unit, got %s" % units)
        # Sizes are computed in Python integers first: a product that would
        # overflow the engine's Py_ssize_t offsets is refused here.
        n_params = sum(a * b + b for a, b in zip(units, units[1:]))
        if n_params >= 2**62 or sum(units) >= 2**40:
            raise ValueError("network too large: %d parameters" % n_params)
        # units (L + 1), then coef_off, bias_off and out_off (L each)
        self._index = np.zeros(4 * L + 1, dtype=np.intp)
        index = self._index
        self.net.n_layers = L
        self.net.units = &index[0]
        self.net.coef_off = &index[L + 1]
        self.net.bias_off = &index[2 * L + 1]
        self.net.out_off = &index[3 * L + 1]
        for i in range(L + 1):
            self.net.units[i] = units[i]
        cdef Py_ssize_t pos = 0
        for i in range(L):
            self.net.coef_off[i] = pos
            pos += self.net.units[i] * self.net.units[i + 1]
        self.net.n_coefs = pos
        for i in range(L):
            self.net.bias_off[i] = pos
            pos += self.net.units[i + 1]
        self.net.n_params = pos
        # a workspace row: the outputs of weight layers 0..L-1, units[i + 1] each
        self.net.out_off[0] = 0
        for i in range(1, L):
            self.net.out_off[i] = self.net.out_off[i - 1] + self.net.units[i]
        self.net.width = self.net.out_off[L - 1] + self.net.units[L]
        # one code and two ufunc loops (float, double) per hidden layer (at
        # least one entry each: malloc(0) may give NULL), freed by __dealloc__
        self.net.hidden_act = <int*> malloc(max(L - 1, 1) * sizeof(int))
        self.net.hidden_vec = <UnaryLoop*> malloc(max(2 * (L - 1), 1) * sizeof(UnaryLoop))
        if self.net.hidden_act == NULL or self.net.hidden_vec == NULL:
            raise MemoryError("the network's activation tables")
        self.net.out_act = out_table[out_activation]
        self.net.loss = -1 if loss is None else LOSSES[loss]
        self.net.loss_param = param
        self.net.slope = negative_slope
        self.net.keep_pre = False
        for i in range(L - 1):
            self.net.hidden_act[i] = HIDDEN_ACTIVATIONS[hidden[i]]
            self.net.keep_pre = (self.net.keep_pre
                                 or needs_preactivation(self.net.hidden_act[i]))
            self.net.hidden_vec[2 * i] = resolve_loop(self.net.hidden_act[i], cnp.NPY_FLOAT)
            self.net.hidden_vec[2 * i + 1] = resolve_loop(self.net.hidden_act[i],
                                                          cnp.NPY_DOUBLE)
        for i, typecode in enumerate((cnp.NPY_FLOAT, cnp.NPY_DOUBLE)):
            self.net.out_vec[i] = resolve_loop(self.net.out_act, typecode)

    def __dealloc__(self):
        free(self.net.hidden_act)
        free(self.net.hidden_vec)

    @property
    def hidden_activations(self):
        """The activation of every hidden layer, by name."""
        return [ACTIVATION_ROWS[self.net.hidden_act[i]].name
                for i in range(self.net.n_layers - 1)]

    @property
    def n_params(self):
        """Length of the packed parameter buffer."""
        return self.net.n_params

    @property
    def layer_units(self):
        return [self.net.units[i] for i in range(self.net.n_layers + 1)]

    def views(self, params):
        """The coefficient matrices and intercept vectors as views into ``params``."""
        cdef Py_ssize_t i
        self.check_params(params, np.asarray(params).dtype)
        u = self.layer_units
        coefs = [params[self.net.coef_off[i]:self.net.coef_off[i] + u[i] * u[i + 1]]
                 .reshape(u[i], u[i + 1]) for i in range(self.net.n_layers)]
        intercepts = [params[self.net.bias_off[i]:self.net.bias_off[i] + u[i + 1]]
                      for i in range(self.net.n_layers)]
        return coefs, intercepts

    def check_params(self, params, dtype, bint writeable=False):
        """Raise ValueError unless ``params`` is a packed parameter buffer of
        this network in ``dtype``."""
        _check_array(params, "the parameter buffer", (self.net.n_params,),
                     _working_dtype(dtype), writeable)

    def check_weights(self, coefs, intercepts, dtype):
        """Raise ValueError unless coefs / intercepts are this network's
        layers: C-contiguous arrays of ``dtype`` with the layers' shapes."""
        cdef Py_ssize_t i, L = self.net.n_layers
        dtype = _working_dtype(dtype)
        if len(coefs) != L or len(intercepts) != L:
            raise ValueError("the network has %d weight layers; got %d coefficient "
                             "matrices and %d intercept vectors"
                             % (L, len(coefs), len(intercepts)))
        for i in range(L):
            _check_array(coefs[i], "coefs_[%d]" % i,
                         (self.net.units[i], self.net.units[i + 1]), dtype)
            _check_array(intercepts[i], "intercepts_[%d]" % i, (self.net.units[i + 1],), dtype)

    def predict(self, X, coefs, intercepts, check_finite=False, chunk_rows=None):
        """Output-layer activations for every row of X.

        Parameters
        ----------
        X : C-contiguous float32 or float64 array, or CSR matrix, (n_samples, n_features)
        coefs, intercepts : lists of C-contiguous arrays of X's dtype
            One per weight layer, shaped (fan_in, fan_out) and (fan_out,).
        check_finite : bool, default=False
            Check a dense X for NaN and infinity on the way, and return None
            if it holds any.
        chunk_rows : int, default=None
            Rows per chunk (for tests and tuning); by default as many as keep
            a chunk's input and activations within about 2 MiB.

        Returns
        -------
        out : ndarray of shape (n_samples, n_outputs), or None
        """
        cdef _Rows rows = _Rows(self, X, None, None)
        self.check_weights(coefs, intercepts, rows.dtype)
        out = np.empty((rows.data.n_samples, self.net.units[self.net.n_layers]),
                       dtype=rows.dtype)
        if chunk_rows is None:
            row_bytes = rows.dtype.itemsize * sum(self.layer_units)
            chunk_rows = min(max(PREDICT_CHUNK_BYTES // row_bytes, PREDICT_CHUNK_MIN),
                             PREDICT_CHUNK_MAX)
        chunk_rows = max(int(chunk_rows), 1)
        if rows.dtype == np.float32:
            finite = _predict[float](self, rows, coefs, intercepts, out,
                                     check_finite, chunk_rows)
        else:
            finite = _predict[double](self, rows, coefs, intercepts, out,
                                      check_finite, chunk_rows)
        return out if finite else None


cdef class _Rows:
    """Rows handed to the engine, checked against a network: dense or CSR X
    of float32 / float64, targets Y (n_samples, n_outputs) and sample
    weights (n_samples,) of the same dtype. Holds the arrays while `data`
    points into them."""
    cdef Data data
    cdef readonly object dtype
    cdef readonly bint sparse
    cdef object _keep

    def __cinit__(self, Network network, X, Y, sample_weight):
        cdef const Py_ssize_t[::1] indptr
        cdef const Py_ssize_t[::1] indices
        cdef Py_ssize_t n_in = network.net.units[0]
        cdef Py_ssize_t n_out = network.net.units[network.net.n_layers]
        cdef bint ok
        cdef Py_ssize_t n, nnz
        self.sparse = hasattr(X, "indptr")
        if self.sparse:
            if X.format != "csr":
                raise ValueError("the engine reads sparse X as CSR, got %s" % X.format)
            values = X.data
            n, n_cols = X.shape
            if n_cols != n_in:
                raise ValueError("X has %d features; the network expects %d" % (n_cols, n_in))
            self.dtype = _working_dtype(values.dtype)
            _check_array(values, "X.data", (values.shape[0],), self.dtype)
            ip = np.ascontiguousarray(X.indptr, dtype=np.intp)
            ix = np.ascontiguousarray(X.indices, dtype=np.intp)
            _check_array(ip, "X.indptr", (n + 1,), np.dtype(np.intp))
            if ix.ndim != 1 or ix.shape[0] < values.shape[0]:
                raise ValueError("X.indices is shorter than X.data")
            indptr = ip
            indices = ix
            nnz = values.shape[0]
            with nogil:
                ok = csr_structure_ok(&indptr[0], &indices[0] if indices.shape[0] else NULL,
                                      n, nnz, n_in)
            if not ok:
                raise ValueError("X is not a valid CSR matrix: its indptr or indices "
                                 "point outside its arrays")
            self.data.indptr = &indptr[0]
            self.data.indices = &indices[0] if indices.shape[0] else NULL
            self._keep = [values, ip, ix]
        else:
            if not isinstance(X, np.ndarray) or X.ndim != 2:
                raise ValueError("X must be a 2-d numpy array or a CSR matrix")
            n = X.shape[0]
            self.dtype = _working_dtype(X.dtype)
            _check_array(X, "X", (n, n_in), self.dtype)
            values = X
            self.data.indptr = NULL
            self.data.indices = NULL
            self._keep = [X]
        self.data.n_samples = n
        self.data.X = _data_of(values) if values.size else NULL
        self.data.Y = NULL
        self.data.sw = NULL
        if Y is not None:
            _check_array(Y, "Y", (n, n_out), self.dtype)
            self.data.Y = _data_of(Y)
            self._keep.append(Y)
        if sample_weight is not None:
            _check_array(sample_weight, "sample_weight", (n,), self.dtype)
            self.data.sw = _data_of(sample_weight)
            self._keep.append(sample_weight)




cdef bint is_row_order(const Py_ssize_t* order, Py_ssize_t count,
                       Py_ssize_t n) noexcept nogil:
    """Whether each of the count entries of order is a row index in [0, n)."""
    cdef Py_ssize_t i
    for i in range(count):
        if order[i] < 0 or order[i] >= n:
            return False
    return True



cdef _predict(Network self, _Rows rows, list coefs, list intercepts,
              floating[:, ::1] out, bint check_finite, Py_ssize_t chunk_rows):
    """Fill out; False if check_finite found a non-finite value in X.
    The weights were checked by Network.check_weights."""
    cdef Py_ssize_t L = self.net.n_layers, i
    cdef floating** W
    cdef int status = 0, nt
    cdef cymlp_failure fail = cymlp_failure(NULL, 0)
    if out.shape[0] == 0:
        return True
    W = <floating**> malloc(2 * L * sizeof(floating*))  # the L coefficients, then the L intercepts
    if W == NULL:
        fail.what = "the weights' table"
        fail.bytes = 2 * L * sizeof(floating*)
        raise _out_of_memory(&fail)
    try:
        # The lists keep the arrays alive while the pointers are in use; the
        # kernels only read the weights, which may be read-only (a memmap).
        for i in range(L):
            W[i] = <floating*> _data_of(coefs[i])
            W[L + i] = <floating*> _data_of(intercepts[i])
        with _EngineCall() as call:
            nt = call.threads
            with nogil:
                status = predict_impl(&self.net, W, W + L, &rows.data, &out[0, 0],
                                      check_finite, chunk_rows, nt, &fail)
        if status < 0:
            raise _out_of_memory(&fail)
        return status == 0
    finally:
        free(W)
