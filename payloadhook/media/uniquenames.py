"""Names made unique within one directory, in time linear in its entries.

ISO 9660 level 1 names, Joliet names and FAT 8.3 aliases all make a name unique the
same way: a number in place of the end of its stem ("CONFIGF1.TXT", "long name~2.json",
"LONGNA~3.TXT"). Trying numbers from 1 for every name costs, for n names sharing a
stem, n²/2 tries: a few thousand such names would keep the root hook busy for minutes
while libvirt waits for it. Here each prefix keeps the next number
to try, so each number of a prefix is tried once, and one is passed over only where an
entry of the directory holds that very name.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported on the hook's path
    from typing import Callable


class UniqueNames:
    """The names taken in one directory, and the next number to try for each prefix."""

    def __init__(self) -> None:
        self._taken: set[str] = set()
        #: keyed by strings joined with NUL, which no name holds: a tuple for each name
        #: would be an object more for the collector to count, 10,000 a directory
        self._next: dict[str, int] = {}
        #: for each family of numbered names, the fewest digits not yet given out in full
        self._digits: dict[str, int] = {}

    def take(self, name: str) -> bool:
        """Take ``name`` if no entry has it yet; return whether it was free."""
        if name in self._taken:
            return False
        self._taken.add(name)
        return True

    def numbered(self, prefix: Callable[[int], str], separator: str, suffix: str, max_digits: int) -> str:
        """Take and return the first free ``prefix(d) + separator + N + suffix``, for N of
        d digits, d from 1 to ``max_digits``: ``prefix(d)`` is the stem cut to leave room,
        each a prefix of ``prefix(1)``, which so names the family. A digit count a family
        has used up is not tried again: the thousandth name of a family costs what the
        first did, not a try for each digit count before its own."""
        family = f"{prefix(1)}\0{separator}\0{suffix}"
        for digits in range(self._digits.get(family, 1), max_digits + 1):
            start = prefix(digits)
            key = f"{start}{separator}\0{suffix}"
            number = max(self._next.get(key, 1), 10 ** (digits - 1))
            while number < 10 ** digits:
                name = f"{start}{separator}{number}{suffix}"
                number += 1
                if name not in self._taken:
                    self._next[key] = number
                    self._taken.add(name)
                    return name
            self._next[key] = number
            self._digits[family] = digits + 1
        raise AssertionError("no unique name left")   # more than a directory can hold
