"""The off-chain formats (formats/): envelope, key bundle and record hash, without a node."""

from __future__ import annotations

import base64
import json

import pytest
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from medvault.crypto import EncryptionKeyPair, KeySuite, RecordContext, new_record_key, open_share, unwrap_key
from medvault.errors import IntegrityError
from medvault.escrow import combine_key
from medvault.formats import envelope
from medvault.formats.keybundle import FORMAT, Escrow, EscrowShare, KeyBundle, Wrap, escrow_key, wrap_for
from medvault.formats.recordhash import GENESIS, record_hash, record_hash_of_event

PATIENT = to_checksum_address("0x" + "1a" * 20)
READER = to_checksum_address("0x" + "2b" * 20)
REGISTRY = to_checksum_address("0x" + "3c" * 20)
KEEPERS = [to_checksum_address("0x" + f"{i:02x}" * 20) for i in (0x41, 0x42, 0x43)]
AUTHOR = to_checksum_address("0x" + "4d" * 20)
CONTEXT = RecordContext(31337, REGISTRY, PATIENT, AUTHOR, 2)


# -- envelope ---------------------------------------------------------------------------------


def test_envelope_round_trips_any_body() -> None:
    body = b"line one\nline two\n\x00\xff"
    packed = envelope.pack(body, "application/pdf", "scan.pdf")

    assert packed == b'{"contentType":"application/pdf","name":"scan.pdf"}\n' + body
    assert envelope.unpack(packed) == envelope.Envelope("application/pdf", "scan.pdf", body)


def test_envelope_name_defaults_to_empty() -> None:
    assert envelope.unpack(envelope.pack(b"{}", "application/fhir+json")).name == ""


@pytest.mark.parametrize(
    "plaintext",
    [b"", b"no header line", b"not json\nbody", b"[1]\nbody", b'{"name":"x"}\nbody', b'{"contentType":null}\nb'],
    ids=["empty", "no newline", "not json", "not an object", "no contentType", "contentType not a string"],
)
def test_envelope_without_a_header_is_an_integrity_error(plaintext: bytes) -> None:
    with pytest.raises(IntegrityError, match="no medvault header"):
        envelope.unpack(plaintext)


# -- key bundle -------------------------------------------------------------------------------


def bundle(escrow: Escrow | None = None) -> KeyBundle:
    wraps = (Wrap(AUTHOR, 2, READER, b"wrap for reader"), Wrap(AUTHOR, 2, PATIENT, b"wrap for patient"),
             Wrap(AUTHOR, 0, READER, b"older record"), Wrap(AUTHOR, 2, READER, b"second wrap"),
             Wrap(PATIENT, 2, READER, b"the patient's own record 2"))  # fmt: skip
    return KeyBundle(31337, REGISTRY, PATIENT, "X25519", wraps, escrow)


def test_key_bundle_round_trips() -> None:
    escrow = Escrow(2, tuple(EscrowShare(k, x, bytes([x]) * 8) for x, k in enumerate(KEEPERS, start=1)))
    for original in (bundle(), bundle(escrow)):
        data = original.to_bytes()
        assert KeyBundle.parse(data, patient=PATIENT) == original
        assert b" " not in data


def test_key_bundle_bytes_are_compact_ordered_json() -> None:
    data = bundle(Escrow(1, (EscrowShare(KEEPERS[0], 1, b"s"),))).to_bytes()
    doc = json.loads(data)

    assert list(doc) == ["format", "chainId", "registry", "patient", "suite", "wraps", "escrow"]
    assert doc["format"] == FORMAT == "medvault/key-bundle/v2"
    wrap = base64.b64encode(b"wrap for reader").decode()
    assert doc["wraps"][0] == {"author": AUTHOR, "seq": 2, "reader": READER, "wrap": wrap}
    assert doc["escrow"] == {"threshold": 1, "shares": [{"keeper": KEEPERS[0], "x": 1, "wrap": "cw=="}]}
    assert "escrow" not in json.loads(bundle().to_bytes())


def test_wraps_for_lists_a_readers_wraps_of_one_record_in_order() -> None:
    parsed = KeyBundle.parse(bundle().to_bytes(), patient=PATIENT)

    assert parsed.wraps_for(READER, AUTHOR, 2) == [b"wrap for reader", b"second wrap"]
    assert parsed.wraps_for(READER, AUTHOR, 0) == [b"older record"]
    assert parsed.wraps_for(PATIENT, AUTHOR, 0) == []
    # A record is named by its author and the author's seq: another author's record 2 is another record.
    assert parsed.wraps_for(READER, PATIENT, 2) == [b"the patient's own record 2"]


def test_readers_and_patients_are_found_in_any_case() -> None:
    parsed = KeyBundle.parse(bundle().to_bytes(), patient=PATIENT.lower())

    assert parsed.wraps_for(READER.lower(), AUTHOR.lower(), 2) == [b"wrap for reader", b"second wrap"]


def test_share_of_finds_a_keeper_in_any_case() -> None:
    escrow = Escrow(2, tuple(EscrowShare(k, x, b"s") for x, k in enumerate(KEEPERS, start=1)))
    share = escrow.share_of(KEEPERS[1].lower())
    assert share is not None
    assert share.x == 2
    assert escrow.share_of(READER) is None


def mutated(**changes: object) -> bytes:
    doc = json.loads(bundle().to_bytes())
    doc.update(changes)
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("data", "patient"),
    [
        (bundle().to_bytes(), READER),
        (mutated(format="medvault/key-bundle/v1"), PATIENT),
        (mutated(wraps=None), PATIENT),
        (mutated(chainId="0x7a69"), PATIENT),
        (mutated(suite=None), PATIENT),
        (b"[]", PATIENT),
        (b"\xff not json", PATIENT),
    ],
    ids=["another patient", "wrong format", "wraps not a list", "chain id not a number", "no suite",
         "not an object", "not json"],
)  # fmt: skip
def test_a_bundle_that_is_not_for_this_patient_or_malformed_is_an_integrity_error(data: bytes, patient: str) -> None:
    with pytest.raises(IntegrityError, match="is not a medvault key bundle for"):
        KeyBundle.parse(data, patient=patient, name="bundle bafy")


@pytest.mark.parametrize(
    "bad",
    [
        {"author": AUTHOR, "seq": 2, "reader": READER, "wrap": "***"},
        {"author": AUTHOR, "seq": 2, "reader": READER, "wrap": 5},
        {"author": AUTHOR, "seq": "2", "reader": READER, "wrap": ""},
        {"author": AUTHOR, "seq": 2.0, "reader": READER, "wrap": ""},
        {"author": AUTHOR, "seq": True, "reader": READER, "wrap": ""},
        {"author": AUTHOR, "reader": READER, "wrap": ""},
        {"seq": 2, "reader": READER, "wrap": ""},
        {"author": 5, "seq": 2, "reader": READER, "wrap": ""},
        {"index": 2, "reader": READER, "wrap": ""},
        "not an object",
    ],
    ids=["wrap not base64", "wrap not a string", "seq a string", "seq a float", "seq a bool", "no seq",
         "no author", "author not a string", "a v1 wrap", "not an object"],
)  # fmt: skip
def test_a_malformed_wrap_is_left_out_and_the_others_still_read(bad: object) -> None:
    doc = json.loads(bundle().to_bytes())
    doc["wraps"].insert(0, bad)
    parsed = KeyBundle.parse(json.dumps(doc).encode(), patient=PATIENT)

    assert parsed.wraps == bundle().wraps
    assert parsed.wraps_for(READER, AUTHOR, 2) == [b"wrap for reader", b"second wrap"]


def test_an_unusable_escrow_is_none_and_a_malformed_share_is_left_out() -> None:
    for escrow in ({}, {"threshold": 0, "shares": []}, {"threshold": "2"}, [1, 2]):
        assert KeyBundle.parse(mutated(escrow=escrow), patient=PATIENT).escrow is None
    good = {"keeper": KEEPERS[0], "x": 1, "wrap": "cw=="}
    shares = [good, {"keeper": KEEPERS[1], "x": "2", "wrap": "cw=="}, {"keeper": KEEPERS[2], "x": 3, "wrap": "*"}]
    parsed = KeyBundle.parse(mutated(escrow={"threshold": 1, "shares": shares}), patient=PATIENT)
    assert parsed.escrow == Escrow(1, (EscrowShare(KEEPERS[0], 1, b"s"),))


def test_wrap_for_and_escrow_key_open_with_their_contexts() -> None:
    key = new_record_key()
    reader = EncryptionKeyPair.derive(keccak(text="formats test reader"))
    keepers = {k: EncryptionKeyPair.derive(keccak(text=k)) for k in KEEPERS}

    wrap = wrap_for(CONTEXT, key, READER, reader.public_bytes)
    assert (wrap.author, wrap.seq) == (CONTEXT.author, CONTEXT.seq)
    assert wrap.reader == READER
    assert unwrap_key(wrap.wrap, reader, CONTEXT, READER) == key

    escrow = escrow_key(CONTEXT, key, 2, {k: pair.public_bytes for k, pair in keepers.items()})
    assert escrow.threshold == 2
    assert [(s.keeper, s.x) for s in escrow.shares] == [(k, x) for x, k in enumerate(KEEPERS, start=1)]
    shares = [(s.x, open_share(s.wrap, keepers[s.keeper], CONTEXT.escrow_info(s.keeper), "share"))
              for s in escrow.shares[1:]]  # fmt: skip
    assert combine_key(shares) == key


def test_a_bundle_records_its_suite_by_name() -> None:
    assert KeyBundle.parse(bundle().to_bytes(), patient=PATIENT).suite == KeySuite.X25519.name


# -- record hash ------------------------------------------------------------------------------


def test_record_hash_is_keccak_of_ten_abi_words() -> None:
    previous, content = b"\x01" * 32, b"\x02" * 32
    cid, keys_cid = b"\x01\x55\x12\x20" + b"\x03" * 32, b"\x01\x55\x12\x20" + b"\x04" * 32
    author = to_checksum_address("0x" + "5e" * 20)
    preimage = (
        previous
        + bytes(12) + bytes.fromhex("1a" * 20)
        + (7).to_bytes(32)
        + bytes(12) + bytes.fromhex("5e" * 20)
        + (4).to_bytes(32)
        + (3).to_bytes(32)
        + (1_700_000_000).to_bytes(32)
        + content
        + keccak(cid)
        + keccak(keys_cid)
    )  # fmt: skip
    assert len(preimage) == 10 * 32

    assert record_hash(previous, PATIENT, 7, author, 4, 3, 1_700_000_000, content, cid, keys_cid) == keccak(preimage)


def test_record_hash_of_an_event_matches_its_fields() -> None:
    args = {"index": 0, "author": PATIENT, "seq": 2, "category": 1, "timestamp": 5, "contentHash": b"\x09" * 32,
            "cid": b"\x01\x02", "keysCid": b"\x03"}  # fmt: skip
    expected = record_hash(GENESIS, PATIENT, 0, PATIENT, 2, 1, 5, b"\x09" * 32, b"\x01\x02", b"\x03")
    assert record_hash_of_event(GENESIS, PATIENT, args) == expected
    assert bytes(32) == GENESIS
