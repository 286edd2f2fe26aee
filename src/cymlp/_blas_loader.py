"""Find the engine's private BLAS and the user's BLAS thread setting.

The engine computes its products in a copy of OpenBLAS of its own (the
``scipy-openblas32`` package), held at one thread (see ``_blas.h`` for why),
and reads, never writes, the thread count of the BLAS that scipy uses: the
user's limit on BLAS threads is also the engine's limit on its own threads,
as scikit-learn's MLP, whose only threads are BLAS's, obeys it.
"""

import ctypes
import os


def private_blas_functions():
    """Addresses of the private OpenBLAS's entry points, by role.

    Returns
    -------
    functions : dict
        ``sgemm``, ``dgemm``, ``sdot``, ``ddot``, ``get_threads``,
        ``set_threads`` -> address (int), and ``path`` -> the library file.

    Raises
    ------
    ImportError
        If scipy-openblas32 is not installed or its library lacks a function.
    """
    try:
        import scipy_openblas32
    except ImportError as exc:  # a declared dependency: say how to fix it
        raise ImportError(
            "cymlp computes in its own copy of OpenBLAS, from the package "
            "scipy-openblas32: pip install scipy-openblas32"
        ) from exc
    path = os.path.join(scipy_openblas32.get_lib_dir(),
                        scipy_openblas32.get_library(fullname=True))
    if os.name == "nt":  # the import library names the DLL beside it
        path = os.path.splitext(path)[0] + ".dll"
    # Loaded by path into its own namespace: a separate instance from the
    # OpenBLAS that numpy and scipy load, with thread settings of its own.
    lib = ctypes.CDLL(path)
    names = {
        "sgemm": "scipy_sgemm_", "dgemm": "scipy_dgemm_",
        "sdot": "scipy_sdot_", "ddot": "scipy_ddot_",
        "get_threads": "scipy_openblas_get_num_threads",
        "set_threads": "scipy_openblas_set_num_threads",
    }
    functions = {"path": path, "_lib": lib}
    for role, symbol in names.items():
        try:
            functions[role] = ctypes.cast(getattr(lib, symbol), ctypes.c_void_p).value
        except AttributeError as exc:
            raise ImportError("cymlp: %s has no %s" % (path, symbol)) from exc
    return functions


def user_blas_function(name):
    """The address of OpenBLAS's function `name` (or of scipy's renamed
    ``scipy_``-prefixed copy) in the BLAS that scipy.linalg.cython_blas calls
    -- the user's --, or 0 where it has none (another BLAS)."""
    import scipy.linalg.cython_blas
    try:
        # a library handle finds symbols in the library's dependencies too
        lib = ctypes.CDLL(scipy.linalg.cython_blas.__file__)
    except OSError:
        return 0
    for symbol in (name, "scipy_" + name):
        try:
            return ctypes.cast(getattr(lib, symbol), ctypes.c_void_p).value or 0
        except AttributeError:
            pass
    return 0
