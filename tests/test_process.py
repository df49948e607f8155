"""Process tuning at start-up: glibc's malloc arenas capped (what keeps the worker's memory flat)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nudger.process import limit_malloc_arenas


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
def test_arenas_are_capped_on_glibc() -> None:
    # in a child process: the cap is process-wide and must come before threads allocate
    code = "from nudger.process import limit_malloc_arenas; print(limit_malloc_arenas(2))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_elsewhere_it_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert limit_malloc_arenas() is False
