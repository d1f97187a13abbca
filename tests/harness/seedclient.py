"""Clients that load and probe the seed service, run inside a guest's namespace:
``python -m tests.harness.seedclient MODE ...``; each prints one JSON line.

- ``concurrent N NAME``: N connections at once, each a GET of NAME; statuses counted.
- ``slow N SECONDS``: N connections sending a request one byte a second for SECONDS; how
  many the service accepted, and how many it had closed by the end.
- ``raw HEX``: one request as given (hex-encoded bytes); the status line's code, or "closed".
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter

ADDRESS = ("169.254.169.254", 80)


async def _get(name: str) -> str:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(*ADDRESS), 10)
    except (OSError, asyncio.TimeoutError) as exc:
        return type(exc).__name__
    try:
        writer.write(f"GET /{name} HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n".encode())
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 20)
        await asyncio.wait_for(reader.read(), 20)
        return line.split(b" ")[1].decode() if line.count(b" ") >= 1 else "closed"
    except (OSError, asyncio.TimeoutError, IndexError) as exc:
        return type(exc).__name__
    finally:
        writer.close()


async def concurrent(count: int, name: str) -> dict:
    results = await asyncio.gather(*(_get(name) for _ in range(count)))
    return dict(Counter(results))


async def _slow(seconds: float) -> tuple[bool, bool, bytes]:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(*ADDRESS), 10)
    except (OSError, asyncio.TimeoutError):
        return False, True, b""
    request = b"GET /user-data HTTP/1.1\r\nHost: 169.254.169.254\r\nX-Slow: " + b"a" * 100
    got = b""
    closed = False
    try:
        for index in range(int(seconds)):
            writer.write(request[index % len(request):index % len(request) + 1])
            await writer.drain()
            try:
                chunk = await asyncio.wait_for(reader.read(4096), 1)
            except asyncio.TimeoutError:
                continue
            if not chunk:
                closed = True
                break
            got += chunk
    except OSError:
        closed = True
    finally:
        writer.close()
    return True, closed, got


async def slow(count: int, seconds: float) -> dict:
    results = await asyncio.gather(*(_slow(seconds) for _ in range(count)))
    return {"connected": sum(1 for c, _, _ in results if c), "closed": sum(1 for c, x, _ in results if c and x),
            "answered_200": sum(1 for _, _, g in results if g.startswith(b"HTTP/1.1 200"))}


async def raw(request: bytes) -> dict:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(*ADDRESS), 10)
    except (OSError, asyncio.TimeoutError) as exc:
        return {"status": type(exc).__name__}
    try:
        writer.write(request)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(1 << 20), 20)
    except (OSError, asyncio.TimeoutError) as exc:
        return {"status": type(exc).__name__}
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    parts = head.split(b" ")
    return {"status": parts[1].decode() if len(parts) > 1 else "closed", "body": body.hex()}


def main(argv: list[str]) -> None:
    mode = argv[0]
    if mode == "concurrent":
        result = asyncio.run(concurrent(int(argv[1]), argv[2]))
    elif mode == "slow":
        result = asyncio.run(slow(int(argv[1]), float(argv[2])))
    else:
        result = asyncio.run(raw(bytes.fromhex(argv[1])))
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
