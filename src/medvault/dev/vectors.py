"""The test vectors of ``docs/FORMATS.md``, rebuilt from this implementation.

    python -m medvault.dev.vectors [DIR]      # rewrites DIR (default docs/vectors)/*.json

Every key is test-only: a private key is ``keccak256("medvault test vector/<label>")``. Bytes
are ``0x`` lower-case hex, except where the format itself uses base64 (key-bundle and HTTP
JSON) or text (JSON documents, given as strings so that their exact bytes are kept).

Most vectors are deterministic and rebuilt byte for byte (``tests/unit/test_vectors.py`` fails
when the committed files differ from a rebuild). Two are not, because their library draws
fresh randomness: HPKE seals (``cryptography`` takes no ephemeral key), keystores (salt, IV)
and, given the same inputs, nothing else. For those a rebuild keeps the committed value as long
as it still opens to the expected plaintext, so that rebuilding is idempotent; the record nonce
and the Shamir coefficients are fixed here by substituting the random source for the call.

One X25519 seal per info kind is also made with a fixed ephemeral key by the small RFC 9180
reference below (``reference_seal``), which a second implementation can reproduce exactly;
``reference_open`` (both suites) is what the tests use to check that the library's seals
are plain RFC 9180 base mode with the KEM/KDF/AEAD ids the spec gives.

Longer than the usual ~500 lines on purpose: it is one coherent capability (the vectors of every format,
sharing one set of test accounts and contexts), made of one short builder per file, and
ruff format writes each vector field on a line of its own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast
from unittest import mock

from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from medvault import crypto
from medvault.accounts import Wallet
from medvault.cids import cid_to_bytes, compute_cid
from medvault.client.consent_sig import ConsentChange, SignedConsent, typed_data
from medvault.crypto import EncryptionKeyPair, KeySuite, RecordContext, legacy_encryption_key_typed_data
from medvault.escrow import split_key
from medvault.formats import envelope
from medvault.formats.keybundle import Escrow, EscrowShare, KeyBundle, Wrap
from medvault.formats.recordhash import GENESIS, record_hash
from medvault.keeper.protocol import REASONS, KeyRequest, sign_key_request

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from medvault.chain import Chain

__all__ = ["FILES", "build", "reference_open", "reference_seal", "test_key", "write"]

CHAIN_ID = 31337
DOC = "see docs/FORMATS.md"
HEX = "bytes are 0x lower-case hex; addresses EIP-55"


def test_key(label: str) -> bytes:
    """The test-only secret of ``label``."""
    return keccak(text=f"medvault test vector/{label}")


def h(data: bytes) -> str:
    return "0x" + data.hex()


def unhex(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("0x"))


def address(label: str) -> str:
    """The address of a test account (``label`` a person) or a test contract."""
    return str(Account.from_key(test_key(label)).address)


PATIENT, AUTHOR, READER, DELEGATE = address("patient"), address("provider"), address("reader"), address("delegate")
KEEPERS = [address(f"keeper-{i}") for i in (1, 2, 3)]
REGISTRY = to_checksum_address(test_key("RecordRegistry")[-20:])
CONSENT = to_checksum_address(test_key("ConsentManager")[-20:])
DIRECTORY = to_checksum_address(test_key("KeeperDirectory")[-20:])
CONTEXT = RecordContext(CHAIN_ID, REGISTRY, PATIENT, AUTHOR, 3)
RECORD_KEY = test_key("record key")
SUITES = (KeySuite.X25519, KeySuite.MLKEM768_X25519)


def _context_json(context: RecordContext) -> dict[str, Any]:
    return {
        "chainId": context.chain_id,
        "registry": context.registry,
        "patient": context.patient,
        "author": context.author,
        "seq": context.seq,
    }


# -- a minimal RFC 9180 (base mode, single shot) for DHKEM(X25519) and X-Wing -----------------

KEM_IDS = {KeySuite.X25519: 0x0020, KeySuite.MLKEM768_X25519: 0x647A}
KDF_ID, AEAD_ID = 0x0001, 0x0002  # HKDF-SHA256, AES-256-GCM
XWING_LABEL = b"\\.//^\\"


def _extract(salt: bytes, ikm: bytes) -> bytes:
    return hmac.new(salt, ikm, hashlib.sha256).digest()


def _expand(prk: bytes, info: bytes, length: int) -> bytes:
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out, counter = out + block, counter + 1
    return out[:length]


def _labeled_extract(suite_id: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
    return _extract(salt, b"HPKE-v1" + suite_id + label + ikm)


def _labeled_expand(suite_id: bytes, prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    return _expand(prk, length.to_bytes(2) + b"HPKE-v1" + suite_id + label + info, length)


def _dhkem_shared_secret(dh: bytes, enc: bytes, pk_r: bytes) -> bytes:
    kem_suite = b"KEM" + (0x0020).to_bytes(2)
    prk = _labeled_extract(kem_suite, b"", b"eae_prk", dh)
    return _labeled_expand(kem_suite, prk, b"shared_secret", enc + pk_r, 32)


def _key_schedule(suite: KeySuite, shared_secret: bytes, info: bytes) -> tuple[bytes, bytes]:
    sid = b"HPKE" + KEM_IDS[suite].to_bytes(2) + KDF_ID.to_bytes(2) + AEAD_ID.to_bytes(2)
    context = b"\x00" + _labeled_extract(sid, b"", b"psk_id_hash", b"") + _labeled_extract(sid, b"", b"info_hash", info)
    secret = _labeled_extract(sid, shared_secret, b"secret", b"")
    return _labeled_expand(sid, secret, b"key", context, 32), _labeled_expand(sid, secret, b"base_nonce", context, 12)


def reference_seal(plaintext: bytes, x25519_public: bytes, info: bytes, ephemeral: bytes) -> bytes:
    """DHKEM(X25519) HPKE seal with the ephemeral private key ``ephemeral``: ``enc || ct``."""
    sk_e = x25519.X25519PrivateKey.from_private_bytes(ephemeral)
    enc = sk_e.public_key().public_bytes_raw()
    dh = sk_e.exchange(x25519.X25519PublicKey.from_public_bytes(x25519_public))
    key, nonce = _key_schedule(KeySuite.X25519, _dhkem_shared_secret(dh, enc, x25519_public), info)
    return enc + AESGCM(key).encrypt(nonce, plaintext, b"")


def reference_open(
    suite: KeySuite, sealed: bytes, x25519_private: bytes, mlkem_seed: bytes | None, info: bytes
) -> bytes:
    """Opens an HPKE seal of ``suite`` from the raw private key parts (see FORMATS.md, HPKE)."""
    sk_x = x25519.X25519PrivateKey.from_private_bytes(x25519_private)
    pk_x = sk_x.public_key().public_bytes_raw()
    if suite is KeySuite.X25519:
        enc, ct = sealed[:32], sealed[32:]
        shared = _dhkem_shared_secret(sk_x.exchange(x25519.X25519PublicKey.from_public_bytes(enc)), enc, pk_x)
    else:
        assert mlkem_seed is not None
        enc, ct = sealed[:1120], sealed[1120:]
        ct_m, ct_x = enc[:1088], enc[1088:]
        ss_m = mlkem.MLKEM768PrivateKey.from_seed_bytes(mlkem_seed).decapsulate(ct_m)
        ss_x = sk_x.exchange(x25519.X25519PublicKey.from_public_bytes(ct_x))
        shared = hashlib.sha3_256(ss_m + ss_x + ct_x + pk_x + XWING_LABEL).digest()
    key, nonce = _key_schedule(suite, shared, info)
    return AESGCM(key).decrypt(nonce, ct, b"")


# -- the files --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    """A test HPKE key pair, from ``EncryptionKeyPair.derive(secret)``, with its raw parts."""

    suite: KeySuite
    secret: bytes

    @property
    def pair(self) -> EncryptionKeyPair:
        return EncryptionKeyPair.derive(self.secret, self.suite)

    @property
    def seed(self) -> bytes:
        # The same HKDF as EncryptionKeyPair.derive, spelled out: the raw parts are not exposed.
        info = f"medvault/encryption-key/{self.suite.name}/epoch-0".encode()
        return _expand(_extract(b"medvault", self.secret), info, 96)

    def to_json(self) -> dict[str, Any]:
        mlkem_seed = None if self.suite is KeySuite.X25519 else h(self.seed[32:])
        return {
            "suite": self.suite.name,
            "derivationSecret": h(self.secret),
            "x25519PrivateKey": h(self.seed[:32]),
            "mlkemSeed": mlkem_seed,
            "publicKey": h(self.pair.public_bytes),
        }


def _reuse(previous: Any, opens: Callable[[bytes], bool], make: Callable[[], bytes]) -> bytes:
    """The committed seal if it still opens as expected, else a fresh one."""
    if isinstance(previous, str):
        try:
            if opens(unhex(previous)):
                return unhex(previous)
        except Exception:  # noqa: S110 - anything wrong with the old seal: make a new one
            pass
    return make()


def _seal_case(
    kind: str, who: str, info: bytes, plaintext: bytes, previous: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    recipient = recipients()[who]
    name = f"{kind}/{recipient.suite.name}"

    def opens(sealed: bytes) -> bool:
        return crypto.open_share(sealed, recipient.pair, info, name) == plaintext

    def make() -> bytes:
        return crypto.seal_share(plaintext, recipient.pair.public_bytes, info)

    sealed = _reuse(previous.get(name, {}).get("sealed"), opens, make)
    return {
        "name": name,
        "kind": kind,
        "suite": recipient.suite.name,
        "recipient": who,
        **fields,
        "info": h(info),
        "plaintext": h(plaintext),
        "sealed": h(sealed),
    }


def recipients() -> dict[str, Recipient]:
    return {
        f"{who}/{s.name}": Recipient(s, test_key(f"{who} encryption secret"))
        for who in ("reader", "keeper-1")
        for s in SUITES
    }


def hpke_vectors(previous: dict[str, Any]) -> dict[str, Any]:
    old = {case["name"]: case for case in previous.get("cases", [])}
    people = recipients()
    share = split_key(RECORD_KEY, 1, 1)[0][1]  # a threshold-1 share is the key itself
    cases: list[dict[str, Any]] = []
    for suite in SUITES:
        reader, keeper = f"reader/{suite.name}", f"keeper-1/{suite.name}"
        cases += [
            _seal_case("wrap", reader, CONTEXT.wrap_info(READER), RECORD_KEY, old, reader=READER),
            _seal_case("escrow", keeper, CONTEXT.escrow_info(KEEPERS[0]), share, old, keeper=KEEPERS[0]),
            _seal_case(
                "release",
                reader,
                CONTEXT.release_info(READER, KEEPERS[0], 1),
                share,
                old,
                reader=READER,
                keeper=KEEPERS[0],
                x=1,
            ),
        ]
    fixed = []
    x_reader = people["reader/X25519"]
    for kind, info in (("wrap", CONTEXT.wrap_info(READER)), ("escrow", CONTEXT.escrow_info(READER))):
        ephemeral = test_key(f"ephemeral {kind}")
        fixed.append(
            {
                "name": f"{kind}/X25519/fixed-ephemeral",
                "recipient": "reader/X25519",
                "info": h(info),
                "ephemeralPrivateKey": h(ephemeral),
                "plaintext": h(RECORD_KEY),
                "sealed": h(reference_seal(RECORD_KEY, x_reader.pair.public_bytes[1:], info, ephemeral)),
            }
        )
    return {
        "description": "HPKE base mode single-shot seals: sealed = enc || AEAD ciphertext || tag. " + DOC,
        "encoding": HEX,
        "suites": [
            {
                "name": s.name,
                "tag": int(s),
                "kemId": KEM_IDS[s],
                "kdfId": KDF_ID,
                "aeadId": AEAD_ID,
                "encLength": 32 if s is KeySuite.X25519 else 1120,
                "publicKeyLength": 1 + (32 if s is KeySuite.X25519 else 1216),
            }
            for s in SUITES
        ],
        "context": _context_json(CONTEXT),
        "associatedData": h(CONTEXT.associated_data()),
        "recipients": {name: r.to_json() for name, r in people.items()},
        "cases": cases,
        "fixedEphemeral": fixed,
    }


@contextmanager
def _fixed_nonce(nonce: bytes) -> Iterator[None]:
    with mock.patch.object(crypto, "os", SimpleNamespace(urandom=lambda n: nonce[:n])):
        yield


def record_vectors() -> dict[str, Any]:
    cases: list[dict[str, Any]] = []
    bodies = [
        (CONTEXT, envelope.pack(b'{"resourceType":"Observation","status":"final"}', "application/fhir+json", "")),
        (RecordContext(1, REGISTRY, PATIENT, PATIENT, 0), bytes(range(256))),
    ]
    for i, (context, plaintext) in enumerate(bodies):
        nonce = test_key(f"record nonce {i}")[:12]
        with _fixed_nonce(nonce):
            blob = crypto.encrypt_record(plaintext, RECORD_KEY, context)
        cases.append(
            {
                "context": _context_json(context),
                "associatedData": h(context.associated_data()),
                "key": h(RECORD_KEY),
                "nonce": h(nonce),
                "plaintext": h(plaintext),
                "ciphertext": h(blob),
            }
        )
    first = cases[0]
    tampered = unhex(first["ciphertext"])
    return {
        "description": "Record ciphertext: 'MVR1' || nonce(12) || AES-256-GCM(key, nonce, plaintext, aad) || tag(16). "
        + DOC,
        "encoding": HEX,
        "cases": cases,
        "mustFail": [
            {
                "why": "another seq in the associated data (the ciphertext moved to another place)",
                "context": {**first["context"], "seq": 4},
                "key": first["key"],
                "ciphertext": first["ciphertext"],
                "error": "DecryptionError",
            },
            {
                "why": "another author in the associated data",
                "context": {**first["context"], "author": READER},
                "key": first["key"],
                "ciphertext": first["ciphertext"],
                "error": "DecryptionError",
            },
            {
                "why": "flipped last tag bit",
                "context": first["context"],
                "key": first["key"],
                "ciphertext": h(tampered[:-1] + bytes([tampered[-1] ^ 1])),
                "error": "DecryptionError",
            },
            {
                "why": "wrong magic",
                "context": first["context"],
                "key": first["key"],
                "ciphertext": h(b"MVR2" + tampered[4:]),
                "error": "IntegrityError",
            },
        ],
    }


def envelope_vectors() -> dict[str, Any]:
    inputs = [
        (b'{"resourceType":"Patient","id":"p1"}', "application/fhir+json", ""),
        (b"%PDF-1.7\n\x00\xff binary\nwith newlines\n", "application/pdf", "R\u00f6ntgen befund.pdf"),
        (b"", "text/plain", 'empty "quoted" \\ name'),
    ]
    cases = [{"contentType": t, "name": n, "body": h(b), "plaintext": h(envelope.pack(b, t, n))} for b, t, n in inputs]
    return {
        "description": "Record plaintext envelope: compact ASCII JSON header {contentType, name}, 0x0a, body. " + DOC,
        "encoding": HEX,
        "cases": cases,
        "decodeOnly": [
            {
                "why": "name absent: read as empty",
                "plaintext": h(b'{"contentType":"text/plain"}\nhi'),
                "contentType": "text/plain",
                "name": "",
                "body": h(b"hi"),
            },
            {
                "why": "header with spaces and other key order is still read",
                "plaintext": h(b'{ "name": "a", "contentType": "text/plain" }\n'),
                "contentType": "text/plain",
                "name": "a",
                "body": "0x",
            },
        ],
        "mustFail": [
            {"why": "no newline", "plaintext": h(b'{"contentType":"text/plain","name":""}')},
            {"why": "header is not JSON", "plaintext": h(b"contentType: text/plain\nbody")},
            {"why": "header is not an object", "plaintext": h(b'["text/plain"]\nbody')},
            {"why": "contentType missing", "plaintext": h(b'{"name":"x"}\nbody')},
            {"why": "contentType not a string", "plaintext": h(b'{"contentType":1,"name":"x"}\nbody')},
        ],
    }


def keybundle_vectors(hpke: dict[str, Any]) -> dict[str, Any]:
    seals = {case["name"]: unhex(case["sealed"]) for case in hpke["cases"]}
    wraps = (
        Wrap(AUTHOR, 3, READER, seals["wrap/X25519"]),
        Wrap(AUTHOR, 3, PATIENT, seals["wrap/X25519"][::-1]),
        Wrap(PATIENT, 1, READER, bytes(48)),
    )
    escrow = Escrow(
        2,
        tuple(
            EscrowShare(k, x, seals["escrow/X25519"] if x == 1 else bytes([x]) * 80)
            for x, k in enumerate(KEEPERS, start=1)
        ),
    )
    bundles = [
        KeyBundle(CHAIN_ID, REGISTRY, PATIENT, "X25519", wraps, escrow),
        KeyBundle(CHAIN_ID, REGISTRY, PATIENT, "X25519", wraps[:1]),
    ]
    good = bundles[0].to_bytes().decode()
    doc = json.loads(good)
    return {
        "description": "Key bundle JSON (UTF-8, given here as text; wraps are base64 as in the format). Wraps "
        "other than wrap/X25519 and escrow/X25519 of hpke.json are filler bytes. " + DOC,
        "encoding": "json strings are the exact bytes; addresses EIP-55; wrap fields standard base64 with padding",
        "cases": [{"patient": PATIENT, "json": b.to_bytes().decode()} for b in bundles],
        "mustFail": [
            {"why": "parsed for another patient", "patient": READER, "json": good},
            {"why": "other format", "patient": PATIENT, "json": good.replace("key-bundle/v2", "key-bundle/v1")},
            {
                "why": "chain id not a number",
                "patient": PATIENT,
                "json": good.replace('"chainId":31337', '"chainId":"31337"'),
            },
            {
                "why": "wraps missing",
                "patient": PATIENT,
                "json": json.dumps({k: v for k, v in doc.items() if k != "wraps"}),
            },
            {"why": "not JSON", "patient": PATIENT, "json": good[:-1]},
        ],
        # Readers leave out a malformed wrap or share (it cannot be anyone's) and read the rest;
        # addresses are compared without regard to case. "wraps" lists what must remain.
        "lenient": [
            {
                "why": "wrap not base64: left out",
                "patient": PATIENT,
                "json": good.replace(doc["wraps"][0]["wrap"], "not*base64"),
                "wraps": [_wrap_json(w) for w in wraps[1:]],
            },
            {
                "why": "wrap not a string: left out",
                "patient": PATIENT,
                "json": good.replace(json.dumps(doc["wraps"][0]["wrap"]), "12"),
                "wraps": [_wrap_json(w) for w in wraps[1:]],
            },
            {
                "why": "seq not an integer: left out",
                "patient": PATIENT,
                "json": good.replace('"seq":1,', '"seq":1.0,'),
                "wraps": [_wrap_json(w) for w in wraps[:2]],
            },
            {
                "why": "addresses in lower case: read",
                "patient": PATIENT.lower(),
                "json": good.replace(PATIENT, PATIENT.lower())
                .replace(READER, READER.lower())
                .replace(AUTHOR, AUTHOR.lower()),
                "wraps": [{**_wrap_json(w), "reader": w.reader.lower(), "author": w.author.lower()} for w in wraps],
            },
        ],
    }


def _wrap_json(wrap: Wrap) -> dict[str, Any]:
    return {"author": wrap.author, "seq": wrap.seq, "reader": wrap.reader, "wrap": base64.b64encode(wrap.wrap).decode()}


def shamir_vectors() -> dict[str, Any]:
    cases: list[dict[str, Any]] = []
    for threshold, count in ((2, 3), (3, 5), (1, 2)):
        coefficients = [
            test_key(f"shamir {threshold}-of-{count} coefficient {i}")[:16] for i in range(2 * (threshold - 1))
        ]
        with mock.patch("Crypto.Protocol.SecretSharing.rng", side_effect=coefficients):
            shares = split_key(RECORD_KEY, threshold, count)
        low, high = coefficients[: threshold - 1], coefficients[threshold - 1 :]
        cases.append(
            {
                "key": h(RECORD_KEY),
                "threshold": threshold,
                "count": count,
                # Highest degree first, as PyCryptodome draws them (p(x) = ... + c1*x + secret half).
                "coefficientsLow": [h(c) for c in low],
                "coefficientsHigh": [h(c) for c in high],
                "shares": [{"x": x, "share": h(s)} for x, s in shares],
            }
        )
    return {
        "description": "t-of-n sharing of a 32-byte record key: two GF(2^128) Shamir splits (bytes 0-15 and "
        "16-31), shares = y_low || y_high. coefficients* list c_{t-1} .. c_1 (highest degree first). " + DOC,
        "encoding": HEX,
        "field": "GF(2^128) modulo x^128 + x^7 + x^2 + x + 1; a 16-byte string is a big-endian integer whose bit i "
        "is the coefficient of x^i; x is the integer share index",
        "cases": cases,
    }


def recordhash_vectors() -> dict[str, Any]:
    cases: list[dict[str, Any]] = []
    previous = GENESIS
    for index in range(2):
        cid = cid_to_bytes(compute_cid(b"record %d" % index))
        keys_cid = cid_to_bytes(compute_cid(b"keys %d" % index))
        fields: dict[str, Any] = {
            "previous": h(previous),
            "patient": PATIENT,
            "index": index,
            "author": AUTHOR if index else PATIENT,
            "seq": 7 * index,
            "category": 5 - index,
            "timestamp": 1_700_000_000 + index,
            "contentHash": h(hashlib.sha256(cid).digest()),
            "cid": h(cid),
            "keysCid": h(keys_cid),
        }
        previous = record_hash(
            unhex(fields["previous"]),
            PATIENT,
            index,
            fields["author"],
            fields["seq"],
            fields["category"],
            fields["timestamp"],
            unhex(fields["contentHash"]),
            cid,
            keys_cid,
        )
        cases.append({**fields, "recordHash": h(previous)})
    return {
        "description": "recordHash = keccak256(abi.encode(bytes32 previous, address patient, uint64 index, address "
        "author, uint64 seq, uint8 category, uint64 timestamp, bytes32 contentHash, keccak256(cid), "
        "keccak256(keysCid))), a chain of two records. " + DOC,
        "encoding": HEX + "; cid and keysCid in their binary (on-chain) form",
        "cases": cases,
    }


def _sign(key: bytes, document: dict[str, Any]) -> tuple[bytes, bytes, bytes]:
    """(domain separator, struct hash, signature) of ``document`` signed with ``key``."""
    signable = encode_typed_data(full_message=document)
    return signable.header, signable.body, bytes(Account.sign_message(signable, key).signature)


def keyderivation_vectors() -> dict[str, Any]:
    key = test_key("patient")
    cases: list[dict[str, Any]] = []
    for suite in SUITES:
        for epoch in (0, 1):
            document = legacy_encryption_key_typed_data(suite, epoch)
            separator, struct, signature = _sign(key, document)
            pair = EncryptionKeyPair.legacy_from_signature(signature, suite, epoch)
            secret = keccak(signature)
            info = f"medvault/encryption-key/{suite.name}/epoch-{epoch}".encode()
            seed = _expand(_extract(b"medvault", secret), info, 96)
            cases.append(
                {
                    "suite": suite.name,
                    "epoch": epoch,
                    "typedData": document,
                    "domainSeparator": h(separator),
                    "structHash": h(struct),
                    "digest": h(keccak(b"\x19\x01" + separator + struct)),
                    "signature": h(signature),
                    "secret": h(secret),
                    "hkdfInfo": info.decode(),
                    "seed": h(seed),
                    "x25519PrivateKey": h(seed[:32]),
                    "mlkemSeed": None if suite is KeySuite.X25519 else h(seed[32:]),
                    "publicKey": h(pair.public_bytes),
                }
            )
    sig = unhex(cases[0]["signature"])
    return {
        "description": "LEGACY (migration only; new keys are random, see keyfile.json). Encryption keys from a "
        "wallet signature: secret = keccak256(r || s || v) of the normalised "
        "(low-s, v in 27/28) EIP-712 signature; seed = HKDF-SHA256(ikm=secret, salt='medvault', info, 96 bytes). "
        + DOC,
        "encoding": HEX,
        "account": {"privateKey": h(key), "address": PATIENT},
        "cases": cases,
        "equivalentSignatures": {
            "why": "the same signature spelled with v in 0/1, or with high s, derives the same key (case 0)",
            "suite": "X25519",
            "epoch": 0,
            "publicKey": cases[0]["publicKey"],
            "signatures": [h(spelling) for spelling in _other_spellings(sig)],
        },
    }


def _other_spellings(signature: bytes) -> list[bytes]:
    """The same secp256k1 signature with v as the y-parity 0/1, and with high s (v flipped)."""
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    r, s, v = signature[:32], int.from_bytes(signature[32:64]), signature[64]
    return [r + s.to_bytes(32) + bytes([v - 27]), r + (n - s).to_bytes(32) + bytes([55 - v])]


def _fake_chain() -> Chain:
    return cast("Chain", SimpleNamespace(chain_id=CHAIN_ID, consent=SimpleNamespace(address=CONSENT)))


CONSENT_MESSAGES: dict[str, dict[str, Any]] = {
    "Grant": {
        "patient": PATIENT,
        "grantee": READER,
        "scopes": 0b100001,
        "purpose": 0,
        "validFrom": 1_700_000_000,
        "validUntil": 1_731_536_000,
        "keysCid": cid_to_bytes(compute_cid(b"keys for the grant")),
    },
    "Revoke": {"patient": PATIENT, "grantee": READER},
    "AppointDelegate": {
        "patient": PATIENT,
        "delegate": DELEGATE,
        "scopes": 0b000101,
        "maxDuration": 2_592_000,
        "openHistory": False,
    },
    "RemoveDelegate": {"patient": PATIENT, "delegate": DELEGATE, "keepGrants": False},
    "ApproveRequest": {
        "patient": PATIENT,
        "researcher": READER,
        "scopes": 1,
        "purpose": 2,
        "duration": 2_592_000,
        "requestedAt": 1_700_000_100,
        "studyId": keccak(text="study 42"),
        "keysCid": b"",
    },
    "DenyRequest": {
        "patient": PATIENT,
        "researcher": READER,
        "scopes": 0b111111,
        "purpose": 2,
        "duration": 86_400,
        "requestedAt": 1_700_000_200,
        "studyId": keccak(text="study 43"),
    },
}


def eip712_vectors() -> dict[str, Any]:
    cases: list[dict[str, Any]] = []
    for number, (action, message) in enumerate(CONSENT_MESSAGES.items()):
        signer = test_key("delegate" if action == "Revoke" else "patient")
        # A delegate's nonce names its appointment (here appointment 1) in bits 64 and up.
        nonce = number | (1 << 64 if action == "Revoke" else 0)
        document = typed_data(_fake_chain(), ConsentChange(action, message), nonce, 1_800_000_000 + number)
        separator, struct, signature = _sign(signer, document)
        signed = SignedConsent(document, h(signature))
        nonce, deadline, chain_id, contract, r, vs = signed.authorization()
        type_string = action + "(" + ",".join(f"{f['type']} {f['name']}" for f in document["types"][action]) + ")"
        cases.append(
            {
                "primaryType": action,
                "typeString": type_string,
                "typeHash": h(keccak(text=type_string)),
                "typedData": document,
                "domainSeparator": h(separator),
                "structHash": h(struct),
                "digest": h(keccak(b"\x19\x01" + separator + struct)),
                "signer": str(Account.from_key(signer).address),
                "signature": h(signature),
                "authorization": {
                    "nonce": nonce,
                    "deadline": deadline,
                    "chainId": chain_id,
                    "verifyingContract": contract,
                    "r": h(r),
                    "vs": h(vs),
                },
                "signedJson": signed.to_json(),
            }
        )
    return {
        "description": "EIP-712 consent changes (domain 'medvault ConsentManager'/'1', chain id, ConsentManager) "
        "with their digests, a signature and the contract's Authorization (EIP-2098 r, vs). Revoke is signed by "
        "a delegate (allowed for Grant, Revoke, ApproveRequest, DenyRequest), whose nonce carries its appointment "
        "number in bits 64 and up (nonce | appointment << 64; here appointment 1). " + DOC,
        "encoding": HEX + "; typed data in eth_signTypedData_v4 JSON, bytes fields as 0x hex",
        "accounts": {
            "patient": {"privateKey": h(test_key("patient")), "address": PATIENT},
            "delegate": {"privateKey": h(test_key("delegate")), "address": DELEGATE},
        },
        "domainTypeString": "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)",
        "cases": cases,
        "equivalentSignatures": {
            "why": "the signature of case 0 spelled with v in 0/1, or with high s, packs to the same (r, vs)",
            "signatures": [h(spelling) for spelling in _other_spellings(unhex(cases[0]["signature"]))],
            "r": cases[0]["authorization"]["r"],
            "vs": cases[0]["authorization"]["vs"],
        },
    }


KEY_REQUEST_TYPE = "KeyRequest(address patient,uint64 index,address reader,address keeper,uint256 issuedAt)"


def keeper_vectors(hpke: dict[str, Any]) -> dict[str, Any]:
    reader = Wallet("reader", Account.from_key(test_key("reader")))
    request = KeyRequest(PATIENT, 3, READER, KEEPERS[0], 1_700_000_500)
    body = sign_key_request(reader, request, CHAIN_ID, DIRECTORY)
    separator, struct, _ = _sign(test_key("reader"), body["typedData"])
    release = next(c for c in hpke["cases"] if c["name"] == "release/X25519")
    response = {
        "keeper": KEEPERS[0],
        "x": 1,
        "wrap": base64.b64encode(unhex(release["sealed"])).decode(),
        "releaseId": h(request.release_id(CHAIN_ID, DIRECTORY)),
    }
    return {
        "description": "Keeper key release: an EIP-712 KeyRequest (domain 'medvault keeper'/'1', chain id, "
        "KeeperDirectory) POSTed as JSON to /v1/key-shares; the answer's wrap is release/X25519 of hpke.json. " + DOC,
        "encoding": HEX + "; HTTP bodies are JSON, the response wrap is standard base64",
        "reader": {"privateKey": h(test_key("reader")), "address": READER},
        "typeString": KEY_REQUEST_TYPE,
        "typeHash": h(keccak(text=KEY_REQUEST_TYPE)),
        "domainSeparator": h(separator),
        "structHash": h(struct),
        "releaseId": response["releaseId"],
        "requestBody": body,
        "responseBody": response,
        "refusalBody": {"error": "no-grant", "message": f"{PATIENT} never granted {READER} access"},
        "reasons": REASONS,
    }


def cid_vectors() -> dict[str, Any]:
    cases: list[dict[str, Any]] = []
    for text in ("", "hello medvault"):
        data = text.encode()
        cid = compute_cid(data)
        cases.append({"bytes": h(data), "cid": cid, "binary": h(cid_to_bytes(cid))})
    for length in (262_144, 262_145, 1_000_000):
        cid = compute_cid(bytes(i % 251 for i in range(length)))
        cases.append(
            {
                "generator": "i % 251 for i in range(length)",
                "length": length,
                "cid": cid,
                "binary": h(cid_to_bytes(cid)),
            }
        )
    return {
        "description": "IPFS CIDs as Kubo 'add --cid-version=1 --raw-leaves --hash=sha2-256 --chunker=size-262144' "
        "gives them: base32 strings, binary CIDs on chain. " + DOC,
        "encoding": HEX + "; generated inputs: byte i of the input is i % 251",
        "cases": cases,
    }


def keystore_vectors(previous: dict[str, Any]) -> dict[str, Any]:
    key, passphrase = test_key("keystore"), "medvault test vector passphrase"
    old = previous.get("keystore")
    if not (isinstance(old, dict) and _decrypts(old, passphrase, key)):
        old = Account.encrypt(key, passphrase, kdf="scrypt", iterations=1024)
    return {
        "description": "Web3 Secret Storage v3 keystore (scrypt, AES-128-CTR, keccak MAC), as eth-account writes "
        "it; medvault uses n = 2^18 (this vector n = 1024 to stay fast). " + DOC,
        "encoding": "keystore JSON as eth-account writes it (hex without 0x inside)",
        "privateKey": h(key),
        "address": str(Account.from_key(key).address),
        "passphrase": passphrase,
        "keystore": old,
    }


def _decrypts(keystore: dict[str, Any], passphrase: str, key: bytes) -> bool:
    try:
        return bytes(Account.decrypt(keystore, passphrase)) == key
    except ValueError:
        return False


FILES = (
    "record",
    "envelope",
    "keybundle",
    "hpke",
    "shamir",
    "recordhash",
    "keyderivation",
    "eip712",
    "keeper",
    "cid",
    "keystore",
    "keyfile",
)


def build(previous: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every vectors file, by name; ``previous`` (the committed files) supplies the randomized
    values that still open (see the module docstring)."""
    from medvault.dev.keyfile_vectors import keyfile_vectors  # it builds on this module's test accounts

    hpke = hpke_vectors(previous.get("hpke", {}))
    return {
        "record": record_vectors(),
        "envelope": envelope_vectors(),
        "keybundle": keybundle_vectors(hpke),
        "hpke": hpke,
        "shamir": shamir_vectors(),
        "recordhash": recordhash_vectors(),
        "keyderivation": keyderivation_vectors(),
        "eip712": eip712_vectors(),
        "keeper": keeper_vectors(hpke),
        "cid": cid_vectors(),
        "keystore": keystore_vectors(previous.get("keystore", {})),
        "keyfile": keyfile_vectors(),
    }


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def load(folder: Path) -> dict[str, dict[str, Any]]:
    return {
        name: json.loads((folder / f"{name}.json").read_text()) for name in FILES if (folder / f"{name}.json").exists()
    }


def write(folder: Path) -> None:
    documents = build(load(folder))
    folder.mkdir(parents=True, exist_ok=True)
    for name, document in documents.items():
        (folder / f"{name}.json").write_text(dumps(document))


if __name__ == "__main__":
    write(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/vectors"))
