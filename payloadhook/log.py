"""Warnings the library gives, such as an image it will not delete.

Library modules warn as they would through ``logging.getLogger(__name__)``, with lazy
``%s`` arguments and never a payload's content, but through :func:`warning`: logging is
dear to import on every hook call that acts (docs/speed.md), so it is imported only when
there is something to say. The hook and the command set :data:`stream` to their standard error,
where a warning is one line, like their errors; elsewhere (a program using the
library, the tests) warnings go through the logging module.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

#: Where the hook or the command wants warnings (its stderr); None: the logging module.
stream: TextIO | None = None


def warning(logger: str, message: str, *args: object) -> None:
    """``logging.getLogger(logger).warning(message, *args)``, or one line on :data:`stream`."""
    if stream is not None:
        from .errors import one_line
        stream.write(one_line(message % args if args else message))
        return
    import logging
    logging.getLogger(logger).warning(message, *args)
