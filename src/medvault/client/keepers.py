"""Key-release keepers, from the patient's and the reader's side.

A patient may choose keepers (``set_keepers``); every record written from then on escrows its
key with them, t-of-n (``formats.keybundle.escrow_key``). A reader whom the chain lets read but
who holds no wrap of its own asks them (``release_key``); each keeper checks consent on chain
first (``medvault.keeper``) and posts a ``KeyReleased`` receipt for what it released (``releases``).

Changing keepers re-escrows: ``set_keepers`` splits the key of every existing record the patient
can open afresh for the new keepers, in one re-escrow bundle that the chain names with the set
(``keepersOf``). A record's escrow is then its entry in the current set's re-escrow bundle, or,
for a record written since, its own bundle's (``escrow_for``): keepers and readers use the same
rule. Removed keepers still hold their old shares; t of them colluding can combine those
offline, and nothing can recall them (only new content under new keys is out of their reach).

The keepers a reader asks are those of the chain's current set that the escrow names, never a
keeper (nor a URL) that only a bundle names; each announced URL is checked
(``medvault.keeper.urls``) before it is contacted.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import queue
import threading
from dataclasses import replace
from typing import TYPE_CHECKING

from eth_utils.address import to_checksum_address

from medvault.cids import cid_to_bytes
from medvault.client.participants import Participants
from medvault.crypto import decrypt_record, open_share
from medvault.errors import (
    AccessDeniedError,
    ConfigurationError,
    ContractError,
    DecryptionError,
    KeeperRefusedError,
    UnusableKeyError,
)
from medvault.escrow import combine_key
from medvault.formats.keybundle import escrow_key, served_escrow
from medvault.keeper.protocol import KeyRequest, Refusal, post_key_request, sign_key_request
from medvault.keeper.reads import ChainReads, escrow_cid_text
from medvault.keeper.urls import InvalidKeeperUrl, allow_private_keepers, check_keeper_url
from medvault.model import KeeperSet, KeyRelease

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from medvault.accounts import Wallet
    from medvault.chain import TxResult
    from medvault.formats.keybundle import Escrow, KeyBundle
    from medvault.model import RecordPointer

__all__ = ["Keepers"]

Answer = tuple[int, bytes] | Refusal  # a keeper's share (x, secret), or why not


class Keepers(Participants):
    def set_keepers(self, patient: Wallet, keepers: list[str], threshold: int) -> TxResult:
        """Chooses ``patient``'s keepers (registered accounts) and threshold; an empty list, with
        threshold 0, removes them. The keys of the patient's existing records (those its keys
        open) are re-escrowed for the new keepers in one bundle the chain names with the set."""
        keepers = [to_checksum_address(k) for k in keepers]
        for keeper in keepers:
            if not self.is_registered(keeper):
                raise ConfigurationError(
                    f"keeper {keeper} has no encryption key to escrow shares to (`medvault register`)"
                )
            try:
                self.usable_key(keeper)
            except UnusableKeyError as exc:
                raise UnusableKeyError(
                    f"keeper {keeper} cannot be chosen: no share can be escrowed to the encryption key it published "
                    f"({exc}); it must publish a new one (`medvault register --new-key`)"
                ) from None
        escrow_cid = self._reescrow(patient, keepers, threshold) if keepers and 1 <= threshold <= len(keepers) else None
        raw = cid_to_bytes(escrow_cid) if escrow_cid else b""
        fn = self.chain.keepers.functions.setKeepers(keepers, threshold, raw)
        try:
            return self.chain.transact(patient, fn, f"set {threshold}-of-{len(keepers)} keepers of {patient.address}")
        except ContractError:  # refused or failed; anything else may still land: the bundle stays
            if escrow_cid:
                self._unpin_quietly(escrow_cid)
            raise

    def _reescrow(self, patient: Wallet, keepers: list[str], threshold: int) -> str | None:
        """The CID of a bundle escrowing every existing record's key for ``keepers``; None if
        the patient has no record its keys open."""
        keeper_keys = {keeper: self.encryption_key(keeper) for keeper in keepers}
        # A record the patient's keys do not open, for whatever reason, keeps the keepers of its time.
        opened, _ = self.open_keys(patient, self.records(patient.address))  # type: ignore[attr-defined]
        escrows = [(p.index, escrow_key(self.context_of(p), key, threshold, keeper_keys)) for p, key in opened]
        if not escrows:
            return None
        bundle = self.new_key_bundle(patient.address, [])
        return self.ipfs.add(replace(bundle, escrows=tuple(escrows)).to_bytes(), kind="bundle")

    def keepers_of(self, patient: str, *, with_urls: bool = True) -> KeeperSet:
        patient = to_checksum_address(patient)
        keepers, threshold, escrow = self.chain.call(self.chain.keepers.functions.keepersOf(patient), "keepersOf")
        keepers = [to_checksum_address(k) for k in keepers]
        urls = self.keeper_urls(keepers) if with_urls else {}
        escrow_cid = escrow_cid_text(bytes(escrow)) if escrow else None
        return KeeperSet(patient, keepers, int(threshold), urls, escrow_cid)

    def escrow_for(self, pointer: RecordPointer, bundle: KeyBundle, keepers: KeeperSet) -> Escrow | None:
        """The escrow of ``pointer``'s key for ``keepers`` (the chain's set): its entry in the
        set's re-escrow bundle if there is one, else its own bundle's (``bundle``)."""
        reescrow = self.key_bundle(keepers.escrow_cid, pointer.patient) if keepers.escrow_cid else None
        return served_escrow(pointer.index, reescrow, lambda: bundle)

    def keeper_urls(self, keepers: list[str]) -> dict[str, str | None]:
        """The URL each keeper announced last (None if it never announced one)."""
        urls: dict[str, str | None] = {to_checksum_address(k): None for k in keepers}
        if urls:
            for event in self.chain.events("KeeperDirectory", "KeeperAnnounced", keeper=list(urls)):
                urls[to_checksum_address(event["args"]["keeper"])] = str(event["args"]["url"])
        return urls

    def announce_keeper(self, keeper: Wallet, url: str) -> TxResult:
        fn = self.chain.keepers.functions.announce(url)
        return self.chain.transact(keeper, fn, f"announce keeper {keeper.address} at {url}")

    def releases(self, patient: str, *, keeper: str | None = None) -> list[KeyRelease]:
        """The ``KeyReleased`` receipts of the patient's keepers, oldest first."""
        filters = {"patient": to_checksum_address(patient)}
        if keeper:
            filters["keeper"] = to_checksum_address(keeper)
        return [
            KeyRelease(
                patient=e["args"]["patient"],
                grantee=e["args"]["grantee"],
                keeper=e["args"]["keeper"],
                index=e["args"]["index"],
                released_at=e["args"]["releasedAt"],
                release_id="0x" + bytes(e["args"]["releaseId"]).hex(),
                tx_hash=e["transactionHash"].to_0x_hex(),
                block_number=e["blockNumber"],
                decided_at=e["args"]["decidedAt"],
                issued_at=e["args"]["issuedAt"],
            )
            for e in self.chain.events("KeeperDirectory", "KeyReleased", **filters)
        ]

    def release_key(
        self, reader: Wallet, pointer: RecordPointer, blob: bytes | None = None, timeout: float = 10.0
    ) -> bytes:
        """The record key of ``pointer`` from the keepers its bundle escrows it with; see
        ``released_key``, which also gives the plaintext when ``blob`` is passed."""
        bundle = self.record_bundle(pointer)  # type: ignore[attr-defined]
        return self.released_key(reader, pointer, bundle, blob, timeout)[0]

    def released_key(
        self,
        reader: Wallet,
        pointer: RecordPointer,
        bundle: KeyBundle,
        blob: bytes | None = None,
        timeout: float = 10.0,
    ) -> tuple[bytes, bytes | None]:
        """The record key escrowed in ``bundle`` (the record's own), and with ``blob`` (the
        record's ciphertext) the plaintext it decrypts to.

        Asks at once every keeper of the chain's current set that the record's escrow
        (``escrow_for``) names, with a signed ``KeyRequest`` to its checked URL, unwraps the
        shares as they come and returns as soon as ``threshold`` of them combine (a slow keeper
        does not hold the answer); with ``blob``, a combination that does not decrypt it is set
        aside for another. Raises KeeperRefusedError naming the keepers' reasons when fewer than
        ``threshold`` release. The keepers check consent themselves: this does not ask the chain
        first. The keeper set, the reader's key, the chain's time and the keepers' URLs come in
        one JSON-RPC batch (two if the chain's set re-escrowed the record for other keepers).
        """
        reads = self.chain_reads
        named: list[str] = [to_checksum_address(s.keeper) for s in bundle.escrow.shares] if bundle.escrow else []
        keeper_set, key_hash, issued_at = reads.asking(pointer.patient, reader.address, named)
        escrow = self.escrow_for(pointer, bundle, keeper_set)
        if escrow is None:
            raise AccessDeniedError(
                reader.address, pointer.patient, f"no key of record {pointer.index} was wrapped for it, nor escrowed"
            )
        threshold = escrow.threshold
        on_chain = set(keeper_set.keepers)
        expected: dict[str, int] = {
            to_checksum_address(s.keeper): s.x for s in escrow.shares if to_checksum_address(s.keeper) in on_chain
        }
        if not expected:
            raise KeeperRefusedError(
                reader.address, pointer.patient, 0, threshold,
                {"*": ("no-keeper", "no keeper the escrow names is in the patient's keeper set on chain")},
            )  # fmt: skip
        urls = keeper_set.urls | reads.keeper_urls([k for k in expected if k not in keeper_set.urls])
        allow_private = allow_private_keepers(self.chain.chain_id)
        context = self.context_of(pointer)
        pair = self.published_keys(reader, key_hash)
        directory = self.chain.keepers.address

        def ask(keeper: str) -> tuple[int, bytes] | Refusal:
            announced = urls[keeper]
            if announced is None:
                return Refusal("no-url", f"keeper {keeper} never announced a URL", 0)
            try:
                url = check_keeper_url(announced, allow_private=allow_private)
            except InvalidKeeperUrl as exc:
                return Refusal("bad-url", f"keeper {keeper}: {exc}", 0)
            request = KeyRequest(pointer.patient, pointer.index, reader.address, keeper, issued_at)
            try:
                release = post_key_request(
                    url, sign_key_request(reader, request, self.chain.chain_id, directory), timeout
                )
                x = expected[keeper]
                if release.keeper != keeper or release.x != x:
                    raise Refusal("bad-response", f"{url} answered for keeper {release.keeper}, share {release.x}", 0)
                info = context.release_info(reader.address, keeper, x)
                return x, open_share(release.wrap, pair, info, f"the share of record {pointer.index} from {keeper}")
            except Refusal as refusal:
                return refusal
            except DecryptionError as exc:
                return Refusal("bad-response", str(exc), 0)

        shares: list[tuple[int, bytes]] = []
        refusals: dict[str, Refusal] = {}
        for keeper, answer in _as_answered(ask, list(expected)):
            if isinstance(answer, Refusal):
                refusals[keeper] = answer
                continue
            shares.append(answer)
            # Only the combinations with the new share are new.
            for others in itertools.combinations(shares[:-1], threshold - 1):
                key = combine_key([*others, answer])
                if blob is None:
                    return key, None
                with contextlib.suppress(DecryptionError):
                    return key, decrypt_record(blob, key, context)
        if len(shares) >= threshold:
            refusals["*"] = Refusal(
                "bad-share", f"no {threshold} of the {len(shares)} released shares open the record", 0
            )
        reasons = {k: (r.reason, r.message) for k, r in refusals.items()}
        raise KeeperRefusedError(reader.address, pointer.patient, len(shares), threshold, reasons)

    @functools.cached_property
    def chain_reads(self) -> ChainReads:
        """Batched reads of this client's chain endpoint (``medvault.keeper.reads``)."""
        return ChainReads(self.chain)


def _as_answered(ask: Callable[[str], Answer], keepers: list[str]) -> Iterator[tuple[str, Answer]]:
    """``(keeper, ask(keeper))`` for every keeper, asked at once, in the order the answers come.
    The askers are daemon threads: one still waiting when the caller has what it needs holds
    up neither the caller nor the process's exit (its answer is dropped)."""
    answers: queue.SimpleQueue[tuple[str, Answer | None, BaseException | None]] = queue.SimpleQueue()

    def run(keeper: str) -> None:
        try:
            answers.put((keeper, ask(keeper), None))
        except BaseException as exc:  # raised in the caller's thread
            answers.put((keeper, None, exc))

    for keeper in keepers:
        threading.Thread(target=run, args=(keeper,), name=f"ask-keeper-{keeper[:8]}", daemon=True).start()
    for _ in keepers:
        keeper, answer, error = answers.get()
        if error is not None:
            raise error
        assert answer is not None
        yield keeper, answer
