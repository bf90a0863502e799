"""What every capability of the client shares: the chain, the IPFS node, the deployment's HPKE
suite, chain time, and the key bundles of records (fetched, checked and parsed in one place).

Parsed bundles are kept by CID and patient, least recently used first out, up to
``BUNDLE_CACHE_BYTES`` of their documents: a CID names its bytes for ever (each fetch is checked
against it), and the records of one batch share one bundle, so reading them one by one would
otherwise fetch and parse it once per record (4 ms for a 200-record batch)."""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from typing import TYPE_CHECKING

from medvault.crypto import RecordContext
from medvault.errors import MedvaultError
from medvault.formats.keybundle import Escrow, KeyBundle, Wrap

if TYPE_CHECKING:
    from medvault.chain import Chain
    from medvault.ipfs import IpfsClient
    from medvault.model import RecordPointer

__all__ = ["Core"]

BUNDLE_CACHE_BYTES = 8 << 20


class Core:
    def __init__(self, chain: Chain, ipfs: IpfsClient) -> None:
        self.chain = chain
        self.ipfs = ipfs
        self.suite = chain.deployment.key_suite
        self._bundles: OrderedDict[tuple[str, str], tuple[KeyBundle, int]] = OrderedDict()
        self._bundle_bytes = 0

    def now(self) -> int:
        """The chain's time (latest block), which decides every grant window."""
        return self.chain.block_time("latest")

    def record_context(self, patient: str, author: str, seq: int) -> RecordContext:
        """What binds record ``seq`` by ``author`` in ``patient``'s log to this deployment (AES
        associated data, HPKE info): all the author knows before it writes, and what the chain
        stores and emits with the record (``RecordAdded``'s ``author`` and ``seq``)."""
        return RecordContext(self.chain.chain_id, self.chain.records.address, patient, author, seq)

    def context_of(self, pointer: RecordPointer) -> RecordContext:
        """The context of the record ``pointer`` names, from its on-chain author and sequence number."""
        return self.record_context(pointer.patient, pointer.author, pointer.seq)

    def key_bundle(self, cid: str, patient: str, name: str = "") -> KeyBundle:
        """The key bundle ``cid`` from IPFS (checked against its CID), if it is one for ``patient``
        (IntegrityError naming it ``name``, else by its CID, if not); kept once parsed."""
        key = (cid, patient.lower())
        cached = self._bundles.get(key)
        if cached is not None:
            self._bundles.move_to_end(key)
            return cached[0]
        data = self.ipfs.cat(cid, kind="bundle")
        bundle = KeyBundle.parse(data, patient=patient, name=name or f"key bundle {cid}")
        if len(data) <= BUNDLE_CACHE_BYTES:
            self._bundles[key] = (bundle, len(data))
            self._bundle_bytes += len(data)
            while self._bundle_bytes > BUNDLE_CACHE_BYTES:
                _, (_, size) = self._bundles.popitem(last=False)
                self._bundle_bytes -= size
        return bundle

    def new_key_bundle(self, patient: str, wraps: list[Wrap], escrow: Escrow | None = None) -> KeyBundle:
        return KeyBundle(
            self.chain.chain_id, self.chain.records.address, patient, self.suite.name, tuple(wraps), escrow
        )

    def _unpin_quietly(self, *cids: str) -> None:
        """Undoes the adds of a write the chain refused; the original error is what matters."""
        for cid in cids:
            # If the node went away, pinned or not, nothing on chain points at these objects.
            with contextlib.suppress(MedvaultError):
                self.ipfs.unpin(cid)
