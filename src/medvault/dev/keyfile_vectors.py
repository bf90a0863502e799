"""The key-file vectors (``docs/vectors/keyfile.json``), part of ``medvault.dev.vectors``.

Fixed salts and nonces, so the file is reproducible byte for byte; files medvault writes use
fresh random ones. The intermediate keys are computed here independently of
``medvault.formats.keyfile`` (scrypt and HKDF spelled out), as FORMATS.md describes them.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from medvault.crypto import EncryptionKeyPair, KeySuite
from medvault.dev.vectors import DOC, HEX, PATIENT, READER, h, test_key, unhex
from medvault.formats.keyfile import ACCOUNT_KEY, FLAG_LEGACY, KDF_SCRYPT, KeyEntry, Sealer

__all__ = ["keyfile_vectors"]


def hkdf(salt: bytes | None, ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(hashes.SHA256(), length, salt, info).derive(ikm)


def salt(label: str) -> bytes:
    return test_key(label)[:16]


def keyfile_vectors() -> dict[str, Any]:
    """Key files and a backup with fixed salts and nonces (the format allows any; files written
    by medvault use fresh random ones), their intermediate keys, and files that must be refused."""
    passphrase, prf = "medvault test vector passphrase", test_key("passkey prf output")
    secrets = {1: test_key("keyfile x25519"), 2: b"".join(test_key(f"keyfile xwing {i}") for i in range(3))}
    ring = [
        KeyEntry(1, 0, secrets[1]),
        KeyEntry(2, 0, secrets[2]),
        KeyEntry(1, 1, test_key("keyfile x25519 epoch 1")),
        KeyEntry(1, 2, EncryptionKeyPair.derive(test_key("legacy"), KeySuite.X25519, 2).private_bytes(), FLAG_LEGACY),
    ]
    cases = [
        ("key file, passphrase (scrypt)", Sealer.from_passphrase(passphrase, log2_n=10, salt=salt("s1")), ring),
        ("key file, passkey PRF secret", Sealer.from_secret(prf, salt=salt("s2")), ring[:2]),
        ("backup (account key first)", Sealer.from_passphrase(passphrase, log2_n=10, salt=salt("s3")),
         [KeyEntry(ACCOUNT_KEY, 0, test_key("patient")), *ring]),
    ]  # fmt: skip
    out: list[dict[str, Any]] = []
    for name, sealer, entries in cases:
        nonces = [test_key(f"{name} nonce {i}")[:12] for i in range(len(entries))]
        if sealer.kdf == KDF_SCRYPT:
            kdf = {"name": "scrypt", "log2N": sealer.log2_n, "r": sealer.r, "p": sealer.p, "salt": h(sealer.salt)}
            sealing = Scrypt(sealer.salt, 32, 2**sealer.log2_n, sealer.r, sealer.p).derive(passphrase.encode())
        else:
            kdf = {"name": "secret", "secret": h(prf), "salt": h(sealer.salt)}
            sealing = hkdf(sealer.salt, prf, b"medvault/keyfile/v1 secret", 32)
        data = sealer.seal(bytes.fromhex(PATIENT[2:]), entries, nonces)
        out.append(
            {
                "name": name,
                "address": PATIENT,
                "kdf": kdf,
                "sealingKey": h(sealing),
                "aesKey": h(hkdf(None, sealing, b"medvault/keyfile/v1 aes-256-gcm", 32)),
                "check": h(hkdf(None, sealing, b"medvault/keyfile/v1 check", 16)),
                "header": h(data[:63]),
                "entries": [
                    {"kind": e.kind, "epoch": e.epoch, "flags": e.flags, "secret": h(e.secret), "nonce": h(n)}
                    | ({} if e.kind == ACCOUNT_KEY else
                       {"publicKey": h(EncryptionKeyPair.from_private_bytes(e.secret, KeySuite(e.kind)).public_bytes)})
                    for e, n in zip(entries, nonces, strict=True)
                ],
                "file": h(data),
            }
        )  # fmt: skip
    good = unhex(out[0]["file"])
    flipped = bytearray(good)
    flipped[70] ^= 1
    other = bytearray(good)
    other[25:45] = bytes.fromhex(READER[2:])
    return {
        "description": "Sealed key files (HOME/keystores/NAME.keys) and backups (medvault keys export): header "
        "'MVKF' || version 1 || kdf || log2N || r || p || salt (16) || address (20) || check (16) || count (2), then "
        "per entry kind || epoch (4) || flags || nonce (12) || AES-256-GCM(secret) with aad = 'medvault/keyfile/v1' "
        "|| header || index (2) || kind || epoch || flags. " + DOC,
        "encoding": HEX + "; passphrase UTF-8",
        "passphrase": passphrase,
        "cases": out,
        "mustFail": [
            {"why": "wrong passphrase (the check value differs)", "passphrase": "not the passphrase", "file": h(good)},
            {"why": "a byte of entry 0 changed", "passphrase": passphrase, "file": h(bytes(flipped))},
            {"why": "the last entry removed (count unchanged)", "passphrase": passphrase, "file": h(good[:-67])},
            {"why": "the address in the header changed", "passphrase": passphrase, "file": h(bytes(other))},
            {"why": "an unknown version", "passphrase": passphrase, "file": h(good[:4] + b"\x02" + good[5:])},
        ],
    }
