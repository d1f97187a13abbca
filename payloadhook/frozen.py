"""Typed immutable records without ``dataclasses``: the form of the models the hook reads.

libvirt runs the hook at every start of every domain, and importing ``dataclasses`` costs
a ``prepare`` about 9 ms (it imports ``inspect``, and with it ``ast``, ``dis`` and
``tokenize``), a third of the whole call; each class it makes then costs an ``exec`` more.
The model (model.py), the domain's view (domain/) and the store's records (store/) are
therefore written out as :class:`Frozen` classes, which keep what a frozen dataclass gave:

- immutable: ``__slots__`` and a ``__setattr__`` that refuses (``replace`` makes a copy);
- valid by construction: each class's ``__init__`` checks, as ``__post_init__`` did;
- typed: each class declares its fields as annotations and spells out its ``__init__``,
  so mypy checks every construction and every use;
- equal and hashed by value, over the fields in ``__slots__`` less ``_uncompared``, and
  shown by ``repr`` without the fields in ``_unshown`` (file content, an element).

Importing this module costs nothing.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeVar
    F = TypeVar("F", bound="Frozen")


#: Set a field of a Frozen record while constructing it (``object.__setattr__``, one C call:
#: the hook constructs one record per file, 80,000 for the largest domain the limits allow).
assign = object.__setattr__


class Frozen:
    """Base of the frozen records; a subclass names its fields in ``__slots__`` and sets
    each once in ``__init__`` with :func:`assign`."""

    __slots__: tuple[str, ...] = ()
    #: Fields left out of equality and hashing (a tree element, an identity).
    _uncompared: tuple[str, ...] = ()
    #: Fields left out of ``repr`` (content, which nothing may print).
    _unshown: tuple[str, ...] = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen; use replace() to change {name}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")

    def _key(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__ if name not in self._uncompared)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Frozen)
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__
                          if name not in self._unshown and not name.startswith("_"))
        return f"{type(self).__name__}({shown})"

    def _fields(self) -> dict[str, Any]:
        """The constructor's arguments that make this record again."""
        return {name: getattr(self, name) for name in self.__slots__ if not name.startswith("_")}


def replace(record: F, **changes: Any) -> F:
    """A copy of ``record`` with ``changes``, constructed (and so checked) anew, as
    ``dataclasses.replace`` makes one."""
    return type(record)(**{**record._fields(), **changes})
