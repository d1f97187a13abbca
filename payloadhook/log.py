"""Warnings the library gives, such as an image it will not delete.

The hook sends them to its standard error, as one line each; anywhere else they go
through the logging module, as any library's do. Importing logging costs 5 ms, on
every hook call that acts, so it is imported only when there is something to say.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

#: Where the hook wants warnings (its stderr); None: the logging module.
stream: TextIO | None = None


def warning(message: str) -> None:
    if stream is not None:
        stream.write(f"payloadhook: {message}\n")
        return
    import logging
    logging.getLogger("payloadhook").warning(message)
