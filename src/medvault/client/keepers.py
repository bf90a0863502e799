"""Key-release keepers, from the patient's and the reader's side.

A patient may choose keepers (``set_keepers``); every record written from then on escrows its
key with them, t-of-n (``formats.keybundle.escrow_key``). A reader whom the chain lets read but
who holds no wrap of its own asks them (``release_key``); each keeper checks consent on chain
first (``medvault.keeper``) and posts a ``KeyReleased`` receipt for what it released (``releases``).
"""

from __future__ import annotations

import contextlib
import itertools
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from eth_utils.address import to_checksum_address

from medvault.client.participants import Participants
from medvault.crypto import decrypt_record, open_share
from medvault.errors import AccessDeniedError, ConfigurationError, DecryptionError, KeeperRefusedError
from medvault.escrow import combine_key
from medvault.keeper.protocol import KeyRequest, Refusal, post_key_request, sign_key_request
from medvault.model import KeeperSet, KeyRelease

if TYPE_CHECKING:
    from medvault.accounts import Wallet
    from medvault.chain import TxResult
    from medvault.formats.keybundle import KeyBundle
    from medvault.model import RecordPointer

__all__ = ["Keepers"]


class Keepers(Participants):
    def set_keepers(self, patient: Wallet, keepers: list[str], threshold: int) -> TxResult:
        """Chooses ``patient``'s keepers (registered accounts) and threshold; an empty list, with
        threshold 0, removes them. Records written before keep the keepers of their time."""
        keepers = [to_checksum_address(k) for k in keepers]
        for keeper in keepers:
            if not self.is_registered(keeper):
                raise ConfigurationError(
                    f"keeper {keeper} has no encryption key to escrow shares to (`medvault register`)"
                )
        fn = self.chain.keepers.functions.setKeepers(keepers, threshold)
        return self.chain.transact(patient, fn, f"set {threshold}-of-{len(keepers)} keepers of {patient.address}")

    def keepers_of(self, patient: str, *, with_urls: bool = True) -> KeeperSet:
        patient = to_checksum_address(patient)
        keepers, threshold = self.chain.call(self.chain.keepers.functions.keepersOf(patient), "keepersOf")
        keepers = [to_checksum_address(k) for k in keepers]
        urls = self.keeper_urls(keepers) if with_urls else {}
        return KeeperSet(patient, keepers, int(threshold), urls)

    def keeper_urls(self, keepers: list[str]) -> dict[str, str | None]:
        """The URL each keeper announced last (None if it never announced one)."""
        urls: dict[str, str | None] = {}
        for keeper in keepers:
            events = self.chain.events("KeeperDirectory", "KeeperAnnounced", keeper=to_checksum_address(keeper))
            urls[to_checksum_address(keeper)] = str(events[-1]["args"]["url"]) if events else None
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
            )
            for e in self.chain.events("KeeperDirectory", "KeyReleased", **filters)
        ]

    def release_key(
        self, reader: Wallet, pointer: RecordPointer, blob: bytes | None = None, timeout: float = 10.0
    ) -> bytes:
        """The record key of ``pointer`` from the keepers its bundle escrows it with; see
        ``released_key``, which also gives the plaintext when ``blob`` is passed."""
        bundle = self.key_bundle(pointer.keys_cid, pointer.patient)
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

        Asks every keeper at once with a signed ``KeyRequest``, unwraps the shares they release
        and combines ``threshold`` of them; with ``blob``, a combination that does not decrypt it
        is set aside for another. Raises KeeperRefusedError naming the keepers' reasons when
        fewer than ``threshold`` release. The keepers check consent themselves: this does not
        ask the chain first.
        """
        escrow = bundle.escrow
        if escrow is None:
            raise AccessDeniedError(
                reader.address, pointer.patient, f"no key of record {pointer.index} was wrapped for it, nor escrowed"
            )
        threshold = escrow.threshold
        expected: dict[str, int] = {to_checksum_address(s.keeper): s.x for s in escrow.shares}
        urls = self.keeper_urls(list(expected))
        context = self.context_of(pointer)
        pair = self.published_keys(reader)
        directory, issued_at = self.chain.keepers.address, self.now()

        def ask(keeper: str) -> tuple[int, bytes] | Refusal:
            url = urls[keeper]
            if url is None:
                return Refusal("no-url", f"keeper {keeper} never announced a URL", 0)
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

        with ThreadPoolExecutor(max_workers=len(expected)) as pool:
            answers = dict(zip(expected, pool.map(ask, expected), strict=True))
        shares = [a for a in answers.values() if not isinstance(a, Refusal)]
        refusals: dict[str, Refusal] = {k: a for k, a in answers.items() if isinstance(a, Refusal)}
        if len(shares) >= threshold:
            for subset in itertools.combinations(shares, threshold):
                key = combine_key(list(subset))
                if blob is None:
                    return key, None
                with contextlib.suppress(DecryptionError):
                    return key, decrypt_record(blob, key, context)
            refusals["*"] = Refusal(
                "bad-share", f"no {threshold} of the {len(shares)} released shares open the record", 0
            )
        reasons = {k: (r.reason, r.message) for k, r in refusals.items()}
        raise KeeperRefusedError(reader.address, pointer.patient, len(shares), threshold, reasons)
