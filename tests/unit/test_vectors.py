"""The committed vectors in docs/vectors, checked both ways against this implementation.

Encoding: rebuilding the vectors (``medvault.dev.vectors``) gives exactly the committed files,
so a changed format (key order in a bundle, the associated data, the magic, a typehash) fails.
Decoding: the implementation opens, parses and verifies the committed bytes. Where it is cheap,
an independent oracle (a hand-written ABI layout, the Solidity typehash strings, a small RFC 9180
opener, a GF(2^128) evaluation, a dag-pb encoder) checks the bytes FORMATS.md describes.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_keys import keys
from eth_utils.crypto import keccak

from medvault.accounts import TEST_SCRYPT_N, Keystore
from medvault.cids import cid_from_bytes, cid_to_bytes, compute_cid
from medvault.client.consent_sig import SignedConsent
from medvault.crypto import (
    EncryptionKeyPair,
    KeySuite,
    RecordContext,
    decrypt_record,
    open_share,
    unwrap_key,
)
from medvault.dev import vectors
from medvault.dev.vectors import FILES, build, load, reference_open, reference_seal
from medvault.errors import DecryptionError, IntegrityError, KeystoreError
from medvault.escrow import combine_key
from medvault.formats import envelope
from medvault.formats.keybundle import KeyBundle
from medvault.formats.keyfile import ACCOUNT_KEY, open_key_file
from medvault.formats.recordhash import record_hash
from medvault.keeper.protocol import REASONS, verify_key_request

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "docs" / "vectors"
COMMITTED = load(FOLDER)


def b(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("0x"))


def word(value: int | str | bytes) -> bytes:
    """One ABI word: an integer, an address (left-padded) or 32 bytes."""
    if isinstance(value, int):
        return value.to_bytes(32)
    if isinstance(value, str):
        return b(value).rjust(32, b"\0")
    return value


def context_of(doc: dict[str, Any]) -> RecordContext:
    return RecordContext(doc["chainId"], doc["registry"], doc["patient"], doc["author"], doc["seq"])


# -- encoding: a rebuild gives the committed bytes --------------------------------------------


@pytest.fixture(scope="module")
def rebuilt() -> dict[str, dict[str, Any]]:
    return build(COMMITTED)


@pytest.mark.parametrize("name", FILES)
def test_rebuilding_gives_the_committed_file(rebuilt: dict[str, dict[str, Any]], name: str) -> None:
    assert name in COMMITTED, f"docs/vectors/{name}.json is missing: run python -m medvault.dev.vectors"
    assert vectors.dumps(rebuilt[name]) == (FOLDER / f"{name}.json").read_text(), (
        f"docs/vectors/{name}.json no longer matches the implementation: a format changed"
    )


# -- record ciphertext ------------------------------------------------------------------------


def test_record_associated_data_is_the_documented_abi_layout() -> None:
    for case in COMMITTED["record"]["cases"]:
        c = case["context"]
        label = b"medvault/record/v2"
        expected = b"".join(
            [word(0xC0), word(c["chainId"]), word(c["registry"]), word(c["patient"]), word(c["author"]),
             word(c["seq"]), word(len(label)), label.ljust(32, b"\0")]
        )  # fmt: skip
        assert b(case["associatedData"]) == expected == context_of(c).associated_data()


def test_record_ciphertexts_open_to_their_plaintext() -> None:
    for case in COMMITTED["record"]["cases"]:
        blob = b(case["ciphertext"])
        assert blob[:4] == b"MVR1"
        assert blob[4:16] == b(case["nonce"])
        assert len(blob) == 4 + 12 + len(b(case["plaintext"])) + 16
        assert decrypt_record(blob, b(case["key"]), context_of(case["context"])) == b(case["plaintext"])


def test_record_ciphertexts_that_must_fail() -> None:
    errors = {"DecryptionError": DecryptionError, "IntegrityError": IntegrityError}
    for case in COMMITTED["record"]["mustFail"]:
        with pytest.raises(errors[case["error"]]):
            decrypt_record(b(case["ciphertext"]), b(case["key"]), context_of(case["context"]))


# -- envelope ---------------------------------------------------------------------------------


def test_envelopes_unpack_to_their_fields() -> None:
    doc = COMMITTED["envelope"]
    for case in doc["cases"] + doc["decodeOnly"]:
        unpacked = envelope.unpack(b(case["plaintext"]))
        assert (unpacked.content_type, unpacked.name, unpacked.body) == (
            case["contentType"],
            case["name"],
            b(case["body"]),
        )


def test_envelope_header_is_compact_ascii_json_in_key_order() -> None:
    for case in COMMITTED["envelope"]["cases"]:
        header, _, _ = b(case["plaintext"]).partition(b"\n")
        expected = json.dumps({"contentType": case["contentType"], "name": case["name"]}, separators=(",", ":"))
        assert header == expected.encode("ascii")


def test_envelopes_that_must_fail() -> None:
    for case in COMMITTED["envelope"]["mustFail"]:
        with pytest.raises(IntegrityError):
            envelope.unpack(b(case["plaintext"]))


# -- key bundle -------------------------------------------------------------------------------


def test_key_bundles_parse_and_serialise_to_the_same_bytes() -> None:
    for case in COMMITTED["keybundle"]["cases"]:
        data = case["json"].encode()
        bundle = KeyBundle.parse(data, patient=case["patient"])
        doc = json.loads(data)
        assert list(doc) == ["format", "chainId", "registry", "patient", "suite", "wraps"] + (
            ["escrow"] if "escrow" in doc else []
        )
        assert bundle.to_bytes() == data
        assert [(w.author, w.seq, w.reader, base64.b64encode(w.wrap).decode()) for w in bundle.wraps] == [
            (w["author"], w["seq"], w["reader"], w["wrap"]) for w in doc["wraps"]
        ]
        assert all(list(w) == ["author", "seq", "reader", "wrap"] for w in doc["wraps"])
        if bundle.escrow is not None:
            assert bundle.escrow.threshold == doc["escrow"]["threshold"]
            assert [list(s) for s in map(dict.keys, doc["escrow"]["shares"])] == [["keeper", "x", "wrap"]] * 3


def test_the_readers_wrap_in_a_bundle_opens_with_the_readers_key() -> None:
    hpke = COMMITTED["hpke"]
    bundle = KeyBundle.parse(COMMITTED["keybundle"]["cases"][0]["json"].encode(), patient=hpke["context"]["patient"])
    reader = hpke["recipients"]["reader/X25519"]
    pair = EncryptionKeyPair.derive(b(reader["derivationSecret"]), KeySuite.X25519)
    context = context_of(hpke["context"])
    (wrap,) = bundle.wraps_for(vectors.READER, context.author, context.seq)
    assert unwrap_key(wrap, pair, context, vectors.READER) == vectors.RECORD_KEY


def test_key_bundles_that_must_fail() -> None:
    for case in COMMITTED["keybundle"]["mustFail"]:
        with pytest.raises(IntegrityError):
            KeyBundle.parse(case["json"].encode(), patient=case["patient"])


def test_key_bundles_read_leniently_item_by_item() -> None:
    cases = COMMITTED["keybundle"]["lenient"]
    assert {c["why"].split(":")[0] for c in cases} >= {"wrap not base64", "seq not an integer"}
    for case in cases:
        bundle = KeyBundle.parse(case["json"].encode(), patient=case["patient"])
        expected = [(w["author"], w["seq"], w["reader"], base64.b64decode(w["wrap"])) for w in case["wraps"]]
        assert [(w.author, w.seq, w.reader, w.wrap) for w in bundle.wraps] == expected, case["why"]


# -- HPKE -------------------------------------------------------------------------------------


def test_hpke_infos_are_the_documented_abi_encodings() -> None:
    hpke = COMMITTED["hpke"]
    context, aad = context_of(hpke["context"]), b(hpke["associatedData"])

    def dynamic(data: bytes) -> bytes:
        return word(len(data)) + data.ljust(-(-len(data) // 32) * 32, b"\0")

    for case in hpke["cases"]:
        if case["kind"] == "wrap":
            expected = word(64) + word(case["reader"]) + dynamic(aad)
        elif case["kind"] == "escrow":
            head = word(96) + word(96 + len(dynamic(aad)))
            expected = head + word(case["keeper"]) + dynamic(aad) + dynamic(b"medvault/escrow/v1")
        else:
            head = word(160) + word(160 + len(dynamic(aad)))
            expected = (head + word(case["reader"]) + word(case["keeper"]) + word(case["x"]) + dynamic(aad)
                        + dynamic(b"medvault/release/v1"))  # fmt: skip
        assert b(case["info"]) == expected, case["name"]
    assert context.wrap_info(vectors.READER) == b(hpke["cases"][0]["info"])


def test_hpke_recipient_keys_come_from_their_raw_parts() -> None:
    for r in COMMITTED["hpke"]["recipients"].values():
        suite = KeySuite[r["suite"]]
        x_public = x25519.X25519PrivateKey.from_private_bytes(b(r["x25519PrivateKey"])).public_key().public_bytes_raw()
        m_public = b""
        if suite is KeySuite.MLKEM768_X25519:
            m_public = mlkem.MLKEM768PrivateKey.from_seed_bytes(b(r["mlkemSeed"])).public_key().public_bytes_raw()
        expected = bytes([suite]) + m_public + x_public
        assert b(r["publicKey"]) == expected == EncryptionKeyPair.derive(b(r["derivationSecret"]), suite).public_bytes


def test_hpke_seals_open_with_the_library_and_with_a_plain_rfc9180_opener() -> None:
    hpke = COMMITTED["hpke"]
    context = context_of(hpke["context"])
    for case in hpke["cases"]:
        r, suite = hpke["recipients"][case["recipient"]], KeySuite[case["suite"]]
        sealed, info, plaintext = b(case["sealed"]), b(case["info"]), b(case["plaintext"])
        pair = EncryptionKeyPair.derive(b(r["derivationSecret"]), suite)
        if case["kind"] == "wrap":
            assert unwrap_key(sealed, pair, context, case["reader"]) == plaintext
        assert open_share(sealed, pair, info, case["name"]) == plaintext
        mlkem_seed = b(r["mlkemSeed"]) if r["mlkemSeed"] else None
        assert reference_open(suite, sealed, b(r["x25519PrivateKey"]), mlkem_seed, info) == plaintext
        with pytest.raises(DecryptionError):
            open_share(sealed, pair, info + b"\0", case["name"])


def test_fixed_ephemeral_seals_are_reproducible_and_open_with_the_library() -> None:
    hpke = COMMITTED["hpke"]
    for case in hpke["fixedEphemeral"]:
        r = hpke["recipients"][case["recipient"]]
        public = b(r["publicKey"])
        sealed = reference_seal(b(case["plaintext"]), public[1:], b(case["info"]), b(case["ephemeralPrivateKey"]))
        assert sealed == b(case["sealed"])
        pair = EncryptionKeyPair.derive(b(r["derivationSecret"]), KeySuite.X25519)
        assert open_share(sealed, pair, b(case["info"]), case["name"]) == b(case["plaintext"])


# -- Shamir -----------------------------------------------------------------------------------

IRREDUCIBLE = (1 << 128) | 0x87


def gf_mul(a: int, c: int) -> int:
    product = 0
    while c:
        if c & 1:
            product ^= a
        a, c = a << 1, c >> 1
        if a >> 128:
            a ^= IRREDUCIBLE
    return product


def evaluate(coefficients_high_first: list[bytes], secret: bytes, x: int) -> bytes:
    y = 0
    for c in [*coefficients_high_first, secret]:
        y = gf_mul(y, x) ^ int.from_bytes(c)
    return y.to_bytes(16)


def test_shamir_shares_are_the_documented_polynomials() -> None:
    for case in COMMITTED["shamir"]["cases"]:
        key = b(case["key"])
        low, high = [b(c) for c in case["coefficientsLow"]], [b(c) for c in case["coefficientsHigh"]]
        for share in case["shares"]:
            expected = evaluate(low, key[:16], share["x"]) + evaluate(high, key[16:], share["x"])
            assert b(share["share"]) == expected


def test_any_threshold_of_shamir_shares_rebuilds_the_key() -> None:
    for case in COMMITTED["shamir"]["cases"]:
        shares = [(s["x"], b(s["share"])) for s in case["shares"]]
        for subset in itertools.combinations(shares, case["threshold"]):
            assert combine_key(list(subset)) == b(case["key"])


# -- record hash ------------------------------------------------------------------------------


def test_record_hashes_chain_and_match_the_abi_preimage() -> None:
    cases = COMMITTED["recordhash"]["cases"]
    assert b(cases[0]["previous"]) == bytes(32)
    assert cases[1]["previous"] == cases[0]["recordHash"]
    for c in cases:
        preimage = b"".join(
            [word(b(c["previous"])), word(c["patient"]), word(c["index"]), word(c["author"]), word(c["seq"]),
             word(c["category"]), word(c["timestamp"]), word(b(c["contentHash"])), keccak(b(c["cid"])),
             keccak(b(c["keysCid"]))]
        )  # fmt: skip
        assert b(c["recordHash"]) == keccak(preimage)
        assert b(c["recordHash"]) == record_hash(
            b(c["previous"]), c["patient"], c["index"], c["author"], c["seq"], c["category"], c["timestamp"],
            b(c["contentHash"]), b(c["cid"]), b(c["keysCid"]),
        )  # fmt: skip


# -- key derivation ---------------------------------------------------------------------------


def test_encryption_keys_derive_from_the_signature() -> None:
    doc = COMMITTED["keyderivation"]
    key = b(doc["account"]["privateKey"])
    for case in doc["cases"]:
        suite, epoch = KeySuite[case["suite"]], case["epoch"]
        signature = b(case["signature"])
        assert bytes(Account.sign_typed_data(key, full_message=case["typedData"]).signature) == signature
        assert (
            Account.recover_message(encode_typed_data(full_message=case["typedData"]), signature=signature)
            == (doc["account"]["address"])
        )
        assert b(case["secret"]) == keccak(signature)
        info = f"medvault/encryption-key/{suite.name}/epoch-{epoch}".encode()
        seed = HKDF(hashes.SHA256(), length=96, salt=b"medvault", info=info).derive(keccak(signature))
        assert case["hkdfInfo"] == info.decode()
        assert b(case["seed"]) == seed
        assert EncryptionKeyPair.legacy_from_signature(signature, suite, epoch).public_bytes == b(case["publicKey"])


def test_equivalent_signature_spellings_derive_the_same_key() -> None:
    same = COMMITTED["keyderivation"]["equivalentSignatures"]
    for signature in same["signatures"]:
        pair = EncryptionKeyPair.legacy_from_signature(b(signature), KeySuite[same["suite"]], same["epoch"])
        assert pair.public_bytes == b(same["publicKey"])


# -- key file ---------------------------------------------------------------------------------


@pytest.mark.parametrize("index", [0, 1, 2])
def test_key_file_vector_opens_and_reseals_byte_for_byte(index: int) -> None:
    doc = COMMITTED["keyfile"]
    case = doc["cases"][index]
    data, kdf = b(case["file"]), case["kdf"]
    secret: str | bytes = doc["passphrase"] if kdf["name"] == "scrypt" else b(kdf["secret"])

    header, sealer, entries = open_key_file(data, secret, "the vector")

    assert header.address == b(case["address"])
    assert header.count == len(case["entries"])
    assert data[:63] == b(case["header"])
    assert header.check == b(case["check"])
    assert [(e.kind, e.epoch, e.flags, e.secret) for e in entries] == [
        (c["kind"], c["epoch"], c["flags"], b(c["secret"])) for c in case["entries"]
    ]
    for entry, c in zip(entries, case["entries"], strict=True):
        if entry.kind != ACCOUNT_KEY:
            pair = EncryptionKeyPair.from_private_bytes(entry.secret, KeySuite(entry.kind))
            assert pair.public_bytes == b(c["publicKey"])
    assert sealer.seal(header.address, entries, [b(c["nonce"]) for c in case["entries"]]) == data
    # Independently of the implementation: entry 0 with AES-256-GCM under the documented key and aad.
    first, meta_end = case["entries"][0], 63 + 6
    aad = b"medvault/keyfile/v1" + data[:63] + (0).to_bytes(2) + data[63:meta_end]
    end = meta_end + 12 + len(b(first["secret"])) + 16
    assert AESGCM(b(case["aesKey"])).decrypt(b(first["nonce"]), data[meta_end + 12 : end], aad) == b(first["secret"])


def test_key_file_vectors_that_must_fail_are_refused() -> None:
    doc = COMMITTED["keyfile"]
    for case in doc["mustFail"]:
        expected = KeystoreError if "passphrase" in case["why"] else IntegrityError
        with pytest.raises(expected):
            open_key_file(b(case["file"]), case["passphrase"], case["why"])


# -- EIP-712 ----------------------------------------------------------------------------------


def test_equivalent_signature_spellings_pack_the_same_authorization() -> None:
    same, case = COMMITTED["eip712"]["equivalentSignatures"], COMMITTED["eip712"]["cases"][0]
    for signature in same["signatures"]:
        *_, r, vs = SignedConsent(case["typedData"], signature).authorization()
        assert (r, vs) == (b(same["r"]), b(same["vs"]))


def solidity_type_strings() -> dict[str, str]:
    source = (ROOT / "contracts" / "ConsentManager.sol").read_text()
    strings = re.findall(r'keccak256\(\s*"(\w+\([^"]*\))"\s*\)', source)
    return {s.split("(")[0]: s for s in strings}


def struct_hash(document: dict[str, Any], primary: str) -> bytes:
    fields = document["types"][primary]
    type_string = primary + "(" + ",".join(f"{f['type']} {f['name']}" for f in fields) + ")"
    words = [keccak(text=type_string)]
    for f in fields:
        value = document["message"][f["name"]] if primary != "EIP712Domain" else document["domain"][f["name"]]
        if f["type"] == "bytes":
            words.append(keccak(b(value)))
        elif f["type"] == "string":
            words.append(keccak(text=value))
        elif f["type"] == "bytes32":
            words.append(b(value))
        elif f["type"].startswith("uint") and isinstance(value, str):  # beyond JavaScript's exact integers
            words.append(word(int(value)))
        else:
            words.append(word(value))
    return keccak(b"".join(words))


def test_consent_type_strings_are_the_contracts_typehashes() -> None:
    solidity = solidity_type_strings()
    cases = COMMITTED["eip712"]["cases"]
    assert {c["primaryType"] for c in cases} == set(solidity)
    for case in cases:
        assert case["typeString"] == solidity[case["primaryType"]]
        assert b(case["typeHash"]) == keccak(text=case["typeString"])


def test_consent_digests_and_signatures() -> None:
    for case in COMMITTED["eip712"]["cases"]:
        document = case["typedData"]
        assert document["domain"]["name"] == "medvault ConsentManager"
        assert document["domain"]["version"] == "1"
        assert b(case["structHash"]) == struct_hash(document, case["primaryType"])
        assert b(case["domainSeparator"]) == struct_hash(document, "EIP712Domain")
        digest = keccak(b"\x19\x01" + b(case["domainSeparator"]) + b(case["structHash"]))
        assert b(case["digest"]) == digest
        signature = b(case["signature"])
        signer = keys.Signature(signature[:64] + bytes([signature[64] - 27])).recover_public_key_from_msg_hash(digest)
        assert signer.to_checksum_address() == case["signer"]
        # EIP-2098: vs = yParity << 255 | s, r unchanged.
        auth = case["authorization"]
        assert b(auth["r"]) == signature[:32]
        assert int.from_bytes(b(auth["vs"])) == int.from_bytes(signature[32:64]) | (signature[64] - 27) << 255
        signed = SignedConsent.from_json(case["signedJson"])
        assert signed.typed_data == document
        assert signed.signature == case["signature"]
        nonce, deadline, chain_id, contract, r, vs = signed.authorization()
        assert (nonce, deadline, chain_id, contract, "0x" + r.hex(), "0x" + vs.hex()) == (
            auth["nonce"], auth["deadline"], auth["chainId"], auth["verifyingContract"], auth["r"], auth["vs"],
        )  # fmt: skip


def test_keeper_request_verifies_and_its_release_id_is_the_digest() -> None:
    doc = COMMITTED["keeper"]
    body = doc["requestBody"]
    domain = body["typedData"]["domain"]
    assert b(doc["typeHash"]) == keccak(text=doc["typeString"])
    assert b(doc["structHash"]) == struct_hash(body["typedData"], "KeyRequest")
    assert b(doc["domainSeparator"]) == struct_hash(body["typedData"], "EIP712Domain")
    request, release_id = verify_key_request(body, domain["chainId"], domain["verifyingContract"])
    assert release_id == keccak(b"\x19\x01" + b(doc["domainSeparator"]) + b(doc["structHash"])) == b(doc["releaseId"])
    assert request.reader == doc["reader"]["address"]
    assert doc["reasons"] == REASONS


def test_keeper_response_wrap_is_the_release_seal() -> None:
    hpke, response = COMMITTED["hpke"], COMMITTED["keeper"]["responseBody"]
    release = next(c for c in hpke["cases"] if c["name"] == "release/X25519")
    assert base64.b64decode(response["wrap"], validate=True) == b(release["sealed"])
    assert (response["keeper"], response["x"]) == (release["keeper"], release["x"])


# -- CIDs -------------------------------------------------------------------------------------


def varint(n: int) -> bytes:
    out = b""
    while n >= 0x80:
        out, n = out + bytes([n & 0x7F | 0x80]), n >> 7
    return out + bytes([n])


def pb(number: int, payload: bytes | int) -> bytes:
    """One protobuf field: length-delimited for bytes, varint for int."""
    if isinstance(payload, int):
        return varint(number << 3) + varint(payload)
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def independent_cid(data: bytes) -> bytes:
    """The binary CID FORMATS.md describes: a raw leaf, or one dag-pb UnixFS File node over raw leaves."""
    chunks = [data[i : i + 262144] for i in range(0, len(data), 262144)] or [b""]
    leaves = [bytes([0x01, 0x55, 0x12, 0x20]) + hashlib.sha256(c).digest() for c in chunks]
    if len(chunks) == 1:
        return leaves[0]
    assert len(chunks) <= 174, "one level only in this oracle"
    links = b"".join(pb(2, pb(1, leaf) + pb(2, b"") + pb(3, len(c))) for leaf, c in zip(leaves, chunks, strict=True))
    unixfs = pb(1, 2) + pb(3, len(data)) + b"".join(pb(4, len(c)) for c in chunks)
    return bytes([0x01, 0x70, 0x12, 0x20]) + hashlib.sha256(links + pb(1, unixfs)).digest()


def test_cids_of_the_vectors() -> None:
    for case in COMMITTED["cid"]["cases"]:
        data = b(case["bytes"]) if "bytes" in case else bytes(i % 251 for i in range(case["length"]))
        binary = b(case["binary"])
        assert compute_cid(data) == case["cid"]
        assert cid_to_bytes(case["cid"]) == binary == independent_cid(data)
        assert cid_from_bytes(binary) == case["cid"]
        assert case["cid"] == "b" + base64.b32encode(binary).decode().lower().rstrip("=")


# -- keystore ---------------------------------------------------------------------------------


def test_keystore_vector_unlocks(tmp_path: Path) -> None:
    doc = COMMITTED["keystore"]
    assert doc["keystore"]["crypto"]["kdf"] == "scrypt"
    assert doc["keystore"]["version"] == 3
    assert bytes(Account.decrypt(doc["keystore"], doc["passphrase"])) == b(doc["privateKey"])
    (tmp_path / "keystores").mkdir()
    (tmp_path / "keystores" / "vector.json").write_text(json.dumps(doc["keystore"]))
    wallet = Keystore(tmp_path, scrypt_n=TEST_SCRYPT_N).unlock("vector", doc["passphrase"])
    assert wallet.address == doc["address"]
