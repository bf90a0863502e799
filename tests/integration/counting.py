"""A client whose IPFS fetches, chain log reads and decryptions are counted, to check that the
data path walks forward (each object fetched once, each ciphertext decrypted once)."""

from __future__ import annotations

from collections import Counter
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import medvault.client.keepers as keepers_module
import medvault.client.records as records_module
from medvault.client import Medvault
from medvault.ipfs import IpfsClient

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pytest

__all__ = ["Counted", "counted_client"]


class Counted:
    def __init__(self) -> None:
        self.cats: Counter[str] = Counter()  # IPFS fetches, by CID
        self.logs: Counter[str] = Counter()  # chain event reads, by event name
        self.decryptions = 0


class _CountingIpfs(IpfsClient):
    def __init__(self, api_url: str, counts: Counted) -> None:
        super().__init__(api_url)
        self.counts = counts

    def cat(self, cid: str, *args: Any, **kwargs: Any) -> bytes:
        self.counts.cats[cid] += 1
        return super().cat(cid, *args, **kwargs)


@contextmanager
def counted_client(mv: Medvault, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Medvault, Counted]]:
    """A client on ``mv``'s deployment whose reads are counted; ``mv`` itself is left alone."""
    counts = Counted()
    ipfs = _CountingIpfs(mv.ipfs.api_url, counts)
    client = Medvault(mv.chain, ipfs)
    events = mv.chain.events

    def counting_events(contract: str, event: str, **filters: Any) -> list[Any]:
        counts.logs[event] += 1
        return events(contract, event, **filters)

    def counting_decrypt(real: Any) -> Any:
        def decrypt(blob: bytes, key: bytes, context: Any) -> bytes:
            counts.decryptions += 1
            return real(blob, key, context)

        return decrypt

    with monkeypatch.context() as patch:
        patch.setattr(mv.chain, "events", counting_events)
        for module in (records_module, keepers_module):
            patch.setattr(module, "decrypt_record", counting_decrypt(module.decrypt_record))
        try:
            yield client, counts
        finally:
            ipfs.close()
