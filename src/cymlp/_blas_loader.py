"""Find the engine's private BLAS and the user's BLAS thread setting.

The engine computes its products in a copy of OpenBLAS of its own (the
``scipy-openblas32`` package), held at one thread (see ``csrc/blas.h`` for why),
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


def _elf_symbols(path, wanted):
    """{name: st_value} of the named symbols in an ELF64 little-endian
    shared library's full symbol table (.symtab, local symbols included),
    or {} where the file is not such a library or has no .symtab."""
    import struct

    found = {}
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return found
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return found  # not ELF64 little-endian
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)
                for i in range(shnum)]
    for sh_name, sh_type, _, _, offset, size, link, _, _, entsize in sections:
        if sh_type != 2 or entsize == 0:  # SHT_SYMTAB
            continue
        str_off = sections[link][4]
        for k in range(size // entsize):
            st_name, _, _, _, st_value, _ = struct.unpack_from(
                "<IBBHQQ", data, offset + k * entsize)
            end = data.index(b"\0", str_off + st_name)
            name = data[str_off + st_name:end].decode("ascii", "replace")
            if name in wanted:
                found[name] = st_value
    return found


def private_blas_allocator(functions):
    """Addresses of the private OpenBLAS's work-buffer allocator and its
    release (``blas_memory_alloc`` / ``blas_memory_free``), or (0, 0).

    OpenBLAS exits the process when it cannot map a work buffer (after ten
    tries; earlier releases retry forever): the engine makes the buffers a
    team will need before the team starts, where a failure can still become
    a MemoryError (see csrc/resources.h). The library does not export the
    allocator, but keeps it in its full symbol table: its address is the
    library's load address (found from an exported function) plus its
    offset there. Linux (ELF) only; elsewhere the buffers are not managed.
    """
    wanted = {"blas_memory_alloc", "blas_memory_free", "scipy_dgemm_"}
    values = _elf_symbols(functions["path"], wanted)
    if set(values) != wanted:
        return 0, 0
    base = functions["dgemm"] - values["scipy_dgemm_"]
    return base + values["blas_memory_alloc"], base + values["blas_memory_free"]
