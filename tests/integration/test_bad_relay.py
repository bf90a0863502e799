"""A relayer handed a hostile signed consent document: it refuses in words and leaves the
chain, the Kubo pins and the home as they were, whatever the document names.

A document's key bundle CID is the signer's word only once its signature is the patient's: a
forged one naming an object the relayer's node holds (a record) must not unpin it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from data import DAY, LAB, LABS
from eth_account import Account
from helpers import add
from unchanged import unchanged

from medvault.client.consent_sig import SignedConsent
from medvault.errors import ConfigurationError
from medvault.model import GrantTerms, Purpose

if TYPE_CHECKING:
    from pathlib import Path

    from web3 import Web3

    from medvault.accounts import Wallet
    from medvault.client import Medvault
    from medvault.ipfs import IpfsClient

pytestmark = pytest.mark.integration


def _grant_naming(mv: Medvault, patient: Wallet, doctor: Wallet, keys_cid: bytes) -> dict[str, Any]:
    now = mv.now()
    change = mv.grant_change(None, patient.address, doctor.address, GrantTerms(LABS, Purpose.TREAT, now, now + DAY))
    document = mv.unsigned(patient.address, change)
    document["message"].update(keysCid="0x" + keys_cid.hex())
    return document


@pytest.mark.parametrize("part", ["record", "key bundle"])
def test_a_forged_relay_naming_a_record_unpins_nothing(
    mv: Medvault, w3: Web3, ipfs: IpfsClient, home: Path, provider: Wallet, patient: Wallet, doctor: Wallet, part: str
) -> None:
    pointer = add(mv, provider, patient)
    target = pointer.raw_cid if part == "record" else pointer.raw_keys_cid
    document = _grant_naming(mv, patient, doctor, target)
    signature = Account.sign_typed_data(Account.create().key, full_message=document).signature
    forged = json.dumps({"typedData": document, "signature": "0x" + bytes(signature).hex()})

    with unchanged(w3, ipfs, home), pytest.raises(ConfigurationError, match="who is not the patient nor"):
        mv.relay(doctor, SignedConsent.from_json(forged))

    assert mv.read_record(patient, patient.address, pointer.index).data == LAB
