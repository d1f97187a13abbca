"""C functions called from the hook's sealed path: through ``_ctypes``, the C half of the
standard library's ctypes, without the ``ctypes`` package itself.

Why: ``import ctypes`` runs its whole ``__init__`` (every C type, ``struct``, ``types``,
``ctypes._endian``, the loaders, ``pythonapi``): 7.3 million instructions, about 1.5 ms of
every sealed start, where the hook needs three C types, a function pointer type and a
buffer. These are the same classes ``ctypes/__init__.py`` defines over ``_ctypes`` (a C type is
a ``_SimpleCData`` with its ``_type_`` code, a function type a ``CFuncPtr`` with its
``_flags_``), so they behave as ctypes' own do. Where this interpreter's ``_ctypes`` lacks
any of it, :class:`Unavailable` is raised and the callers use ``ctypes`` (seal/nodump.py) or
pyca's ``AESGCM`` (seal/blob.py).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: dlopen(3)'s RTLD_NOW and RTLD_LOCAL, as ctypes.CDLL opens a library
RTLD_NOW_LOCAL = 0x2


class Unavailable(Exception):
    """``_ctypes`` or the library or function asked for is not here."""


try:
    import _ctypes
    # ctypes' own classes over _ctypes (ctypes/__init__.py), made as it makes them; Any to
    # mypy, which types them for the ctypes package only. Only the three every sealed open
    # uses are made here: c_int and c_char_p are made at their first use (__getattr__ below),
    # each C type being 65,000 instructions, and c_int's twice that (its byte-swapped twin).
    _Simple, _FunctionPointer = _ctypes._SimpleCData, _ctypes.CFuncPtr
    c_size_t: Any = type("c_size_t", (_Simple,), {"_type_": "L"})     # size_t is unsigned long on Linux
    c_void_p: Any = type("c_void_p", (_Simple,), {"_type_": "P"})
    c_char: Any = type("c_char", (_Simple,), {"_type_": "c"})
    # no _restype_: a function returns a C int unless its restype says otherwise, as ctypes' do
    _Function: Any = type("_Function", (_FunctionPointer,), {
        "_flags_": _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO})
    _ctypes_module: Any = _ctypes

    byref = _ctypes.byref
    get_errno = _ctypes.get_errno
    _memset: Any = None
except (ImportError, AttributeError, TypeError) as exc:   # pragma: no cover - every CPython on Linux has it
    _missing: Exception | None = exc
else:
    _missing = None

#: the C types made only when first asked for: name, _type_ code
_LATER = {"c_int": "i", "c_char_p": "z"}
#: a function's restype meaning a C int (ctypes' default: the result as a Python int)
INT = int

if TYPE_CHECKING:
    c_int: Any
    c_char_p: Any
else:
    def __getattr__(name: str) -> Any:
        """c_int and c_char_p, made at their first use (PEP 562) and kept in this module."""
        if name not in _LATER or _missing is not None:
            raise AttributeError(f"module {__name__} has no attribute {name}")
        made = globals()[name] = type(name, (_Simple,), {"_type_": _LATER[name]})
        return made


def library(names: tuple[str | None, ...]) -> int:
    """The handle of the first of ``names`` that loads (None: the process's own symbols, libc's)."""
    if _missing is not None:        # pragma: no cover
        raise Unavailable(f"_ctypes: {_missing}")
    for name in names:
        try:
            return int(_ctypes_module.dlopen(name, RTLD_NOW_LOCAL))    # None: dlopen(NULL)
        except OSError:
            continue
    raise Unavailable("none of " + ", ".join(map(str, names)) + " loads")


def function(handle: int, name: str, restype: Any, argtypes: tuple[Any, ...] | None) -> Any:
    """The C function ``name`` of the library ``handle``, typed as ctypes would type it
    (``argtypes`` None: each argument converted as ctypes does an untyped one, a Python int
    to a C int; ``restype`` :data:`INT`: a C int, returned as a Python int)."""
    try:
        bound = _Function(_ctypes.dlsym(handle, name))
    except OSError:
        raise Unavailable(f"no {name}") from None
    if restype is not INT:
        bound.restype = restype
    bound.argtypes = argtypes
    return bound


def buffer(size: int, initial: bytes = b"") -> bytearray:
    """A writable buffer of ``size`` bytes (at least one), ``initial`` first: a bytearray, given
    to C by :func:`pointer`. Not ctypes.create_string_buffer's ``c_char * size``: each size of
    array is a C type of its own, 80,000 instructions to make, one for every size of sealed
    file a prepare opens."""
    out = bytearray(max(size, 1))
    out[:len(initial)] = initial
    return out


def pointer(out: bytearray, offset: int = 0) -> Any:
    """A C pointer to byte ``offset`` of a buffer from :func:`buffer`, as ctypes.byref gives one
    (through a c_char over its first byte, which holds the bytearray exported, so that it
    cannot be resized, and moved, while C may write into it)."""
    return byref(c_char.from_buffer(out), offset)


def wipe(out: bytearray) -> None:
    """Zero a buffer from :func:`buffer` in place (memset, as ctypes.memset)."""
    global _memset
    if _memset is None:
        _memset = _Function(_ctypes_module._memset_addr)
        # the fill byte an untyped argument (a C int), so that no c_int is made for it
        _memset.restype, _memset.argtypes = c_void_p, None
    _memset(pointer(out), 0, c_size_t(len(out)))
