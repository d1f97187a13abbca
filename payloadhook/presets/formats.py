"""The formats presets hold, checked as their readers read them: YAML and JSON documents,
and cloud-init user data. Messages say what is wrong and where, never quote content.
"""

from __future__ import annotations

import zlib

from ..errors import PayloadError

#: The headers cloud-init recognises at the start of user data (cloudinit/handlers/__init__.py,
#: INCLUSION_TYPES_MAP, matched after lower-casing and stripping leading blanks), longest first
#: so that '#cloud-config-archive' is not taken for '#cloud-config'.
USER_DATA_HEADERS = ("## template: jinja", "#cloud-config-archive", "#cloud-config-jsonp", "#cloud-config",
                     "#cloud-boothook", "#part-handler", "#include-once", "#include", "#!")
GZIP_MAGIC = b"\x1f\x8b"
#: cloud-init takes user data for a MIME message when 'mime-version:' appears in its first
#: 4096 bytes (cloudinit/user_data.py, convert_string).
MIME_WINDOW = 4096
#: Collections nested deeper than any configuration needs (cloud-init's own pure-Python
#: loader gives up at a few hundred levels, on Python's recursion limit).
MAX_YAML_DEPTH = 100
#: Nodes a document may grow by through aliases and merge keys, beyond one a byte of its text.
MAX_YAML_EXPANSION = 100_000


def load_yaml(data: bytes, what: str):
    """The YAML document ``data`` as a safe loader reads it (cloud-init's is a SafeLoader)."""
    import yaml  # type: ignore[import-untyped]
    text = _text(data, what)
    fast = getattr(yaml, "CSafeLoader", None)
    try:
        _check_shape(yaml, text, fast or yaml.SafeLoader, what)
        return yaml.load(text, Loader=fast or yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise PayloadError(f"{what} is not valid YAML{where}") from None
    except RecursionError:
        raise PayloadError(f"{what} is YAML nested too deeply to read") from None


def _check_shape(yaml, text: str, loader, what: str) -> None:
    """Before anything is composed, on the flat event stream: the depth (libyaml composes
    nested collections by recursion in C, and 100,000 '[' crash the process), and the size
    the document grows to once its aliases and merge keys are expanded, each alias counting
    what its anchor holds (a few hundred bytes of '<<: [*a, *a, ...]' levels otherwise take
    minutes and gigabytes: the billion laughs of YAML). Linear in the events."""
    limit = len(text) + MAX_YAML_EXPANSION
    anchored: dict[str, int] = {}
    stack: list[list] = []          # [anchor, expanded size so far] per open collection

    def add(size: int) -> None:
        if stack:
            stack[-1][1] += size
            if stack[-1][1] > limit:
                raise PayloadError(f"{what} grows to over {limit} nodes through its aliases")

    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.CollectionStartEvent):
            stack.append([event.anchor, 1])
            if len(stack) > MAX_YAML_DEPTH:
                raise PayloadError(f"{what} nests collections over {MAX_YAML_DEPTH} levels deep")
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, size = stack.pop()
            if anchor is not None:
                anchored[anchor] = size
            add(size)
        elif isinstance(event, yaml.ScalarEvent):
            if event.anchor is not None:
                anchored[event.anchor] = 1
            add(1)
        elif isinstance(event, yaml.AliasEvent):
            add(anchored.get(event.anchor, 1))


class _NotFinite(Exception):
    """NaN, Infinity or a number too big for a float: JSON has none of them."""


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _NotFinite
    return value


def _no_constant(_text: str):
    raise _NotFinite


def load_json(data: bytes, what: str):
    """A JSON document as strict readers take it: no NaN or Infinity (which Python's json
    reads and writes, and other readers refuse), no number a float cannot hold."""
    import json
    text = _text(data, what)
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except _NotFinite:
        raise PayloadError(f"{what} holds NaN, Infinity or a number too big for a float, which JSON has not") \
            from None
    except json.JSONDecodeError as exc:
        raise PayloadError(f"{what} is not valid JSON: {exc.msg}, line {exc.lineno}, column {exc.colno}") from None
    except RecursionError:
        raise PayloadError(f"{what} is JSON nested too deeply to read") from None
    except ValueError:    # an integer over Python's 4,300 digits: its message quotes none
        raise PayloadError(f"{what} holds a number too long to read") from None


def _text(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"{what} is not UTF-8 text (byte {exc.start + 1})") from None


def check_mapping(data: bytes, what: str, empty: bool = False) -> dict:
    """A YAML mapping (``empty``: an empty document reads as {})."""
    loaded = load_yaml(data, what)
    if loaded is None and empty:
        return {}
    if not isinstance(loaded, dict):
        raise PayloadError(f"{what} is not a YAML mapping (key: value lines)")
    return loaded


def check_network_config(data: bytes, what: str) -> None:
    """cloud-init network configuration: a mapping of ``version`` 1 or 2, at the top or
    under ``network:`` (cloud-init drops that top-level key, stages.py)."""
    config = check_mapping(data, what)
    if isinstance(config.get("network"), dict) and "version" not in config:
        config = config["network"]
    version = config.get("version")
    if version not in (1, 2) or isinstance(version, bool):
        raise PayloadError(f"{what} has no 'version: 1' or 'version: 2' (cloud-init reads network "
                           "configuration versions 1 and 2)")


def check_user_data(data: bytes, what: str, limit: int) -> None:
    """User data cloud-init acts on: a header it recognises, a MIME message, or either
    gzipped (cloud-init decompresses once, then looks again). ``#cloud-config`` must be a
    YAML mapping. ``limit`` bounds what gzip may expand to."""
    if data.startswith(GZIP_MAGIC):
        data = _gunzip(data, what, limit)
        if data.startswith(GZIP_MAGIC):
            raise PayloadError(f"{what} is gzip within gzip; cloud-init decompresses once")
    # as cloud-init decodes a part (util.fully_decoded_payload): bytes that are not UTF-8 do
    # not hide a header (a script may hold any bytes); YAML below must be UTF-8 all the same
    head = data.decode("utf-8", "surrogateescape").lstrip().lower()
    header = next((h for h in USER_DATA_HEADERS if head.startswith(h)), None)
    if header is None and b"mime-version:" in data[:MIME_WINDOW].lower():
        return    # a MIME message: its parts are cloud-init's to read
    # (a '#cloud-config' that merely mentions mime-version: cloud-init parses it as a message
    # without headers, whose one part starts '#cloud-config': its YAML is read all the same)
    if header is None:
        if head.startswith("content-type:"):
            raise PayloadError(f"{what} is a MIME message without a MIME-Version header in its first "
                               f"{MIME_WINDOW} bytes, where cloud-init looks for one")
        raise PayloadError(f"{what} does not start with a header cloud-init recognises (#cloud-config, #!, "
                           "#include, ## template: jinja, #cloud-boothook, #part-handler, #cloud-config-archive, "
                           "a MIME multipart message, or any of them gzipped)")
    if header == "#cloud-config":
        loaded = load_yaml(data, what)
        if loaded is not None and not isinstance(loaded, dict):
            raise PayloadError(f"{what} is #cloud-config but not a YAML mapping (key: value lines)")


def _gunzip(data: bytes, what: str, limit: int) -> bytes:
    """gzip data decompressed, never past ``limit`` bytes (a small bomb stays small)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error:
        raise PayloadError(f"{what} is gzip data that does not decompress") from None
    if len(out) > limit:
        raise PayloadError(f"{what} decompresses to over {limit} bytes (max_file_size)")
    if not inflater.eof:
        raise PayloadError(f"{what} is truncated gzip data")
    return out
