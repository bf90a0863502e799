"""Recompiling contracts/ gives exactly the shipped artifacts: ABIs, bytecode, settings, sources.

Slower than the fingerprint check in tests/unit/test_artifacts.py (a full soljson build, about
15 s), and it also catches a change in what the compiler, the settings or a dependency emit.
"""

from __future__ import annotations

import json

import pytest

from medvault.dev.artifacts import PROJECT_ROOT, artifacts_path, build

pytestmark = pytest.mark.integration


def test_recompiling_gives_the_shipped_artifacts() -> None:
    shipped = json.loads(artifacts_path(PROJECT_ROOT).read_text())
    fresh = build(PROJECT_ROOT)
    hint = "the shipped artifacts differ from a fresh build: run `make artifacts` and commit the result"
    assert fresh["sources"] == shipped["sources"], hint
    assert fresh["compiler"] == shipped["compiler"], hint
    for name, artifact in fresh["contracts"].items():
        assert artifact["abi"] == shipped["contracts"][name]["abi"], f"{name} ABI: {hint}"
        assert artifact["bytecode"] == shipped["contracts"][name]["bytecode"], f"{name} bytecode: {hint}"
    assert fresh == shipped, hint
