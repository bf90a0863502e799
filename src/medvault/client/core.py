"""What every capability of the client shares: the chain, the IPFS node, the deployment's HPKE
suite, chain time, and the key bundles of records (fetched, checked and parsed in one place)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from medvault.crypto import RecordContext
from medvault.errors import MedvaultError
from medvault.formats.keybundle import Escrow, KeyBundle, Wrap

if TYPE_CHECKING:
    from medvault.chain import Chain
    from medvault.ipfs import IpfsClient
    from medvault.model import RecordPointer

__all__ = ["Core"]


class Core:
    def __init__(self, chain: Chain, ipfs: IpfsClient) -> None:
        self.chain = chain
        self.ipfs = ipfs
        self.suite = chain.deployment.key_suite

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

    def key_bundle(self, cid: str, patient: str) -> KeyBundle:
        """The key bundle ``cid`` from IPFS (checked against its CID), if it is one for ``patient``."""
        return KeyBundle.parse(self.ipfs.cat(cid, kind="bundle"), patient=patient, name=f"key bundle {cid}")

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
