"""Relays never destroy data: a send that fails unpins a key bundle only when nothing on chain
shares it, so a replayed or front-run relay cannot take the keys of a live grant away."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from data import DAY, LAB, LABS
from helpers import add

from medvault.cids import cid_from_bytes
from medvault.errors import ConfigurationError
from medvault.model import GrantTerms, Purpose

if TYPE_CHECKING:
    from medvault.accounts import Wallet
    from medvault.client import Medvault

pytestmark = pytest.mark.integration


def test_a_replayed_relay_leaves_the_live_grants_key_bundle_pinned(
    mv: Medvault, provider: Wallet, patient: Wallet, doctor: Wallet, stranger: Wallet
) -> None:
    pointer = add(mv, provider, patient)
    now = mv.now()
    change = mv.grant_change(patient, patient.address, doctor.address, GrantTerms(LABS, Purpose.TREAT, now, now + DAY))
    signed = mv.sign(patient, change)
    mv.relay(stranger, signed)

    with pytest.raises(ConfigurationError, match="it was relayed already"):
        mv.relay(stranger, signed)  # the same signature again: refused before sending

    assert mv.ipfs.is_pinned(cid_from_bytes(change.message["keysCid"]))
    assert mv.read_record(doctor, patient.address, pointer.index).data == LAB


def test_a_failed_relay_that_nothing_references_is_undone(
    mv: Medvault, provider: Wallet, patient: Wallet, doctor: Wallet, stranger: Wallet
) -> None:
    add(mv, provider, patient)
    now = mv.now()
    terms = GrantTerms(LABS, Purpose.TREAT, now, now + DAY)
    signed = mv.sign(patient, mv.grant_change(patient, patient.address, doctor.address, terms))
    mv.grant(patient, patient.address, doctor.address, terms)  # moves the relationship's nonce: the signature is void

    with pytest.raises(ConfigurationError, match="it was relayed already or voided"):
        mv.relay(stranger, signed)

    assert not mv.ipfs.is_pinned(cid_from_bytes(signed.change.message["keysCid"]))
