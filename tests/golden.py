"""Golden files for every XML rewrite (a pytest plugin, loaded by setup.cfg's ``-p tests.golden``).

Each case is a pair in tests/data/golden/: ``<case>-in.xml``, the input, and
``<case>-out.<ext>``, what the rewrite must produce, byte for byte. A difference fails with a
unified diff (virt-manager's tests/utils.py ``diff_compare``). After a change made on
purpose, regenerate the outputs and review them like code:

    .venv/bin/python -m pytest tests/test_golden.py --regen-golden
    git diff tests/data/golden/
"""

from __future__ import annotations

import difflib
import os

import pytest

GOLDEN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "golden")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--regen-golden", action="store_true", default=False,
                     help="rewrite tests/data/golden/*-out.* from what the code produces now "
                          "(then review the diff before committing)")


class Golden:
    def __init__(self, regen: bool):
        self.regen = regen

    def input(self, case: str) -> bytes:
        with open(os.path.join(GOLDEN_DIR, f"{case}-in.xml"), "rb") as stream:
            return stream.read()

    def compare(self, case: str, actual: bytes, ext: str = "xml") -> None:
        path = os.path.join(GOLDEN_DIR, f"{case}-out.{ext}")
        if not actual.endswith(b"\n"):
            actual += b"\n"
        if self.regen:
            with open(path, "wb") as stream:
                stream.write(actual)
            return
        if not os.path.exists(path):
            pytest.fail(f"{os.path.relpath(path)} is missing; run pytest with --regen-golden and review it")
        with open(path, "rb") as stream:
            expected = stream.read()
        if actual != expected:
            diff = difflib.unified_diff(expected.decode("utf-8", "replace").splitlines(keepends=True),
                                        actual.decode("utf-8", "replace").splitlines(keepends=True),
                                        fromfile=os.path.relpath(path), tofile="produced now")
            pytest.fail("output differs from the golden file (--regen-golden rewrites it, on purpose):\n"
                        + "".join(diff), pytrace=False)


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Golden:
    return Golden(bool(request.config.getoption("--regen-golden")))
