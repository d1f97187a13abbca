"""JSON for the store's records, without the ``json`` module: what prepare reads and writes.

Every ``prepare`` reads the domain's record and every other record in image_dir, and
writes its own three times; ``json`` would cost it about 3 ms to import, since its
decoder and encoder import ``re`` (and ``re`` imports ``enum`` and ``functools``). The
records stay JSON, byte for byte what ``json.dumps(..., sort_keys=True)`` writes, so that
records written before, and payloadhook versions before and after, read each other's.

:func:`dumps` writes objects, lists, strings, integers and None (ASCII only, as
``ensure_ascii`` does). :func:`loads` reads any JSON text (RFC 8259), as ``json.loads``
reads it, nested at most :data:`MAX_DEPTH` deep, and raises ValueError for anything else;
tests/test_store.py holds both to the ``json`` module's output. Work is linear in the
text's length: strings are cut out with ``str.find``, never char by char.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Union
    Value = Union[None, bool, int, float, str, list["Value"], dict[str, "Value"]]

#: A record is an object of lists of objects; deeper nesting is not one (and no recursion limit is met).
MAX_DEPTH = 16

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
_UNESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_BLANKS = " \t\n\r"
_DIGITS = "0123456789"
_HEX = frozenset("0123456789abcdefABCDEF")


def _quote(text: str) -> str:
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return '"' + text + '"'
    out = []
    for ch in text:
        code = ord(ch)
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif 0x20 <= code < 0x7F:
            out.append(ch)
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            code -= 0x10000
            out.append(f"\\u{0xD800 | code >> 10:04x}\\u{0xDC00 | code & 0x3FF:04x}")
    return '"' + "".join(out) + '"'


def dumps(value: Value) -> str:
    """``value`` as ``json.dumps(value, sort_keys=True)`` writes it."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(dumps(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(_quote(key) + ": " + dumps(value[key]) for key in sorted(value)) + "}"
    raise TypeError(f"{type(value).__name__} is not written in a record")


def loads(data: bytes | str) -> Any:
    """The JSON text ``data`` (UTF-8) as Python values, typed as ``json.loads`` types them
    (the caller checks their shape); ValueError if it is not JSON."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    reader = _Reader(text)
    value = reader.value(0)
    if reader.skip() != len(text):
        raise ValueError(f"extra data at {reader.at}")
    return value


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0

    def skip(self) -> int:
        text, at = self.text, self.at
        while at < len(text) and text[at] in _BLANKS:
            at += 1
        self.at = at
        return at

    def fail(self, what: str) -> ValueError:
        return ValueError(f"{what} at {self.at}")

    def value(self, depth: int) -> Value:
        if depth > MAX_DEPTH:
            raise self.fail("nested too deeply")
        text, at = self.text, self.skip()
        ch = text[at:at + 1]
        if ch == "{":
            return self.object(depth + 1)
        if ch == "[":
            return self.array(depth + 1)
        if ch == '"':
            return self.string()
        for word, meaning in (("null", None), ("true", True), ("false", False)):
            if text.startswith(word, at):
                self.at = at + len(word)
                return meaning
        if ch == "-" or (ch and ch in _DIGITS):
            return self.number()
        raise self.fail("expected a value")

    def object(self, depth: int) -> dict[str, Value]:
        self.at += 1
        found: dict[str, Value] = {}
        if self.text[self.skip():self.at + 1] == "}":
            self.at += 1
            return found
        while True:
            if self.text[self.skip():self.at + 1] != '"':
                raise self.fail("expected a name")
            key = self.string()
            if self.text[self.skip():self.at + 1] != ":":
                raise self.fail("expected ':'")
            self.at += 1
            found[key] = self.value(depth)
            ch = self.text[self.skip():self.at + 1]
            self.at += 1
            if ch == "}":
                return found
            if ch != ",":
                raise self.fail("expected ',' or '}'")

    def array(self, depth: int) -> list[Value]:
        self.at += 1
        found: list[Value] = []
        if self.text[self.skip():self.at + 1] == "]":
            self.at += 1
            return found
        while True:
            found.append(self.value(depth))
            ch = self.text[self.skip():self.at + 1]
            self.at += 1
            if ch == "]":
                return found
            if ch != ",":
                raise self.fail("expected ',' or ']'")

    def string(self) -> str:
        text = self.text
        start = at = self.at + 1
        pieces = []
        end = text.find('"', at)    # found again only once an escape passed it: linear
        while True:
            if end < 0:
                raise self.fail("unterminated string")
            slash = text.find("\\", at, end)
            if slash < 0:
                pieces.append(text[at:end])
                self.at = end + 1
                break
            pieces.append(text[at:slash])
            at = self._escape(slash, pieces)
            if at > end:
                end = text.find('"', at)
        joined = "".join(pieces)
        if not joined.isprintable() and any(ord(ch) < 0x20 for ch in text[start:self.at - 1]):
            raise self.fail("control character in a string")
        return joined

    def _escape(self, slash: int, pieces: list[str]) -> int:
        """Append the escape at ``slash``; return where the string goes on."""
        text = self.text
        kind = text[slash + 1:slash + 2]
        if kind in _UNESCAPES:
            pieces.append(_UNESCAPES[kind])
            return slash + 2
        if kind != "u":
            self.at = slash
            raise self.fail("bad escape")
        code = self._hex(slash + 2)
        if 0xD800 <= code < 0xDC00 and text.startswith("\\u", slash + 6):
            low = self._hex(slash + 8)
            if 0xDC00 <= low < 0xE000:
                pieces.append(chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)))
                return slash + 12
        pieces.append(chr(code))
        return slash + 6

    def _hex(self, at: int) -> int:
        digits = self.text[at:at + 4]
        if len(digits) != 4 or not set(digits) <= _HEX:
            self.at = at
            raise self.fail("bad \\u escape")
        return int(digits, 16)

    def number(self) -> int | float:
        text, start = self.text, self.at
        at = start + (text[start] == "-")
        digits = self._digits(at)
        if digits == at or (text[at] == "0" and digits > at + 1):
            raise self.fail("bad number")
        at, is_float = digits, False
        if text[at:at + 1] == ".":
            digits = self._digits(at + 1)
            if digits == at + 1:
                raise self.fail("bad number")
            at, is_float = digits, True
        if text[at:at + 1] in ("e", "E"):
            sign = at + 1 + (text[at + 1:at + 2] in ("+", "-"))
            digits = self._digits(sign)
            if digits == sign:
                raise self.fail("bad number")
            at, is_float = digits, True
        self.at = at
        return float(text[start:at]) if is_float else int(text[start:at])

    def _digits(self, at: int) -> int:
        text = self.text
        while at < len(text) and text[at] in _DIGITS:
            at += 1
        return at
