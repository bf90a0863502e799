"""keccak on the fast backend once medvault is imported, and receipts polled without web3's
0.1 s sleep (backing off to it)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from hexbytes import HexBytes
from web3.exceptions import TimeExhausted, TransactionNotFound

from medvault.chain import transact

PROBE = (
    "import medvault; from eth_utils.crypto import keccak; from eth_hash.auto import keccak as k; "
    "assert keccak(b'').hex().startswith('c5d2460186f7'); print(type(k.hasher.__self__).__name__)"
)


@pytest.mark.parametrize(("chosen", "backend"), [(None, "PySha3Backend"), ("pycryptodome", "CryptodomeBackend")])
def test_keccak_runs_on_pysha3_unless_the_environment_chose(chosen: str | None, backend: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ETH_HASH_BACKEND"}
    if chosen:
        env["ETH_HASH_BACKEND"] = chosen
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == backend


class _Eth:
    def __init__(self, misses: int) -> None:
        self.misses, self.calls = misses, 0

    def get_transaction_receipt(self, tx_hash: HexBytes) -> dict[str, Any]:
        self.calls += 1
        if self.calls <= self.misses:
            raise TransactionNotFound(f"{tx_hash.to_0x_hex()} not found")
        return {"status": 1}


class _W3:
    def __init__(self, misses: int) -> None:
        self.eth = _Eth(misses)


def test_a_receipt_is_polled_from_milliseconds(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr(transact.time, "sleep", sleeps.append)
    w3 = _W3(misses=8)
    assert transact.wait_for_receipt(w3, HexBytes(b"\x01" * 32)) == {"status": 1}  # type: ignore[arg-type]
    assert w3.eth.calls == 9
    assert sleeps[0] == transact.FIRST_POLL_S
    assert sleeps == sorted(sleeps)
    assert max(sleeps) == transact.LAST_POLL_S  # backs off to web3's interval, no further


def test_a_receipt_that_never_comes_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transact.time, "sleep", lambda _: None)
    with pytest.raises(TimeExhausted, match="not in the chain after 0.01 seconds"):
        transact.wait_for_receipt(_W3(misses=10**9), HexBytes(b"\x02" * 32), timeout=0.01)  # type: ignore[arg-type]
