"""Bad consent changes at the library: what the chain would refuse is refused in words before
anything is signed, sent or published: a refused grant of a patient with records in scope
wraps no key and pins no bundle (the patient's own keys never leave for a change that fails).

Each row runs on the `mv` deployment with one laboratory record of the patient, a delegate
(stranger) appointed for laboratory only, and leaves chain, pins and home as they were."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from data import DAY, LAB, LABS
from helpers import add
from unchanged import unchanged

from medvault.errors import ContractError
from medvault.model import Category, DelegateTerms, GrantTerms, Purpose

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from web3 import Web3

    from medvault.accounts import Wallet
    from medvault.client import Medvault
    from medvault.ipfs import IpfsClient


def _terms(mv: Medvault, start: int = 0, length: int = DAY, scopes: frozenset[Category] = LABS) -> GrantTerms:
    return GrantTerms(scopes, Purpose.TREAT, mv.now() + start, mv.now() + start + length)


ROWS: dict[str, tuple[Callable[[Medvault, dict[str, Wallet]], object], str]] = {
    "self-grant-with-records-in-scope": (
        lambda mv, w: mv.grant_change(w["patient"], w["patient"].address, w["patient"].address, _terms(mv)),
        "cannot be granted access to their own records",
    ),
    "grant-window-over-with-records-in-scope": (
        lambda mv, w: mv.grant_change(w["patient"], w["patient"].address, w["doctor"].address, _terms(mv, -2 * DAY)),
        "the grant window is already over",
    ),
    "grant-window-backwards": (
        lambda mv, w: mv.check(
            w["patient"],
            mv.grant_change(w["patient"], w["patient"].address, w["doctor"].address, _terms(mv, DAY, -DAY)),
        ),
        "the grant window ends before it starts",
    ),
    "revoke-of-nothing": (
        lambda mv, w: mv.check(w["patient"], mv.revoke_change(w["patient"].address, w["doctor"].address)),
        "there is nothing to revoke",
    ),
    "delegate-outside-its-terms": (
        lambda mv, w: mv.check(
            w["stranger"],
            mv.grant_change(
                w["stranger"],
                w["patient"].address,
                w["doctor"].address,
                _terms(mv, scopes=frozenset({Category.IMAGING})),
            ),
        ),
        "outside the terms of delegate",
    ),
    "grant-signed-by-a-non-delegate": (
        lambda mv, w: mv.check(
            w["admin"], mv.grant_change(w["admin"], w["patient"].address, w["doctor"].address, _terms(mv))
        ),
        "who is neither the patient nor, where allowed, their delegate",
    ),
    "remove-a-non-delegate": (
        lambda mv, w: mv.check(
            w["patient"], mv.delegate_change(w["patient"].address, w["doctor"].address, appoint=False)
        ),
        "cannot be appointed or removed as delegate",
    ),
    "emergency-under-a-none-policy": (
        lambda mv, w: mv.take_emergency_access(w["provider"], w["patient"].address, "ER"),
        "does not let",
    ),
    "request-by-a-non-researcher": (
        lambda mv, w: mv.request_access(w["doctor"], w["patient"].address, LABS, Purpose.HRESCH, DAY, "s"),
        "is not an accredited researcher",
    ),
}


@pytest.mark.parametrize(("call", "words"), list(ROWS.values()), ids=list(ROWS))
def test_a_change_the_chain_would_refuse_is_refused_first(
    mv: Medvault,
    wallets: dict[str, Wallet],
    w3: Web3,
    ipfs: IpfsClient,
    home: Path,
    call: Callable[[Medvault, dict[str, Wallet]], object],
    words: str,
) -> None:
    add(mv, wallets["provider"], wallets["patient"], LAB, Category.LABORATORY)
    mv.set_delegate(wallets["patient"], wallets["stranger"].address, terms=DelegateTerms(LABS, 7 * DAY))
    with unchanged(w3, ipfs, home), pytest.raises(ContractError) as refused:
        call(mv, wallets)
    assert words in str(refused.value)
    assert refused.value.name not in str(refused.value)
