"""The consent model end to end on anvil: scope, windows, signatures, delegates, requests,
emergency access, audit and the FHIR export."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from data import DAY, LAB, LABS, MEDS
from helpers import add, grant, refused

from medvault.client.consent_sig import SignedConsent
from medvault.errors import AccessDeniedError, ConfigurationError
from medvault.fhir import validate_resource
from medvault.fhir.consent import grant_to_fhir_consent
from medvault.model import Category, EmergencyMode, EmergencyStanding, GrantTerms, Purpose, RequestStatus, Role

if TYPE_CHECKING:
    from helpers import ChainClock

    from medvault.accounts import Wallet
    from medvault.client import Medvault

pytestmark = pytest.mark.integration


def test_access_holds_only_in_scope(mv: Medvault, provider: Wallet, patient: Wallet, doctor: Wallet) -> None:
    lab = add(mv, provider, patient).index
    meds = add(mv, provider, patient, MEDS, Category.MEDICATIONS).index
    grant(mv, patient, doctor, LABS)

    assert mv.read_record(doctor, patient.address, lab).data == LAB
    with pytest.raises(AccessDeniedError, match="medications, outside the grant's scope"):
        mv.read_record(doctor, patient.address, meds)
    later = add(mv, provider, patient, MEDS, Category.MEDICATIONS).index  # not even wrapped for the doctor
    with pytest.raises(AccessDeniedError, match="was ever wrapped for it"):
        mv.open_key(doctor, mv.records(patient.address)[later])


def test_future_dated_grant_opens_at_its_start_and_closes_at_its_end(
    mv: Medvault, provider: Wallet, patient: Wallet, doctor: Wallet, clock: ChainClock
) -> None:
    start = clock.now() + DAY
    grant(mv, patient, doctor, LABS, start, start + DAY)
    before = add(mv, provider, patient).index  # not wrapped for the doctor: its window is not open

    with pytest.raises(AccessDeniedError, match="its grant starts at"):
        mv.read_record(doctor, patient.address, before)
    clock.advance(DAY)
    # Inside the window: a record written now is wrapped for it; the earlier one only keepers
    # could release (this patient has none), so it stays closed.
    during = add(mv, provider, patient).index
    assert mv.read_record(doctor, patient.address, during).data == LAB
    with pytest.raises(AccessDeniedError, match="no key of record"):
        mv.read_record(doctor, patient.address, before)
    clock.advance(DAY)
    with pytest.raises(AccessDeniedError, match="expired"):
        mv.read_record(doctor, patient.address, during)


def test_future_dated_grant_shares_no_record_key_at_grant_time(
    mv: Medvault, provider: Wallet, patient: Wallet, doctor: Wallet, clock: ChainClock
) -> None:
    written = add(mv, provider, patient).index
    start = clock.now() + DAY
    grant(mv, patient, doctor, LABS, start, start + DAY)

    assert not any(e["args"]["grantee"] == doctor.address for e in mv.chain.events("ConsentManager", "KeysShared"))
    clock.advance(DAY)
    # Inside the window, but the key was never handed out: only keepers could release it.
    with pytest.raises(AccessDeniedError, match="no key of record"):
        mv.read_record(doctor, patient.address, written)


def test_grant_without_sharing_keys_hands_out_none(
    mv: Medvault, provider: Wallet, patient: Wallet, doctor: Wallet
) -> None:
    written = add(mv, provider, patient).index
    terms = GrantTerms(LABS, Purpose.TREAT, mv.now(), mv.now() + DAY)
    mv.grant(patient, patient.address, doctor.address, terms, share_keys=False)

    assert mv.grant_of(patient.address, doctor.address) is not None
    with pytest.raises(AccessDeniedError, match="no key of record"):
        mv.read_record(doctor, patient.address, written)


def test_a_grant_can_be_narrowed(mv: Medvault, provider: Wallet, patient: Wallet, doctor: Wallet) -> None:
    meds = add(mv, provider, patient, MEDS, Category.MEDICATIONS).index
    grant(mv, patient, doctor)
    assert mv.read_record(doctor, patient.address, meds).data == MEDS

    grant(mv, patient, doctor, LABS)

    with pytest.raises(AccessDeniedError, match="outside the grant's scope"):
        mv.read_record(doctor, patient.address, meds)


def test_grant_by_signature_relayed_by_anyone(
    mv: Medvault, provider: Wallet, patient: Wallet, doctor: Wallet, stranger: Wallet
) -> None:
    index = add(mv, provider, patient).index
    change = mv.grant_change(
        patient, patient.address, doctor.address, GrantTerms(LABS, Purpose.TREAT, mv.now(), mv.now() + DAY)
    )
    signed = SignedConsent.from_json(mv.sign(patient, change).to_json())  # as it travels between machines

    assert signed.typed_data["domain"]["chainId"] == mv.chain.chain_id
    assert signed.typed_data["domain"]["verifyingContract"] == mv.chain.consent.address
    balance = mv.chain.w3.eth.get_balance(patient.address)
    mv.relay(stranger, signed)

    assert mv.chain.w3.eth.get_balance(patient.address) == balance  # gasless for the patient
    assert mv.read_record(doctor, patient.address, index).data == LAB


def _signed_revoke(mv: Medvault, patient: Wallet, doctor: Wallet) -> SignedConsent:
    grant(mv, patient, doctor, LABS)
    return mv.sign(patient, mv.revoke_change(patient.address, doctor.address))


def _tampered(signed: SignedConsent, **domain: object) -> SignedConsent:
    typed = json.loads(json.dumps(signed.typed_data))
    typed["domain"].update(domain)
    return SignedConsent(typed, signed.signature)


def test_replayed_signature_is_refused(mv: Medvault, patient: Wallet, doctor: Wallet, stranger: Wallet) -> None:
    signed = _signed_revoke(mv, patient, doctor)
    mv.relay(stranger, signed)
    grant(mv, patient, doctor, LABS)

    with pytest.raises(ConfigurationError, match="it was relayed already"):
        mv.relay(stranger, signed)
    assert mv.grant_of(patient.address, doctor.address) is not None


def test_a_later_change_voids_an_unrelayed_signature(
    mv: Medvault, patient: Wallet, doctor: Wallet, stranger: Wallet
) -> None:
    signed = _signed_revoke(mv, patient, doctor)
    grant(mv, patient, doctor)

    with pytest.raises(ConfigurationError, match="voided by a later change"):
        mv.relay(stranger, signed)


def test_expired_signature_is_refused(
    mv: Medvault, patient: Wallet, doctor: Wallet, stranger: Wallet, clock: ChainClock
) -> None:
    grant(mv, patient, doctor, LABS, clock.now(), clock.now() + 30 * DAY)
    signed = mv.sign(patient, mv.revoke_change(patient.address, doctor.address), lifetime=60)
    clock.advance(61)

    with pytest.raises(ConfigurationError, match="expired at .* UTC: ask its signer for a new one"):
        mv.relay(stranger, signed)


def test_signature_for_another_chain_or_contract_is_refused_by_name(
    mv: Medvault, patient: Wallet, doctor: Wallet, stranger: Wallet
) -> None:
    signed = _signed_revoke(mv, patient, doctor)

    with pytest.raises(ConfigurationError, match="is for chain 1, this is chain"):
        mv.relay(stranger, _tampered(signed, chainId=1))
    with pytest.raises(ConfigurationError, match="is for the ConsentManager at .*, this deployment's is at"):
        mv.relay(stranger, _tampered(signed, verifyingContract=mv.chain.records.address))
    assert mv.grant_of(patient.address, doctor.address) is not None


def test_signature_by_someone_else_is_refused(mv: Medvault, patient: Wallet, doctor: Wallet, stranger: Wallet) -> None:
    grant(mv, patient, doctor, LABS)
    forged = mv.sign(stranger, mv.revoke_change(patient.address, doctor.address))

    with pytest.raises(ConfigurationError, match=f"signed by {stranger.address}, who is not the patient nor"):
        mv.relay(stranger, forged)


def test_delegate_manages_consent_but_cannot_appoint(
    mv: Medvault, provider: Wallet, patient: Wallet, doctor: Wallet, stranger: Wallet, admin: Wallet, clock: ChainClock
) -> None:
    guardian = admin
    index = add(mv, provider, patient).index
    clock.advance(1)  # the record is strictly earlier than the delegate's grant
    mv.set_delegate(patient, guardian.address)

    mv.grant(guardian, patient.address, doctor.address, GrantTerms(LABS, Purpose.TREAT, mv.now(), mv.now() + DAY))
    later = add(mv, provider, patient).index
    assert mv.read_record(doctor, patient.address, later).data == LAB
    # A delegate whose terms open no history grants nothing of records written before its grant.
    with pytest.raises(AccessDeniedError, match="the delegate's terms do not open earlier records"):
        mv.read_record(doctor, patient.address, index)
    assert "ActedAsDelegate" in [e.event for e in mv.audit(patient.address)]

    with pytest.raises(ConfigurationError, match=f"signed by {guardian.address}, who is not the patient \\("):
        mv.relay(guardian, mv.sign(guardian, mv.delegate_change(patient.address, stranger.address)))
    mv.set_delegate(patient, guardian.address, appoint=False)
    with refused("ConsentManagerInvalidSigner"):  # the chain's own refusal, checked before signing
        mv.revoke(guardian, patient.address, doctor.address)


def test_research_request_approved_by_relayed_signature_then_lapses(
    mv: Medvault,
    provider: Wallet,
    patient: Wallet,
    doctor: Wallet,
    stranger: Wallet,
    admin: Wallet,
    clock: ChainClock,
) -> None:
    researcher = doctor
    mv.accredit(admin, researcher.address, Role.RESEARCHER)
    lab = add(mv, provider, patient).index
    request, _ = mv.request_access(researcher, patient.address, LABS, Purpose.HRESCH, 7 * DAY, "STUDY-1")
    assert mv.requests(patient=patient.address)[0].status is RequestStatus.PENDING

    signed = mv.sign(patient, mv.decision_change(patient, request, approve=True))
    mv.relay(stranger, signed)

    assert mv.request(request.request_id).status is RequestStatus.APPROVED
    approved = mv.grant_of(patient.address, researcher.address)
    assert approved is not None
    assert approved.valid_until - approved.valid_from == 7 * DAY
    assert mv.read_record(researcher, patient.address, lab).data == LAB
    with refused("ConsentManagerRequestNotPending"):
        mv.decide_request(patient, request, approve=False)
    clock.advance(7 * DAY)
    with pytest.raises(AccessDeniedError, match="expired"):
        mv.read_record(researcher, patient.address, lab)


def test_client_refuses_to_approve_a_researcher_who_lost_accreditation(
    mv: Medvault, admin: Wallet, patient: Wallet, doctor: Wallet
) -> None:
    mv.accredit(admin, doctor.address, Role.RESEARCHER)
    request, _ = mv.request_access(doctor, patient.address, LABS, Purpose.HRESCH, 7 * DAY, "STUDY-2")
    mv.accredit(admin, doctor.address, Role.RESEARCHER, withdraw=True)

    with pytest.raises(ConfigurationError, match="no longer an accredited researcher"):
        mv.decide_request(patient, request, approve=True)
    assert mv.request(request.request_id).status is RequestStatus.PENDING


def test_unaccredited_researcher_cannot_request_and_denial_is_recorded(
    mv: Medvault, patient: Wallet, doctor: Wallet, admin: Wallet
) -> None:
    with refused("ConsentManagerNotResearcher"):
        mv.request_access(doctor, patient.address, LABS, Purpose.HRESCH, DAY, "STUDY-2")
    mv.accredit(admin, doctor.address, Role.RESEARCHER)
    request, _ = mv.request_access(doctor, patient.address, LABS, Purpose.HRESCH, DAY, "STUDY-2")

    mv.decide_request(patient, request, approve=False)

    assert mv.request(request.request_id).status is RequestStatus.DENIED
    assert mv.grant_of(patient.address, doctor.address) is None


def test_emergency_access_is_flagged_visible_and_revocable(
    mv: Medvault, provider: Wallet, patient: Wallet, stranger: Wallet
) -> None:
    index = add(mv, patient, patient).index
    with refused("ConsentManagerNotProvider"):
        mv.take_emergency_access(stranger, patient.address, "unconscious in ER")
    # Break-glass is opt-in: the patient names the provider first.
    with refused("ConsentManagerEmergencyNotPermitted"):
        mv.take_emergency_access(provider, patient.address, "unconscious in ER")
    mv.set_emergency_policy(patient, EmergencyMode.NAMED)
    mv.set_emergency_standing(patient, provider.address, EmergencyStanding.ALLOWED)

    mv.take_emergency_access(provider, patient.address, "unconscious in ER")

    emergency = mv.grant_of(patient.address, provider.address)
    assert emergency is not None
    assert emergency.emergency
    assert emergency.purpose is Purpose.ETREAT
    assert emergency.valid_until - emergency.valid_from == DAY
    taken = [e for e in mv.audit(patient.address) if e.event == "EmergencyAccessTaken"]
    assert taken[0].details["reason"] == "unconscious in ER"
    assert mv.can_read(patient.address, provider.address, Category.LABORATORY)
    mv.revoke(patient, patient.address, provider.address)
    assert not mv.can_read(patient.address, provider.address, Category.LABORATORY)
    assert index == 0


def test_audit_lists_the_whole_history_in_order(
    mv: Medvault, provider: Wallet, patient: Wallet, doctor: Wallet
) -> None:
    add(mv, provider, patient)
    grant(mv, patient, doctor, LABS)
    mv.revoke(patient, patient.address, doctor.address)

    events = [(e.event, e.sender) for e in mv.audit(patient.address)]

    assert events == [
        ("ParticipantRegistered", patient.address),
        ("RecordAdded", provider.address),
        ("AccessGranted", patient.address),
        ("KeysShared", patient.address),
        ("AccessRevoked", patient.address),
    ]


def test_grant_exports_as_a_valid_fhir_consent(mv: Medvault, patient: Wallet, doctor: Wallet) -> None:
    grant(mv, patient, doctor, LABS)
    current = mv.grant_of(patient.address, doctor.address)
    assert current is not None
    event = mv.grant_event(patient.address, doctor.address)
    assert event is not None

    resource = grant_to_fhir_consent(
        current,
        status="active",
        recorded_at=event.timestamp,
        chain_id=mv.chain.chain_id,
        consent_manager=mv.chain.consent.address,
        tx_hash=event.tx_hash,
    )

    assert validate_resource(resource)["resourceType"] == "Consent"
    assert resource["provision"]["actor"][0]["reference"]["identifier"]["value"] == doctor.address
    assert resource["provision"]["purpose"][0]["code"] == "TREAT"
