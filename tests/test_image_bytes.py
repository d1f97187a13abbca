"""The image writers give the bytes they gave before their layout and records were rewritten
for speed (docs/speed.md, "The largest document, third round"): large, deep, wide and
long-named trees, with and without a label, dated alike, compared by their SHA-256 with
the digests tests/data/image-digests.json holds, which the writers of main at 6305ab0 made.
The readers' tests (test_iso.py, test_floppy.py) say the images are right; this one says a
change of speed changed no byte of them."""

from __future__ import annotations

import hashlib
import io
import json
import random
from pathlib import Path

import pytest

from payloadhook.media.floppy import write_floppy
from payloadhook.media.iso import write_iso
from payloadhook.model import Payload, PayloadFile

DIGESTS = Path(__file__).parent / "data" / "image-digests.json"
WHEN = 1700000000.5


_PATTERN = bytes(range(251)) * 20


def _content(index: int, size: int) -> bytes:
    start = index * 7 % 251
    return (_PATTERN * (1 + size // len(_PATTERN)))[start:start + size]


def _random_names(count: int) -> list[str]:
    """Paths up to six deep from a few parts, none both a file and a directory."""
    pick = random.Random(7)
    parts = ["A", "b", "Cc", "dd.d", "e e", "f-1", "g" * 17, "h.tar.gz", "ünï", "日本"]
    names = {"/".join(pick.choice(parts) + str(pick.randint(0, 30)) for _ in range(pick.randint(1, 6)))
             for _ in range(count)}
    directories = {"/".join(name.split("/")[:depth]) for name in names for depth in range(1, name.count("/") + 1)}
    return sorted(names - directories)


_TREES: dict[str, tuple[str, list[tuple[str, bytes]]]] = {}


def trees() -> dict[str, tuple[str, list[tuple[str, bytes]]]]:
    if not _TREES:
        _TREES.update(_make_trees())
    return _TREES


def _make_trees() -> dict[str, tuple[str, list[tuple[str, bytes]]]]:
    return {
        "bench": ("cdrom", [(f"t/d{i % 999:03}/f{i:05}.bin", b"") for i in range(9999)]
                  + [("big.bin", _content(0, 5000))]),
        "flat": ("cdrom", [(f"file-{i:04}-with-a-long-name.txt", _content(i, i % 3000)) for i in range(1000)]),
        "deep": ("cdrom", [("/".join(f"lvl{j}" for j in range(k)) + f"/f{k}", b"d" * k) for k in range(1, 8)]),
        "long-names": ("cdrom", [("a" * 200 + "/" + "b" * 255, b"1"), ("c" * 255, b""), ("dir/" + "é" * 120, b"22")]
                       + [(f"x/{'n' * 240}{i:03}", b"") for i in range(60)]),
        "unicode": ("cdrom", [(f"ü{i}/日本語{i}.txt", bytes(i)) for i in range(50)] + [("😀/😀😀", b"e")]),
        "random": ("cdrom", [(name, _content(i, i * 37 % 4100)) for i, name in enumerate(_random_names(3000))]),
        "wide": ("cdrom", [(f"d/{i:06}-{'q' * (i % 40)}", b"") for i in range(5000)]
                 + [(f"s{i}/x", b"") for i in range(300)]),
        "one": ("cdrom", [("a", b"")]),
        "floppy-bench": ("floppy", [(f"t/d{i % 999:03}/f{i:05}.bin", b"") for i in range(9999)]
                         + [("big.bin", _content(1, 5000))]),
        "floppy-mixed": ("floppy", [(f"Long Name {i}/ünï {j}.txt", bytes(j * 10)) for i in range(20) for j in range(20)]
                         + [(f"ROOT{i}.TXT", b"r") for i in range(100)]),
        "floppy-deep": ("floppy", [("/".join(f"lvl{j}" for j in range(k)) + f"/f{k}", b"d" * k * 100)
                                   for k in range(1, 12)]),
    }


def digest(kind: str, files: list[tuple[str, bytes]], label: str | None) -> str:
    payload = Payload(type=kind, files=tuple(PayloadFile(name, content) for name, content in files),
                      volume_id=label)
    out = io.BytesIO()
    (write_iso if kind == "cdrom" else write_floppy)(payload, out, WHEN)
    return hashlib.sha256(out.getvalue()).hexdigest()


@pytest.mark.parametrize("name", sorted(trees()))
@pytest.mark.parametrize("label", [None, "LBL"])
def test_an_image_has_the_bytes_it_had(name, label):
    kind, files = trees()[name]
    assert digest(kind, files, label) == json.loads(DIGESTS.read_text())[f"{name} {label}"]


if __name__ == "__main__":    # writes the digests: run with the writers they are to hold to
    DIGESTS.write_text(json.dumps({f"{name} {label}": digest(kind, files, label)
                                   for name, (kind, files) in trees().items() for label in (None, "LBL")},
                                  indent=1, sort_keys=True) + "\n")
