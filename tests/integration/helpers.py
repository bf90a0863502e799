"""Helpers the integration tests share: writing a record, granting, waiting for a condition,
and the chain's clock (which tests move forward instead of sleeping)."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest
from data import ALL, DAY, LAB, PASSPHRASE

from medvault.dev.anvil import fund, warp
from medvault.errors import ContractError
from medvault.model import Category, GrantTerms, Purpose

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from web3 import Web3

    from medvault.accounts import Keystore, Wallet
    from medvault.client import Medvault
    from medvault.model import RecordPointer

__all__ = ["ChainClock", "add", "grant", "new_wallet", "refused", "wait_for"]


@contextmanager
def refused(name: str) -> Iterator[None]:
    """Expects the block to raise the contract error ``name`` (matched by name: its message is words)."""
    with pytest.raises(ContractError) as caught:
        yield
    assert caught.value.name == name, f"{caught.value.name}: {caught.value}"


def new_wallet(keystore: Keystore, w3: Web3, name: str, passphrase: str = PASSPHRASE) -> Wallet:
    """A new keystore account ``name``, unlocked and funded."""
    keystore.create(name, passphrase)
    wallet = keystore.unlock(name, passphrase)
    fund(w3, wallet.address)
    return wallet


def add(
    mv: Medvault, author: Wallet, patient: Wallet, data: bytes = LAB, category: Category = Category.LABORATORY
) -> RecordPointer:
    """``author`` writes ``data`` to ``patient``'s log; the new record's pointer."""
    return mv.add_record(author, patient.address, data, category).pointer


def grant(
    mv: Medvault,
    patient: Wallet,
    grantee: Wallet,
    scopes: frozenset[Category] = ALL,
    start: int | None = None,
    end: int | None = None,
) -> None:
    """``patient`` grants ``grantee`` ``scopes`` for treatment from ``start`` (default: chain
    time now) to ``end`` (default: a day after ``start``)."""
    start = mv.now() if start is None else start
    end = start + DAY if end is None else end
    mv.grant(patient, patient.address, grantee.address, GrantTerms(scopes, Purpose.TREAT, start, end))


def wait_for(condition: Callable[[], Any], timeout: float = 20.0, what: str = "the condition") -> Any:
    """Polls ``condition`` every 0.1 s until it returns something true, which it returns."""
    deadline = time.monotonic() + timeout
    while True:
        if result := condition():
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


class ChainClock:
    """The chain's time, which tests move forward instead of sleeping."""

    def __init__(self, w3: Web3) -> None:
        self.w3 = w3

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def advance(self, seconds: int) -> None:
        warp(self.w3, seconds)
