"""``--files-json``: files as one JSON document, ``{"files": [{"name": "...", "content":
"<base64>"}]}``, from standard input or a file, so that content passes through neither a
command line nor the environment (the web console gives its files this way)."""

from __future__ import annotations

import os

from ..errors import PayloadError, quote
from ..model import PayloadFile
from .files import Budget, read_regular

#: What a ``--files-json`` document may hold beyond its decoded contents: names, quoting, base64's third.
_JSON_OVERHEAD = 1024 * 1024


def files_from_json(source: str, config) -> tuple[PayloadFile, ...]:
    """Files from a JSON document, ``{"files": [{"name": "...", "content": "<base64>"}]}``,
    read from standard input (``-``) or a regular file, bounded by the limits before it is
    parsed, each file's size checked before its content is decoded. Content never passes
    through a command line or the environment this way."""
    import base64
    import binascii
    import json
    limit = config.max_payload_size * 4 // 3 + config.max_files * 512 + _JSON_OVERHEAD
    if source == "-":
        data = _read_stdin(limit)
    else:
        data = read_regular(source, None, limit=limit, what="--files-json file", follow_hint=False)
    try:
        document = json.loads(data)
    except UnicodeDecodeError:
        raise PayloadError("--files-json: the document is not UTF-8") from None
    except RecursionError:
        raise PayloadError("--files-json: the document is nested too deeply to read") from None
    except ValueError as exc:
        where = f": {exc.msg}, line {exc.lineno}, column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise PayloadError(f"--files-json: not a JSON document{where}") from None
    if not isinstance(document, dict) or set(document) != {"files"} or not isinstance(document["files"], list):
        raise PayloadError('--files-json: expected {"files": [{"name": "...", "content": "<base64>"}, ...]}')
    entries = document["files"]
    if len(entries) > config.max_files:
        raise PayloadError(f"--files-json: {len(entries)} files, over max_files ({config.max_files})")
    budget = Budget(config)
    files = []
    for index, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or set(entry) != {"name", "content"} or \
                not isinstance(entry["name"], str) or not isinstance(entry["content"], str):
            raise PayloadError(f'--files-json: file {index} is not {{"name": "...", "content": "<base64>"}}')
        name, text = entry["name"], entry["content"]
        budget.take_file(f"--files-json file {index}", len(text) * 3 // 4 - text[-2:].count("="))
        try:
            content = base64.b64decode(text.encode("ascii"), validate=True)
        except (binascii.Error, ValueError, UnicodeEncodeError):
            raise PayloadError(f"--files-json: file {index} ({quote(name)}): content is not valid base64") from None
        files.append(PayloadFile(name=name, content=content))
    return tuple(files)


def _read_stdin(limit: int) -> bytes:
    """Standard input, at most ``limit`` bytes (more is refused, not cut)."""
    chunks: list[bytes] = []
    got = 0
    while True:
        chunk = os.read(0, min(1 << 20, limit + 1 - got))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        got += len(chunk)
        if got > limit:
            raise PayloadError(f"--files-json: standard input is over {limit} bytes, more than the limits allow")
