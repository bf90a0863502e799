"""Sealing a plan's records on a pool of processes, each chunk added to IPFS as soon as it is
sealed, ahead of the chain's sends (see ``medvault.dev.seed``).

Sealing (FHIR synthesis and validation, AES-256-GCM, the HPKE wraps and the key bundle) is
CPU-bound Python, so threads would not overlap it with the rest: worker processes do, from
the start of the run (while the accounts, grants and requests go out) up to ``LOOKAHEAD_CHUNKS``
chunks ahead of the record sends. A job carries everything its worker needs (the seed, the
patient's index and readers' public keys): the plaintexts are the plan's, the keys are random
as ``Medvault.add_record``'s are, and chunks come back in plan order.

Workers are forked: a spawned one imports the package again (about 1.6 s of CPU each, on a
2-core machine as long as sealing 400 patients), and the pool is made before the run starts
any thread of its own.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from medvault.crypto import KeySuite, RecordContext, encrypt_record, new_record_key
from medvault.dev.seed.plan import plaintexts
from medvault.formats.keybundle import KeyBundle, wrap_for

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import TracebackType

    from medvault.formats.keybundle import Wrap
    from medvault.model import Category

__all__ = ["Binding", "Reader", "RecordFeed", "SealJob", "Sealed", "seal_chunk"]

LOOKAHEAD_CHUNKS = 64  # chunks sealed (and added) ahead of the sends: about 18 MB at R = 10
SEAL_WORKERS = 2


@dataclass(frozen=True)
class Binding:
    """What a record is bound to (``Medvault.record_context``) and its bundle names."""

    chain_id: int
    registry: str
    suite: KeySuite


@dataclass(frozen=True)
class Reader:
    address: str
    public_key: bytes
    scopes: frozenset[Category] | None  # None: every category


@dataclass(frozen=True)
class SealJob:
    """Records ``first``.. of the plan's patient ``patient``, bound to its author's sequence
    numbers ``seq``.., wrapped for ``readers`` (the patient and the author first)."""

    seed: str
    patient: int
    record_count: int
    first: int
    seq: int
    address: str
    author: str
    readers: tuple[Reader, ...]


@dataclass
class Sealed:
    patient: int  # the plan's index
    first: int  # the first record's position in the plan's list of the patient's records
    seq: int  # the author's sequence number the first record is bound to
    blobs: list[bytes]
    bundle: bytes
    categories: list[Category]


def seal_chunk(binding: Binding, jobs: list[SealJob]) -> list[Sealed]:
    return [_seal(binding, job) for job in jobs]


def _seal(binding: Binding, job: SealJob) -> Sealed:
    wraps: list[Wrap] = []
    blobs, categories = [], []
    records = plaintexts(job.seed, job.patient, job.record_count)
    for n, (category, plaintext) in enumerate(records[job.first :], start=job.seq):
        context = RecordContext(binding.chain_id, binding.registry, job.address, job.author, n)
        key = new_record_key()
        blobs.append(encrypt_record(plaintext, key, context))
        categories.append(category)
        # One wrap per address: a grantee who is also the author is wrapped for once.
        readers = {r.address: r.public_key for r in job.readers if r.scopes is None or category in r.scopes}
        wraps += [wrap_for(context, key, address, public) for address, public in readers.items()]
    bundle = KeyBundle(binding.chain_id, binding.registry, job.address, binding.suite.name, tuple(wraps), None)
    return Sealed(job.patient, job.first, job.seq, blobs, bundle.to_bytes(), categories)


def chunk_blobs(sealed: list[Sealed]) -> list[bytes]:
    """A chunk's files in the order they go to IPFS: each patient's records, then its bundle."""
    return [b for s in sealed for b in (*s.blobs, s.bundle)]


class RecordFeed:
    """Seals ``chunks`` of jobs on ``workers`` processes and, with ``add``, adds each sealed
    chunk's files to IPFS in a thread as soon as it is sealed; iterating gives (sealed chunk,
    CIDs in ``chunk_blobs`` order, or none without ``add``) in plan order. Use it in a ``with``
    block, started before any other thread of the process (the workers are forked)."""

    def __init__(
        self,
        binding: Binding,
        chunks: list[list[SealJob]],
        add: Callable[[list[bytes]], list[str]] | None,
        *,
        workers: int = SEAL_WORKERS,
    ) -> None:
        self.binding, self.add = binding, add
        self.todo = deque(chunks)
        self.ahead: deque[tuple[Future[list[Sealed]], Future[list[str]] | None]] = deque()
        context = multiprocessing.get_context("fork")
        self.sealers = ProcessPoolExecutor(max_workers=max(1, min(workers, len(chunks))), mp_context=context)
        self.adder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="medvault-seed-ipfs") if add else None

    def __enter__(self) -> RecordFeed:
        self._top_up()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self.adder is not None:
            self.adder.shutdown(cancel_futures=True)
        self.sealers.shutdown(cancel_futures=True)

    def _top_up(self) -> None:
        while self.todo and len(self.ahead) < LOOKAHEAD_CHUNKS:
            sealing = self.sealers.submit(seal_chunk, self.binding, self.todo.popleft())
            adding = self.adder.submit(self._add, sealing) if self.adder is not None else None
            self.ahead.append((sealing, adding))

    def _add(self, sealing: Future[list[Sealed]]) -> list[str]:
        assert self.add is not None
        return self.add(chunk_blobs(sealing.result()))

    def __iter__(self) -> Iterator[tuple[list[Sealed], list[str]]]:
        while self.ahead:
            sealing, adding = self.ahead.popleft()
            sealed, cids = sealing.result(), adding.result() if adding is not None else []
            self._top_up()
            yield sealed, cids
