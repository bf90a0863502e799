"""Reads: how the time to read one record grows with the patient's log
(``read_growth_200_vs_10``), and fetch + verify + decrypt of 1 MB against its data floor
(``fetch_verify_decrypt_1mb_ms``)."""

from __future__ import annotations

import hashlib
import os
import time
from typing import TYPE_CHECKING, Any

import httpx
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from medvault.cids import compute_cid
from medvault.crypto import RecordContext, encrypt_record, new_record_key
from medvault.dev.bench.common import Say, bench_wallet, elapsed_ms, fresh_node, quiet, summary
from medvault.model import Category

if TYPE_CHECKING:
    from medvault.accounts import Wallet
    from medvault.client import Medvault

FLOOR = ("cat", "cid", "sha256", "aes_gcm")  # the data path's pieces, in order
POSITIONS = (0.0, 0.25, 0.5, 0.75, 1.0)  # where in each log the timed records are


def measure_read_growth(
    mv: Medvault, short: tuple[Wallet, int], long: tuple[Wallet, int], *, rounds: int = 4, say: Say = quiet
) -> dict[str, Any]:
    """Each patient (wallet, records in its log) reads its own records at the same relative
    ``POSITIONS`` of its log, the two interleaved, ``rounds`` times: the median read of each
    (ms), and ``ratio`` = median long / median short, with the spread of the paired ratios."""
    (short_wallet, short_n), (long_wallet, long_n) = short, long

    def read(wallet: Wallet, count: int, position: float) -> float:
        index = round(position * (count - 1))
        return elapsed_ms(lambda: mv.read_record(wallet, wallet.address, index))

    read(short_wallet, short_n, 0.0), read(long_wallet, long_n, 0.0)  # warm: connections, caches of the client
    say(f"timing reads of a {short_n}-record and a {long_n}-record patient, interleaved")
    shorts, longs = [], []
    for _ in range(rounds):
        for position in POSITIONS:
            shorts.append(read(short_wallet, short_n, position))
            longs.append(read(long_wallet, long_n, position))
    short_ms, long_ms = summary(shorts), summary(longs)
    return {
        "short": {"records": short_n, "read_ms": short_ms},
        "long": {"records": long_n, "read_ms": long_ms},
        "ratio": round(long_ms["median"] / short_ms["median"], 2),
        "paired_ratio": summary([b / a for a, b in zip(shorts, longs, strict=True)]),
    }


def measure_fetch(size: int = 1 << 20, runs: int = 10, *, say: Say = quiet) -> dict[str, Any]:
    """A patient's read of its own ``size``-byte record (fetch, verify, decrypt), and, interleaved
    on the same node, its data floor: the pieces it cannot avoid, each alone (Kubo's ``cat``, the
    CID recomputed, sha256, AES-256-GCM decrypt). Also sealing against raw AES-GCM (MB/s)."""
    payload = os.urandom(size)
    key, nonce, aad = new_record_key(), os.urandom(12), b"medvault bench floor"
    ciphertext = AESGCM(key).encrypt(nonce, payload, aad)
    patient = bench_wallet("fetch patient")
    with fresh_node(fund=(patient.address,)) as node:
        mv = node.mv
        mv.register(patient)
        pointer = mv.add_record(
            patient, patient.address, payload, Category.IMAGING, content_type="application/octet-stream"
        ).pointer
        with httpx.Client(base_url=f"{node.info.ipfs_api}/api/v0") as http:
            mv.read_record(patient, patient.address, pointer.index)  # warm
            say(f"timing {runs} reads of {size:,} bytes and their floor, interleaved")
            reads: list[float] = []
            floor: dict[str, list[float]] = {name: [] for name in FLOOR}
            for _ in range(runs):
                reads.append(elapsed_ms(lambda: mv.read_record(patient, patient.address, pointer.index)))
                laps = [time.perf_counter()]
                data = http.post("/cat", params={"arg": pointer.cid}).content
                laps.append(time.perf_counter())
                compute_cid(data)
                laps.append(time.perf_counter())
                hashlib.sha256(data).digest()
                laps.append(time.perf_counter())
                AESGCM(key).decrypt(nonce, ciphertext, aad)
                laps.append(time.perf_counter())
                for name, start, end in zip(FLOOR, laps, laps[1:], strict=False):
                    floor[name].append((end - start) * 1000)
    floor_ms = {name: summary(times, 3) for name, times in floor.items()}
    return {
        "size_bytes": size,
        "read_ms": summary(reads),
        "floor_ms": round(sum(f["median"] for f in floor_ms.values()), 2),
        "floor_pieces_ms": floor_ms,
        **_sealing(payload),
    }


def _sealing(payload: bytes) -> dict[str, float]:
    """Sealing (``encrypt_record``) against raw AES-256-GCM on the same bytes, best of three
    interleaved rounds (the machine's other work is noise), MB/s."""
    context = RecordContext(31337, "0x" + "11" * 20, "0x" + "22" * 20, "0x" + "22" * 20, 0)
    key, nonce = new_record_key(), os.urandom(12)
    seal, raw = 0.0, 0.0
    for _ in range(3):
        seal = max(seal, _throughput(len(payload), lambda: encrypt_record(payload, key, context)))
        raw = max(
            raw, _throughput(len(payload), lambda: AESGCM(key).encrypt(nonce, payload, context.associated_data()))
        )
    return {"seal_mb_s": seal, "raw_aes_gcm_mb_s": raw, "seal_vs_raw_ratio": round(seal / raw, 3)}


def _throughput(size: int, action: Any, runs: int = 20) -> float:
    ms = sum(elapsed_ms(action) for _ in range(runs))
    return round(size * runs / ms / 1e3, 1)
