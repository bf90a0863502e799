"""Size limits of IPFS reads as settings: what the environment may say, and the defaults."""

from __future__ import annotations

import pytest

from medvault.config import DEFAULT_MAX_BUNDLE_BYTES, DEFAULT_MAX_RECORD_BYTES, size_setting
from medvault.errors import ConfigurationError
from medvault.ipfs import ReadLimits


@pytest.mark.parametrize(
    ("value", "size"),
    [("1", 1), ("1073741824", 1 << 30), ("512MiB", 512 << 20), (" 2 gib ", 2 << 30), ("64KiB", 64 << 10), ("7B", 7)],
)
def test_sizes_are_bytes_or_binary_units(monkeypatch: pytest.MonkeyPatch, value: str, size: int) -> None:
    monkeypatch.setenv("MEDVAULT_TEST_SIZE", value)
    assert size_setting("MEDVAULT_TEST_SIZE", 5) == size


@pytest.mark.parametrize("value", ["0", "-1", "1.5MiB", "1e6", "1 TB", "MiB", "", "0x10"])
def test_anything_else_is_refused_naming_the_setting(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("MEDVAULT_TEST_SIZE", value)
    with pytest.raises(ConfigurationError, match=f"MEDVAULT_TEST_SIZE={value!r} is not a size"):
        size_setting("MEDVAULT_TEST_SIZE", 5)


def test_the_defaults_hold_an_imaging_study_and_a_large_key_rotation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEDVAULT_MAX_RECORD_BYTES", raising=False)
    monkeypatch.delenv("MEDVAULT_MAX_BUNDLE_BYTES", raising=False)
    assert ReadLimits.from_env() == ReadLimits(DEFAULT_MAX_RECORD_BYTES, DEFAULT_MAX_BUNDLE_BYTES)
    assert (DEFAULT_MAX_RECORD_BYTES, DEFAULT_MAX_BUNDLE_BYTES) == (1 << 30, 16 << 20)
    monkeypatch.setenv("MEDVAULT_MAX_BUNDLE_BYTES", "1MiB")
    assert ReadLimits.from_env() == ReadLimits(bundle=1 << 20)
