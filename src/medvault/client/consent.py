"""Consent: grants, revocations, delegates, research requests and emergency access.

Break-glass access is opt-in: the patient's emergency policy (``set_emergency_policy``) says who
may take it, which categories it opens and whether it opens earlier records; the patient can
allow or block single providers (``set_emergency_standing``). Delegates act within the terms
the patient appointed them on (``DelegateTerms``); their grants end with them unless kept.

Each change is built once (``*_change``: a ``ConsentChange``, the EIP-712 message the contract
takes), then sent by ``submit`` or signed by ``sign`` for anyone to ``relay``. A change the
patient makes shares the record keys in scope with the grantee (one key bundle in IPFS, its CID
in the change); a delegate cannot open them, so a delegate's grant opens only records written
from then on, or released by the keepers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eth_utils.address import to_checksum_address

from medvault.cids import cid_from_bytes, cid_to_bytes
from medvault.client.consent_sig import (
    REQUEST_FIELDS,
    ConsentChange,
    SignedConsent,
    check_relayable,
    consent_call,
    relationship_nonce,
    sign_consent,
    typed_data,
)
from medvault.client.records import Records
from medvault.errors import ConfigurationError, ContractError, UnusableKeyError
from medvault.formats.keybundle import wrap_for
from medvault.model import (
    ALL_CATEGORIES,
    AccessRequest,
    Category,
    DelegateTerms,
    EmergencyMode,
    EmergencyPolicy,
    EmergencyStanding,
    GrantReceipt,
    GrantTerms,
    Purpose,
    RecordPointer,
    RequestStatus,
    categories_of,
    scope_mask,
)
from medvault.words import utc

if TYPE_CHECKING:
    from web3.contract.contract import ContractFunction

    from medvault.accounts import Wallet
    from medvault.chain import TxResult

__all__ = ["DEFAULT_DELEGATE_TERMS", "GRANT_ATTEMPTS", "REQUEST_TTL", "SIGNATURE_LIFETIME", "Consent", "study_id"]

SIGNATURE_LIFETIME = 7 * 86400  # a signed consent change must be relayed within a week
GRANT_ATTEMPTS = 3  # sends of one grant racing record writes before grant gives up
REQUEST_TTL = 30 * 86400  # ConsentManager.REQUEST_TTL: a request is approvable this long
# A delegate appointed with no terms named: every category, windows up to 90 days, no history.
DEFAULT_DELEGATE_TERMS = DelegateTerms(frozenset(Category), 90 * 86400, open_history=False)


class Consent(Records):
    def grant_change(
        self,
        actor: Wallet | None,
        patient: str,
        grantee: str,
        terms: GrantTerms,
        *,
        log: list[RecordPointer] | None = None,
        share_keys: bool = True,
    ) -> ConsentChange:
        """A grant on ``terms``. When the patient acts, the keys of their records in scope (of
        ``log``, the patient's record log if the caller has read it) are wrapped for the grantee
        and published with the grant (a delegate cannot open them), unless ``share_keys`` is
        false or the window opens later: then the grantee gets each key from the keepers, who
        check the grant at each request, and holds none before its window opens. ``actor`` is
        None when a wallet outside this home signs: it shares no keys."""
        patient, grantee = to_checksum_address(patient), to_checksum_address(grantee)
        in_scope = []  # only the patient holds the keys to share
        if share_keys and actor is not None and actor.address == patient and terms.valid_from <= self.now():
            in_scope = [p for p in (self.records(patient) if log is None else log) if p.category in terms.scopes]
        change = ConsentChange("Grant", {
            "patient": patient, "grantee": grantee, "scopes": scope_mask(terms.scopes), "purpose": int(terms.purpose),
            "validFrom": terms.valid_from, "validUntil": terms.valid_until, "keysCid": b"",
        })  # fmt: skip
        if actor is None or not in_scope:
            return change
        self.check(actor, change)  # a grant the chain refuses publishes no key bundle
        keys_cid, skipped = self._share_keys(actor, patient, grantee, in_scope)
        return ConsentChange("Grant", {**change.message, "keysCid": keys_cid}, skipped)

    def grant(
        self, actor: Wallet, patient: str, grantee: str, terms: GrantTerms, *, share_keys: bool = True
    ) -> GrantReceipt:
        """Sends a grant, reading the record log once; sends it again if a record in scope
        landed while the first was in flight (its key would not have been shared). The receipt
        names the records in scope whose keys could not be shared (each change shares the
        whole log it read, so the last change's are all of them)."""
        patient = to_checksum_address(patient)
        if not share_keys or terms.valid_from > self.now():
            return GrantReceipt(
                [self.submit(actor, self.grant_change(actor, patient, grantee, terms, share_keys=False))]
            )
        log = self.records(patient)
        results = []
        for _ in range(GRANT_ATTEMPTS):
            change = self.grant_change(actor, patient, grantee, terms, log=log)
            results.append(self.submit(actor, change))
            if self.record_count(patient) == len(log):
                return GrantReceipt(results, change.skipped)
            landed, log = log, self.records(patient)
            if sum(p.category in terms.scopes for p in log) == sum(p.category in terms.scopes for p in landed):
                return GrantReceipt(results, change.skipped)
        sent = ", ".join(r.tx_hash for r in results)
        raise ConfigurationError(
            f"the grant to {grantee} holds (tx {sent}), but records in scope kept landing while it was sent, "
            f"{GRANT_ATTEMPTS} times: the newest are not shared with it; the keepers release them, "
            "or grant again once writing stops"
        )

    def share_keys(self, patient: Wallet, grantee: str, scopes: frozenset[Category] | None = None) -> TxResult:
        """Hands ``grantee`` the keys of the patient's existing records in ``scopes`` (default:
        the scopes of its current grant), e.g. after a grant a delegate made, which shares none.
        It grants no access by itself, and hands out nothing while the grantee's grant has not
        opened yet (no wraps ahead of a window: a grant revoked before it opens held no key)."""
        grantee = to_checksum_address(grantee)
        grant = self.grant_of(patient.address, grantee)
        if grant is not None and grant.valid_from > self.now():
            raise ConfigurationError(
                f"the grant of {patient.address} to {grantee} opens at {utc(grant.valid_from)} "
                f"(chain time {utc(self.now())}): "
                "no key is handed out ahead of it; once it opens, share keys then, or the keepers release them"
            )
        if scopes is None:
            if grant is None:
                raise ConfigurationError(f"{patient.address} holds no grant to {grantee}: name the scopes to share")
            scopes = grant.scopes
        pointers = [p for p in self.records(patient.address) if p.category in scopes]
        if not pointers:
            raise ConfigurationError(f"{patient.address} has no records in scope to share with {grantee}")
        keys_cid, skipped = self._share_keys(patient, patient.address, grantee, pointers)
        if not keys_cid:
            raise ConfigurationError(
                f"none of the {len(pointers)} records in scope opens with the keys of {patient.address}: "
                f"nothing to share with {grantee} ({'; '.join(f'record {i}: {why}' for i, why in skipped.items())})"
            )
        fn = self.chain.consent.functions.shareKeys(grantee, keys_cid)
        try:
            return self.chain.transact(patient, fn, f"share keys of {patient.address} with {grantee}")
        except ContractError:  # refused or failed; anything else may still land: the bundle stays
            self._unpin_quietly(cid_from_bytes(keys_cid))
            raise

    def revoke_change(self, patient: str, grantee: str) -> ConsentChange:
        return ConsentChange(
            "Revoke", {"patient": to_checksum_address(patient), "grantee": to_checksum_address(grantee)}
        )

    def revoke(self, actor: Wallet, patient: str, grantee: str) -> TxResult:
        return self.submit(actor, self.revoke_change(patient, grantee))

    def delegate_change(
        self,
        patient: str,
        delegate: str,
        *,
        appoint: bool = True,
        terms: DelegateTerms | None = None,
        keep_grants: bool = False,
    ) -> ConsentChange:
        """Appoints ``delegate`` on ``terms`` (default ``DEFAULT_DELEGATE_TERMS``), or removes it;
        a removal ends the grants it made unless ``keep_grants``."""
        message: dict[str, object] = {
            "patient": to_checksum_address(patient),
            "delegate": to_checksum_address(delegate),
        }
        if not appoint:
            return ConsentChange("RemoveDelegate", {**message, "keepGrants": keep_grants})
        terms = terms or DEFAULT_DELEGATE_TERMS
        if not terms.scopes or terms.max_duration <= 0 or terms.max_duration >= 1 << 40:
            raise ConfigurationError("a delegate's terms need at least one category and a longest window above 0")
        return ConsentChange("AppointDelegate", {
            **message, "scopes": scope_mask(terms.scopes), "maxDuration": terms.max_duration,
            "openHistory": terms.open_history,
        })  # fmt: skip

    def set_delegate(
        self,
        patient: Wallet,
        delegate: str,
        *,
        appoint: bool = True,
        terms: DelegateTerms | None = None,
        keep_grants: bool = False,
    ) -> TxResult:
        """Appoints ``delegate`` on ``terms``, or removes it (ending its grants unless
        ``keep_grants``); a delegate manages the patient's consent within its terms."""
        change = self.delegate_change(patient.address, delegate, appoint=appoint, terms=terms, keep_grants=keep_grants)
        return self.submit(patient, change)

    def is_delegate(self, patient: str, delegate: str) -> bool:
        return self.delegate_terms(patient, delegate) is not None

    def delegate_terms(self, patient: str, delegate: str) -> DelegateTerms | None:
        """The terms ``delegate`` is appointed on, or None if it is not appointed now."""
        fn = self.chain.consent.functions.delegationOf(to_checksum_address(patient), to_checksum_address(delegate))
        appointed, _nonce, _appointment, scopes, max_duration, open_history = self.chain.call(fn, "delegationOf")
        return DelegateTerms(categories_of(scopes), max_duration, open_history) if appointed else None

    def invalidate_nonce(self, actor: Wallet, patient: str, counterpart: str) -> TxResult:
        """Voids every outstanding signature about (patient, counterpart) without granting: the
        patient's own call also voids delegation signatures; a delegate's only grant ones."""
        patient, counterpart = to_checksum_address(patient), to_checksum_address(counterpart)
        functions = self.chain.consent.functions
        if actor.address == patient:
            fn = functions.invalidateNonce(counterpart)
        else:
            fn = functions.invalidateNonceFor(patient, counterpart)
        return self.chain.transact(actor, fn, f"invalidate signatures of {patient} about {counterpart}")

    # -- emergency (break-glass) policy ---------------------------------------------------------

    def set_emergency_policy(
        self,
        patient: Wallet,
        mode: EmergencyMode,
        *,
        scopes: frozenset[Category] | None = None,
        full_history: bool = False,
    ) -> TxResult:
        """Sets who may take break-glass access (nobody, named providers, any accredited one),
        the categories it opens (default: all, or none for mode NONE) and whether it opens
        records written before it."""
        default = 0 if mode is EmergencyMode.NONE else ALL_CATEGORIES
        mask = default if scopes is None else scope_mask(scopes)
        fn = self.chain.consent.functions.setEmergencyPolicy(int(mode), mask, full_history)
        return self.chain.transact(patient, fn, f"emergency policy of {patient.address}")

    def set_emergency_standing(self, patient: Wallet, provider: str, standing: EmergencyStanding) -> TxResult:
        """Allows or blocks ``provider``'s break-glass access (a block ends a live one at once)."""
        fn = self.chain.consent.functions.setEmergencyStanding(to_checksum_address(provider), int(standing))
        return self.chain.transact(patient, fn, f"emergency {standing.name.lower()} {provider}")

    def emergency_policy(self, patient: str) -> EmergencyPolicy:
        fn = self.chain.consent.functions.emergencyPolicyOf(to_checksum_address(patient))
        mode, scopes, full_history = self.chain.call(fn, "emergencyPolicyOf")
        return EmergencyPolicy(EmergencyMode(mode), categories_of(scopes), bool(full_history))

    def emergency_standing(self, patient: str, provider: str) -> EmergencyStanding:
        fn = self.chain.consent.functions.grantOf(to_checksum_address(patient), to_checksum_address(provider))
        return EmergencyStanding(self.chain.call(fn, "grantOf")[7])

    def decision_change(
        self, actor: Wallet | None, request: AccessRequest, *, approve: bool, share_keys: bool = True
    ) -> ConsentChange:
        """Approves or denies a request. An approval by the patient shares the in-scope record
        keys, unless ``share_keys`` is false: then the researcher gets each key from the
        patient's keepers, who check the grant at every request."""
        fields = dict(zip(REQUEST_FIELDS, request.as_tuple(), strict=True))
        if not approve:
            return ConsentChange("DenyRequest", fields)
        if not self.chain.participants.functions.isResearcher(request.researcher).call():
            # The chain would accept it, but the grant opens nothing while the role is withdrawn.
            raise ConfigurationError(
                f"{request.researcher} is no longer an accredited researcher: approving its request would open nothing"
            )
        change = ConsentChange("ApproveRequest", {**fields, "keysCid": b""})
        in_scope = []  # only the patient holds the keys to share
        if share_keys and actor is not None and actor.address == request.patient:
            in_scope = [p for p in self.records(request.patient) if p.category in request.scopes]
        if actor is None or not in_scope:
            return change
        self.check(actor, change)  # an approval the chain refuses publishes no key bundle
        keys_cid, skipped = self._share_keys(actor, request.patient, request.researcher, in_scope)
        return ConsentChange("ApproveRequest", {**fields, "keysCid": keys_cid}, skipped)

    def decide_request(self, actor: Wallet, request: AccessRequest, *, approve: bool) -> TxResult:
        return self.submit(actor, self.decision_change(actor, request, approve=approve))

    def submit(self, actor: Wallet, change: ConsentChange) -> TxResult:
        """Sends ``change`` from ``actor``: the patient by plain transaction; a delegate by
        signing it and relaying the signature itself (the contract takes a delegate's word
        for a patient only in signed form)."""
        if self._direct(actor.address, change):
            return self._send(actor, change, consent_call(self.chain, change))
        self.check(actor, change)  # the chain's own refusal, in its words, for one who signs for a patient
        return self.relay(actor, self.sign(actor, change))

    @staticmethod
    def _direct(actor: str, change: ConsentChange) -> bool:
        return actor == change.patient or change.action in ("ApproveRequest", "DenyRequest")

    def check(self, actor: Wallet, change: ConsentChange) -> None:
        """Refuses ``change`` as the chain would if ``actor`` submitted it now, sending and
        publishing nothing: a dry run of the call ``submit`` makes (signed in memory where
        that call needs a signature). Run it before handing out a signature (``sign``)."""
        action = f"{change.action} for {change.patient}"
        if self._direct(actor.address, change):
            self.chain.dry_run(actor.address, consent_call(self.chain, change), action)
        else:
            auth = self.sign(actor, change).authorization()
            self.chain.dry_run(actor.address, consent_call(self.chain, change, auth), action)

    def sign(self, signer: Wallet, change: ConsentChange, lifetime: int = SIGNATURE_LIFETIME) -> SignedConsent:
        """Signs ``change`` as EIP-712 typed data, valid for ``lifetime`` seconds of chain time."""
        return sign_consent(self.chain, signer, change, deadline=self.now() + lifetime)

    def unsigned(self, signer: str, change: ConsentChange, lifetime: int = SIGNATURE_LIFETIME) -> dict[str, Any]:
        """``change`` as the eth_signTypedData_v4 document ``signer`` (a wallet outside this
        home) signs, valid for ``lifetime`` seconds of chain time; relay it with the signature.
        A change the chain would refuse is refused first, where the signer's own call shows it
        (a delegate's grant or revoke is checked only once signed, at relay)."""
        signer = to_checksum_address(signer)
        if self._direct(signer, change):
            self.chain.dry_run(signer, consent_call(self.chain, change), f"{change.action} for {change.patient}")
        nonce = relationship_nonce(self.chain, change, signer)
        return typed_data(self.chain, change, nonce, self.now() + lifetime)

    def relay(self, relayer: Wallet, signed: SignedConsent, *, clean_up: bool = True) -> TxResult:
        """Sends someone's signed consent change from ``relayer``'s account (who pays the gas),
        once it is checked to be one the contract takes (see ``check_relayable``). A relayer
        serving strangers passes ``clean_up=False``: what a refused change names is then left
        pinned, since a document sent to it could name anyone's object."""
        try:
            check_relayable(self.chain, signed, self.now())
        except ConfigurationError:
            # Only the patient's own signature makes its key bundle theirs to clean up: a forged
            # document could name any object this node holds (a record, its keys).
            if clean_up and _signed_by(signed) == signed.change.patient:
                self._unpin_unreferenced(signed.change)
            raise
        fn = consent_call(self.chain, signed.change, signed.authorization())
        if not clean_up:
            return self.chain.transact(relayer, fn, f"{signed.change.action} for {signed.change.patient}")
        return self._send(relayer, signed.change, fn)

    def request_access(
        self, researcher: Wallet, patient: str, scopes: frozenset[Category], purpose: Purpose, duration: int, study: str
    ) -> tuple[AccessRequest, TxResult]:
        """An accredited researcher asks ``patient`` for ``duration`` seconds of access from approval."""
        fn = self.chain.consent.functions.requestAccess(
            to_checksum_address(patient), scope_mask(scopes), int(purpose), duration, study_id(study)
        )
        tx = self.chain.transact(researcher, fn, f"request access to {patient}")
        return next(r for r in self.requests(researcher=researcher.address) if r.tx_hash == tx.tx_hash), tx

    def requests(self, *, patient: str | None = None, researcher: str | None = None) -> list[AccessRequest]:
        """Research requests (to a patient, or by a researcher) with their current status."""
        filters = {k: to_checksum_address(v) for k, v in (("patient", patient), ("researcher", researcher)) if v}
        result = []
        for event in self.chain.events("ConsentManager", "AccessRequested", **filters):
            a = event["args"]
            result.append(
                AccessRequest(
                    patient=a["patient"],
                    researcher=a["researcher"],
                    scopes=categories_of(a["scopes"]),
                    purpose=Purpose(a["purpose"]),
                    duration=a["duration"],
                    requested_at=a["requestedAt"],
                    study_id=bytes(a["studyId"]),
                    request_id=a["requestId"],
                    status=RequestStatus(self.chain.consent.functions.requestStatus(a["requestId"]).call()),
                    tx_hash=event["transactionHash"].to_0x_hex(),
                )
            )
        return result

    def request_expired(self, request: AccessRequest, now: int | None = None) -> bool:
        """Whether a pending request can no longer be approved (``REQUEST_TTL`` after it was made)."""
        return (self.now() if now is None else now) >= request.requested_at + REQUEST_TTL

    def request(self, request_id: int) -> AccessRequest:
        for request in self.requests():
            if request.request_id == request_id:
                return request
        raise ConfigurationError(f"no research request {request_id:#x} on this deployment")

    def take_emergency_access(self, provider: Wallet, patient: str, reason: str) -> TxResult:
        fn = self.chain.consent.functions.takeEmergencyAccess(to_checksum_address(patient), reason)
        return self.chain.transact(provider, fn, f"emergency access to {patient}")

    def _share_keys(
        self, actor: Wallet, patient: str, grantee: str, pointers: list[RecordPointer]
    ) -> tuple[bytes, dict[int, str]]:
        """Wraps the keys of ``pointers`` for ``grantee`` in a bundle in IPFS: its binary CID
        (empty if none), and the records whose keys the patient's keys do not open, by index,
        with why (shared without them: the keepers release those, as for ``--no-share``).

        Only the patient holds these keys: when a delegate acts, or there is nothing to share,
        no bundle is made and the grantee can read only records written from then on.
        """
        if actor.address != patient or not pointers:
            return b"", {}
        if not self.is_registered(grantee):
            raise ConfigurationError(
                f"no record key can be shared with {grantee}: it has not registered an encryption key; it must "
                "register first (`medvault register`), or grant with --no-share"
            )
        try:
            recipient = self.usable_key(grantee)
        except UnusableKeyError as exc:
            raise UnusableKeyError(
                f"no record key can be shared with {grantee}: the encryption key it published cannot be used "
                f"({exc}); it must publish a new one (`medvault register --new-key`), or grant with --no-share"
            ) from None
        opened, skipped = self.open_keys(actor, pointers)
        if not opened:
            return b"", skipped
        wraps = [wrap_for(self.context_of(p), key, grantee, recipient) for p, key in opened]
        return cid_to_bytes(self.ipfs.add(self.new_key_bundle(patient, wraps).to_bytes(), kind="bundle")), skipped

    def _send(self, sender: Wallet, change: ConsentChange, fn: ContractFunction) -> TxResult:
        try:
            return self.chain.transact(sender, fn, f"{change.action} for {change.patient}")
        except ContractError:  # refused or failed; anything else may still land: the bundle stays
            self._unpin_unreferenced(change)
            raise

    def _unpin_unreferenced(self, change: ConsentChange) -> None:
        """After ``change`` failed: unpins its key bundle if nothing on chain points at it."""
        keys_cid = bytes(change.message.get("keysCid") or b"")
        if keys_cid and not self._shared_on_chain(change.patient, keys_cid):
            self._unpin_quietly(cid_from_bytes(keys_cid))

    def _shared_on_chain(self, patient: str, keys_cid: bytes) -> bool:
        """Whether a transaction on chain shared the bundle ``keys_cid`` (the same signed change
        relayed before, or by someone faster): then a failed send must not unpin it."""
        try:
            events = self.chain.events("ConsentManager", "KeysShared", patient=patient)
        except Exception:  # the chain cannot tell us: keep the bundle rather than risk a live one
            return True
        return any(bytes(event["args"]["keysCid"]) == keys_cid for event in events)


def _signed_by(signed: SignedConsent) -> str | None:
    try:
        return signed.signer()
    except ConfigurationError:
        return None


def study_id(study: str) -> bytes:
    """A study id as bytes32: 0x and 64 hex digits, or a label of 1 to 32 bytes."""
    if study.startswith("0x") and len(study) == 66:
        return bytes.fromhex(study[2:])
    raw = study.encode()
    if not raw or len(raw) > 32:
        raise ConfigurationError(f"study id {study!r} must be 1 to 32 bytes, or 0x and 64 hex digits")
    return raw.ljust(32, b"\0")
