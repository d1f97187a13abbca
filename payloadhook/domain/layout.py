"""Where an edit puts an element, laid out as the document around it is.

libvirt and editors write domain XML pretty-printed; an element added or replaced by
attach or detach is indented like its neighbours, so that the saved definition (and a
golden file's diff) shows only what changed. A compact document stays compact.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lxml import etree


def _step(element: etree._Element) -> str | None:
    """The document's indentation step ('  '), or None where it is not pretty-printed."""
    root = element.getroottree().getroot()
    text = root.text or ""
    if "\n" not in text or text.strip():
        return None
    return text.rpartition("\n")[2] or None


def _indent(element: etree._Element, step: str) -> None:
    from lxml import etree
    depth = sum(1 for _ in element.iterancestors())
    if len(element):
        etree.indent(element, space=step, level=depth)


def insert(parent: etree._Element, index: int, element: etree._Element) -> None:
    """Insert ``element`` as ``parent``'s child number ``index``, on a line of its own."""
    parent.insert(index, element)
    step = _step(parent)
    if step is None:
        return
    depth = sum(1 for _ in element.iterancestors())
    previous = element.getprevious()
    slot = previous.tail if previous is not None else parent.text
    if slot is None or slot.strip():
        slot = "\n" + step * (depth - 1)
    element.tail = slot
    if previous is not None:
        previous.tail = "\n" + step * depth
    else:
        parent.text = "\n" + step * depth
    _indent(element, step)


def replace(old: etree._Element, new: etree._Element) -> None:
    """Put ``new`` where ``old`` was, with old's surrounding whitespace."""
    parent = old.getparent()
    assert parent is not None
    new.tail = old.tail
    parent.replace(old, new)
    step = _step(parent)
    if step is not None:
        _indent(new, step)


def remove(element: etree._Element) -> None:
    """Remove ``element`` and the line it stood on."""
    parent = element.getparent()
    if parent is None:
        return
    previous = element.getprevious()
    if previous is not None:
        previous.tail = element.tail
    else:
        parent.text = element.tail
    parent.remove(element)
