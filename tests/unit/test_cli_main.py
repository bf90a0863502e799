"""The installed `medvault` entry point: a fault of medvault's own prints one line, not a traceback."""

from __future__ import annotations

import pytest

import medvault.cli as cli_module


def _broken(**_: object) -> None:
    raise RuntimeError("an internal fault")


def test_an_unexpected_fault_prints_one_line_and_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli_module, "cli", _broken)
    monkeypatch.delenv("MEDVAULT_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        cli_module.main()
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "failed unexpectedly (RuntimeError: an internal fault)" in err
    assert "MEDVAULT_DEBUG=1" in err


def test_medvault_debug_shows_the_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_module, "cli", _broken)
    monkeypatch.setenv("MEDVAULT_DEBUG", "1")
    with pytest.raises(RuntimeError, match="an internal fault"):
        cli_module.main()
