// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IEmergencyAccess} from "./IEmergencyAccess.sol";

/// @title Consent manager
/// @notice Who may read which of a patient's records, for what purpose, and when.
/// A grant names a grantee, a scope (a bitmask of record categories), a purpose (an HL7
/// PurposeOfUse code) and a window [validFrom, validUntil). Access holds only inside the
/// window, in scope, and until revoked. Patients act by transaction or by EIP-712 signature
/// that anyone may relay; a patient's delegate (guardian, caregiver) manages consent for them
/// by signature (relayed by anyone, themselves included) and cannot appoint others.
/// Researchers request access, which the patient approves or denies; accredited providers may
/// take a short emergency grant, flagged and revocable.
///
/// Nonces are kept per relationship, in the storage word each change writes anyway: a
/// signature about (patient, grantee) must carry that pair's nonce, and every change the
/// patient's side makes to the pair, signed or not, advances it. Replay protection then costs
/// no extra storage write, and any later change to a relationship voids signatures made for it
/// before. Emergency access, taken by the provider, leaves the nonce alone, so it can never
/// void a revoke the patient (or their delegate) has already signed.
/// @dev The chain decides who may obtain a record key and until when. A revoke stops every
/// future key release and wrap; it cannot recall what a grantee already decrypted.
/// A scope is a bitmask of the record categories defined in {Categories}: bit c is category c,
/// and `Categories.ALL` holds them all. Purposes: 0 TREAT, 1 ETREAT, 2 HRESCH, 3 PATRQT, 4 FAMRQT,
/// 5 PUBHLTH, 6 HPAYMT, 7 HOPERAT.
///
/// Signed changes are EIP-712 typed data under the domain (name "medvault ConsentManager",
/// version "1", chainId, verifyingContract); a `bytes` field is signed as its keccak256. The
/// types, one per *BySig function (the contract's `*_TYPEHASH` constants are their keccak256):
///   Grant(address patient,address grantee,uint8 scopes,uint8 purpose,uint40 validFrom,uint40 validUntil,bytes keysCid,uint256 nonce,uint256 deadline)
///   Revoke(address patient,address grantee,uint256 nonce,uint256 deadline)
///   AppointDelegate(address patient,address delegate,uint8 scopes,uint40 maxDuration,bool openHistory,uint256 nonce,uint256 deadline)
///   RemoveDelegate(address patient,address delegate,bool keepGrants,uint256 nonce,uint256 deadline)
///
/// A delegate's signature is bound to its appointment: the `nonce` it signs is the
/// relationship's nonce plus the appointment number shifted left by 64 bits
/// (`nonce | appointment << 64`); the patient's own signatures carry the plain nonce. A
/// signature made under an appointment that ended is refused, even after a re-appointment.
///
/// Emergency (break-glass) access is opt-in: the patient's {EmergencyPolicy} says who may take
/// it (nobody, the providers they allowed, or any accredited provider they did not block), which
/// categories it opens and whether it opens records written before it. A patient's revoke of an
/// emergency grant blocks the provider until the patient allows it again. A provider holds at
/// most one emergency window per patient at a time, and may take the next one only
/// `EMERGENCY_COOLDOWN` after the last one ended, whatever grant it held in between (a revoke of
/// the emergency, which blocks the provider, clears it with the block). Emergency and research
/// grants hold only while the grantee keeps its accreditation; grants a delegate made hold only
/// while its appointment does (or the patient kept them on removing it).
///   ApproveRequest(address patient,address researcher,uint8 scopes,uint8 purpose,uint40 duration,uint40 requestedAt,bytes32 studyId,bytes keysCid,uint256 nonce,uint256 deadline)
///   DenyRequest(address patient,address researcher,uint8 scopes,uint8 purpose,uint40 duration,uint40 requestedAt,bytes32 studyId,uint256 nonce,uint256 deadline)
interface IConsentManager is IEmergencyAccess {
    /// @notice Who made a grant: the patient, a delegate, a provider taking emergency access, or
    /// an approval of a research request. `None` once revoked (or never granted).
    enum GrantKind {
        None,
        Patient,
        Delegate,
        Emergency,
        Research
    }

    /// @notice The patient's word on one provider's emergency access: `Allowed` (needed in the
    /// `Named` mode), `Blocked` (refused in every mode; a live emergency grant stops at once),
    /// or `Default`.
    enum EmergencyStanding {
        Default,
        Allowed,
        Blocked
    }

    /// @notice Who may take emergency access to a patient: nobody (the default), the providers
    /// the patient allowed, or any accredited provider the patient has not blocked.
    enum EmergencyMode {
        None,
        Named,
        AnyProvider
    }

    /// @notice A grant and its relationship's nonce, packed in one storage word: bits 0-39
    /// validFrom | 40-79 validUntil | 80-87 scopes | 88-95 purpose | 96-103 kind |
    /// 104-167 nonce | 168-215 appointment | 216-223 emergencyStanding; bits 224-255, outside the
    /// struct, hold when the grantee may next take emergency access (seconds after deployment),
    /// which grants, approvals and other revokes carry over and only a revoke of the emergency
    /// clears (pinned by test/ConsentManager/ConsentManager.storage.t.sol).
    /// A revoked grant keeps only its nonce and the provider's emergency standing.
    /// @param validFrom First second of access.
    /// @param validUntil First second after access; zero if none or revoked.
    /// @param scopes The categories the grantee may read (a {Categories} bitmask).
    /// @param purpose The HL7 PurposeOfUse code the access is for.
    /// @param kind Who made the grant ({GrantKind}).
    /// @param nonce The relationship's nonce: the number of changes the patient's side made to it.
    /// @param appointment The delegate appointment that made the grant (see {appointmentOf}), or
    /// zero if no delegate made it.
    /// @param emergencyStanding The patient's word on the grantee's emergency access.
    struct Grant {
        uint40 validFrom;
        uint40 validUntil;
        uint8 scopes;
        uint8 purpose;
        GrantKind kind;
        uint64 nonce;
        uint48 appointment;
        EmergencyStanding emergencyStanding;
    }

    /// @notice A delegation and its relationship's nonce, in one storage word: bits 0-7
    /// appointed | 8-71 nonce | 72-119 appointment | 120-127 scopes | 128-167 maxDuration |
    /// 168-175 openHistory.
    /// @param appointed Whether the delegate manages the patient's consent now.
    /// @param nonce The relationship's nonce: the number of appointments and removals.
    /// @param appointment The number of the current (or last) appointment; unique per contract.
    /// @param scopes The categories the delegate may grant (a {Categories} bitmask).
    /// @param maxDuration The longest window, in seconds, the delegate may grant.
    /// @param openHistory Whether the delegate's grants open records written before them.
    struct Delegation {
        bool appointed;
        uint64 nonce;
        uint48 appointment;
        uint8 scopes;
        uint40 maxDuration;
        bool openHistory;
    }

    /// @notice Where an appointment stands: `Live` while the delegate is appointed; on removal
    /// `Ended` (its grants end with it) or `Kept` (the patient kept its grants).
    enum AppointmentState {
        None,
        Live,
        Ended,
        Kept
    }

    /// @notice What a grant made under an appointment needs to know of it, by appointment number.
    /// @param state Whether the appointment's grants still hold.
    /// @param openHistory Whether they open records written before them.
    struct Appointment {
        AppointmentState state;
        bool openHistory;
    }

    /// @notice The patient's emergency policy, one storage word per patient.
    /// @param mode Who may take emergency access.
    /// @param scopes The categories an emergency grant opens (a {Categories} bitmask).
    /// @param fullHistory Whether an emergency grant opens records written before it.
    struct EmergencyPolicy {
        EmergencyMode mode;
        uint8 scopes;
        bool fullHistory;
    }

    /// @notice What a researcher asked for. Only its hash (the request id) and status are stored;
    /// the fields travel in the `AccessRequested` event and in the calldata of the decision.
    /// @param patient The patient asked.
    /// @param researcher The accredited researcher who asked.
    /// @param scopes The categories asked for (a {Categories} bitmask).
    /// @param purpose The HL7 PurposeOfUse code asked for.
    /// @param duration How long access would last, in seconds from the approval.
    /// @param requestedAt The timestamp of the block the request was made in.
    /// @param studyId The researcher's identifier of the study.
    struct AccessRequest {
        address patient;
        address researcher;
        uint8 scopes;
        uint8 purpose;
        uint40 duration;
        uint40 requestedAt;
        bytes32 studyId;
    }

    /// @notice An EIP-712 signature over a consent change (compact EIP-2098 form: r and
    /// yParity|s), with the domain the signer saw. The domain fields are checked against this
    /// chain and contract so that a signature made for another one is refused by name; the
    /// digest itself is always built from this contract's own domain.
    /// @param nonce The relationship's nonce the signer saw; must be the current one.
    /// @param deadline The last timestamp at which the signature is accepted.
    /// @param chainId The chain id of the domain the signer saw.
    /// @param verifyingContract The contract of the domain the signer saw.
    /// @param r The signature's r.
    /// @param vs The signature's s, with the y parity in the top bit (EIP-2098).
    struct Authorization {
        uint256 nonce;
        uint256 deadline;
        uint256 chainId;
        address verifyingContract;
        bytes32 r;
        bytes32 vs;
    }

    /// @notice Where a research request stands: never made, pending, approved or denied.
    enum RequestStatus {
        None,
        Pending,
        Approved,
        Denied
    }

    /// @notice `grantee` may read `patient`'s records in `scopes` for `purpose` during
    /// [validFrom, validUntil). Replaces any earlier grant to the same grantee.
    /// @param patient The patient whose records are shared.
    /// @param grantee The account that may read them.
    /// @param scopes The categories granted (a {Categories} bitmask).
    /// @param purpose The HL7 PurposeOfUse code of the grant.
    /// @param validFrom First second of access.
    /// @param validUntil First second after access.
    event AccessGranted(
        address indexed patient,
        address indexed grantee,
        uint8 scopes,
        uint8 purpose,
        uint40 validFrom,
        uint40 validUntil
    );
    /// @notice With a grant or approval, or by `shareKeys`, `patient` released the keys of
    /// existing records to `grantee`: `keysCid` is the binary CID of the key bundle that wraps
    /// them, a sha2-256 CIDv1, raw or dag-pb (see {Cids}; any other reverts with `InvalidCid`). With `grantee` = `patient`, the patient re-wrapped their record keys for a new
    /// encryption key (a key rotation).
    /// @param patient The patient whose record keys were wrapped.
    /// @param grantee The account they were wrapped for.
    /// @param keysCid Binary CID of the key bundle.
    event KeysShared(address indexed patient, address indexed grantee, bytes keysCid);
    /// @notice `grantee`'s access to `patient`'s records ended now.
    /// @param patient The patient who revoked.
    /// @param grantee The account whose access ended.
    event AccessRevoked(address indexed patient, address indexed grantee);
    /// @notice A consent change for `patient` was made by their delegate `delegate`; the change's
    /// own event follows.
    /// @param patient The patient the delegate acted for.
    /// @param delegate The delegate who made (or signed) the change.
    event ActedAsDelegate(address indexed patient, address indexed delegate);
    /// @notice `patient` appointed `delegate` to manage their consent, on these terms.
    /// @param patient The patient.
    /// @param delegate The account appointed.
    /// @param appointment The appointment's number (its grants carry it).
    /// @param scopes The categories the delegate may grant.
    /// @param maxDuration The longest window, in seconds, the delegate may grant.
    /// @param openHistory Whether the delegate's grants open records written before them.
    event DelegateAppointed(
        address indexed patient,
        address indexed delegate,
        uint48 appointment,
        uint8 scopes,
        uint40 maxDuration,
        bool openHistory
    );
    /// @notice `patient` removed `delegate`; the grants it made end unless `keepGrants`.
    /// @param patient The patient.
    /// @param delegate The account removed.
    /// @param appointment The appointment that ended.
    /// @param keepGrants Whether the grants made under it still hold.
    event DelegateRemoved(address indexed patient, address indexed delegate, uint48 appointment, bool keepGrants);
    /// @notice `patient` (or their delegate) voided every outstanding signature about the
    /// relationship with `counterpart`: its nonce is now `nonce`.
    /// @param patient The patient.
    /// @param counterpart The grantee, researcher or delegate of the relationship.
    /// @param nonce The relationship's new nonce.
    event NonceInvalidated(address indexed patient, address indexed counterpart, uint64 nonce);
    /// @notice `patient` set who may take emergency access to their records.
    /// @param patient The patient.
    /// @param mode Nobody, named providers, or any accredited provider.
    /// @param scopes The categories an emergency grant opens.
    /// @param fullHistory Whether an emergency grant opens records written before it.
    event EmergencyPolicySet(address indexed patient, EmergencyMode mode, uint8 scopes, bool fullHistory);
    /// @notice `patient` allowed or blocked `provider`'s emergency access (a revoke of an
    /// emergency grant blocks too).
    /// @param patient The patient.
    /// @param provider The provider.
    /// @param standing Its new standing.
    event EmergencyStandingSet(address indexed patient, address indexed provider, EmergencyStanding standing);
    /// @notice A researcher asked `patient` for access; `requestId` commits to every field.
    /// @param requestId keccak256(abi.encode(request)) of the {AccessRequest} the fields make up.
    /// @param patient The patient asked.
    /// @param researcher The researcher who asked.
    /// @param scopes The categories asked for (a {Categories} bitmask).
    /// @param purpose The HL7 PurposeOfUse code asked for.
    /// @param duration How long access would last, in seconds from the approval.
    /// @param requestedAt The timestamp of the block of the request.
    /// @param studyId The researcher's identifier of the study.
    event AccessRequested(
        uint256 indexed requestId,
        address indexed patient,
        address indexed researcher,
        uint8 scopes,
        uint8 purpose,
        uint40 duration,
        uint40 requestedAt,
        bytes32 studyId
    );
    /// @notice The request was approved: the researcher's grant runs from this block's time
    /// until `validUntil`.
    /// @param requestId The request approved.
    /// @param patient The patient who approved (or whose delegate did).
    /// @param researcher The researcher granted access.
    /// @param validUntil First second after the researcher's access.
    event RequestApproved(
        uint256 indexed requestId, address indexed patient, address indexed researcher, uint40 validUntil
    );
    /// @notice The request was denied.
    /// @param requestId The request denied.
    /// @param patient The patient who denied (or whose delegate did).
    /// @param researcher The researcher refused.
    event RequestDenied(uint256 indexed requestId, address indexed patient, address indexed researcher);
    /// @notice EMERGENCY: an accredited provider took break-glass access to `patient`'s records
    /// (purpose ETREAT) under the patient's policy, from this block's time until `validUntil`.
    /// @param patient The patient whose records the provider may read.
    /// @param provider The provider who took access.
    /// @param validUntil First second after the emergency access.
    /// @param scopes The categories it opens (the policy's).
    /// @param fullHistory Whether it opens records written before it (the policy's opt-in).
    /// @param reason Why, as the provider stated it (free text: display it escaped).
    event EmergencyAccessTaken(
        address indexed patient,
        address indexed provider,
        uint40 validUntil,
        uint8 scopes,
        bool fullHistory,
        string reason
    );

    /// @notice The caller (or signer) is neither the patient nor, where allowed, their delegate.
    /// @param actor The caller.
    /// @param patient The patient the caller tried to act for.
    error ConsentManagerUnauthorized(address actor, address patient);
    /// @notice A patient cannot grant to the zero address or to themselves.
    /// @param grantee The grantee refused.
    error ConsentManagerInvalidGrantee(address grantee);
    /// @notice The window is empty or already over.
    /// @param validFrom First second of the window asked for.
    /// @param validUntil First second after the window asked for.
    /// @param nowTimestamp The block's timestamp.
    error ConsentManagerInvalidWindow(uint40 validFrom, uint40 validUntil, uint256 nowTimestamp);
    /// @notice `scopes` is zero or names a category that does not exist.
    /// @param scopes The scope refused.
    error ConsentManagerInvalidScopes(uint8 scopes);
    /// @notice `purpose` is not one of the defined purpose codes.
    /// @param purpose The purpose code refused.
    error ConsentManagerInvalidPurpose(uint8 purpose);
    /// @notice There is no current or future grant from `patient` to `grantee` to revoke.
    /// @param patient The patient who tried to revoke.
    /// @param grantee The grantee named.
    error ConsentManagerNoActiveGrant(address patient, address grantee);
    /// @notice The signature carries `given`, but the relationship's nonce is `expected`: it was
    /// used already (a replay) or voided by a later change.
    /// @param patient The patient of the relationship.
    /// @param counterpart The grantee, researcher or delegate of the relationship.
    /// @param expected The relationship's current nonce.
    /// @param given The nonce the signature carries.
    error ConsentManagerInvalidNonce(address patient, address counterpart, uint64 expected, uint256 given);
    /// @notice The signature's deadline has passed.
    /// @param deadline The signature's deadline.
    error ConsentManagerExpiredSignature(uint256 deadline);
    /// @notice The signature was made for another chain.
    /// @param expected This chain's id.
    /// @param signedFor The chain id the signature claims.
    error ConsentManagerWrongChain(uint256 expected, uint256 signedFor);
    /// @notice The signature was made for another contract.
    /// @param expected This contract.
    /// @param signedFor The contract the signature claims.
    error ConsentManagerWrongContract(address expected, address signedFor);
    /// @notice The signature does not recover to the patient (or their delegate, where allowed).
    /// @param signer The address the signature recovers to.
    /// @param patient The patient the change is for.
    error ConsentManagerInvalidSigner(address signer, address patient);
    /// @notice `researcher` is not an accredited researcher.
    /// @param researcher The caller.
    error ConsentManagerNotResearcher(address researcher);
    /// @notice `provider` is not an accredited provider.
    /// @param provider The caller.
    error ConsentManagerNotProvider(address provider);
    /// @notice A research request's duration is zero or longer than `maximum`.
    /// @param duration The duration asked for, in seconds.
    /// @param maximum `MAX_REQUEST_DURATION`.
    error ConsentManagerInvalidDuration(uint40 duration, uint40 maximum);
    /// @notice The request is not pending (`status` says what it is).
    /// @param requestId The id of the request named.
    /// @param status Its status (`None` if it was never made).
    error ConsentManagerRequestNotPending(uint256 requestId, RequestStatus status);
    /// @notice The same request was already made in this block.
    /// @param requestId The id both requests hash to.
    error ConsentManagerDuplicateRequest(uint256 requestId);
    /// @notice Emergency access needs a stated reason.
    error ConsentManagerMissingReason();
    /// @notice A delegate cannot be the zero address or the patient; or is already in that state.
    /// @param delegate The delegate named.
    error ConsentManagerInvalidDelegate(address delegate);
    /// @notice `shareKeys` needs the CID of a key bundle.
    error ConsentManagerEmptyKeysCid();
    /// @notice The patient's emergency policy does not let `provider` take emergency access (the
    /// mode is `None`, the provider is not allowed in the `Named` mode, or it is blocked).
    /// @param patient The patient.
    /// @param provider The provider refused.
    error ConsentManagerEmergencyNotPermitted(address patient, address provider);
    /// @notice `provider` held emergency access to `patient` too recently: the next window may
    /// start at `availableAt` (the last one's end plus `EMERGENCY_COOLDOWN`).
    /// @param patient The patient.
    /// @param provider The provider refused.
    /// @param availableAt The first second a new emergency window may be taken.
    error ConsentManagerEmergencyCooldown(address patient, address provider, uint256 availableAt);
    /// @notice An emergency policy other than `None` needs a valid, non-empty scope.
    /// @param mode The mode asked for.
    /// @param scopes The scope refused.
    error ConsentManagerInvalidEmergencyPolicy(EmergencyMode mode, uint8 scopes);
    /// @notice A delegate cannot grant to itself, nor approve or deny a request of its own, nor
    /// void the patient's signatures about its own relationship (`invalidateNonceFor`).
    /// @param delegate The delegate.
    error ConsentManagerDelegateSelfGrant(address delegate);
    /// @notice The change exceeds the delegate's terms: categories outside the scopes it may
    /// grant, or a window longer than it may grant.
    /// @param delegate The delegate.
    /// @param scopes The categories asked for.
    /// @param duration The window asked for, in seconds.
    error ConsentManagerOutsideDelegateTerms(address delegate, uint8 scopes, uint256 duration);
    /// @notice Delegate terms need a valid, non-empty scope and a non-zero longest window.
    /// @param scopes The scope refused.
    /// @param maxDuration The longest window refused.
    error ConsentManagerInvalidDelegateTerms(uint8 scopes, uint40 maxDuration);
    /// @notice The signature names appointment `signedFor` (the nonce's bits 64 and up), but the
    /// signer's appointment is `current` (zero for the patient): it was made under an ended
    /// appointment, or the patient's signature carries an appointment.
    /// @param signer The signer.
    /// @param signedFor The appointment the signature names.
    /// @param current The signer's current appointment (zero for the patient).
    error ConsentManagerWrongAppointment(address signer, uint256 signedFor, uint256 current);
    /// @notice The research request expired at `expiredAt` (`REQUEST_TTL` after it was made) and
    /// can no longer be approved.
    /// @param requestId The request.
    /// @param expiredAt The first second it was no longer approvable.
    error ConsentManagerRequestExpired(uint256 requestId, uint256 expiredAt);

    /// @notice Grants (or replaces) `grantee`'s access to the caller's records.
    /// @param grantee The account that may read; not zero, not the caller.
    /// @param scopes The categories it may read (a non-zero {Categories} bitmask).
    /// @param purpose The HL7 PurposeOfUse code (below `PURPOSE_COUNT`).
    /// @param validFrom First second of access (may be in the past).
    /// @param validUntil First second after access; after `validFrom` and after now.
    /// @param keysCid Binary CID of a key bundle wrapping existing record keys for `grantee`,
    /// or empty; see `KeysShared`.
    function grant(
        address grantee,
        uint8 scopes,
        uint8 purpose,
        uint40 validFrom,
        uint40 validUntil,
        bytes calldata keysCid
    ) external;

    /// @notice `grant` for `patient`, authorized by the patient's or their delegate's signature
    /// of a `Grant` with the (patient, grantee) nonce. Anyone may relay it.
    /// @param patient The patient whose records are shared.
    /// @param grantee As in `grant`.
    /// @param scopes As in `grant`.
    /// @param purpose As in `grant`.
    /// @param validFrom As in `grant`.
    /// @param validUntil As in `grant`.
    /// @param keysCid As in `grant`.
    /// @param auth The signature, its nonce, deadline and the domain it was made for.
    function grantBySig(
        address patient,
        address grantee,
        uint8 scopes,
        uint8 purpose,
        uint40 validFrom,
        uint40 validUntil,
        bytes calldata keysCid,
        Authorization calldata auth
    ) external;

    /// @notice The caller (a patient) announces a key bundle that wraps keys of their records
    /// for `grantee`, by emitting `KeysShared(caller, grantee, keysCid)`. It grants nothing:
    /// reading still needs a grant in scope (`canRead`). Used to hand a grantee the keys of
    /// existing records after its grant (for example one a delegate made, which shares no keys),
    /// and, with `grantee` = the caller, to announce the keys re-wrapped by a key rotation.
    /// @param grantee The account the keys were wrapped for; not zero.
    /// @param keysCid Binary CID of the key bundle; must not be empty.
    function shareKeys(address grantee, bytes calldata keysCid) external;

    /// @notice Ends `grantee`'s current or future grant to the caller's records at once.
    /// @param grantee The account whose access ends.
    function revoke(address grantee) external;

    /// @notice `revoke` for `patient`, authorized by the patient's or their delegate's signature
    /// of a `Revoke` with the (patient, grantee) nonce.
    /// @param patient The patient who revokes.
    /// @param grantee The account whose access ends.
    /// @param auth The signature, its nonce, deadline and the domain it was made for.
    function revokeBySig(address patient, address grantee, Authorization calldata auth) external;

    /// @notice Lets `delegate` manage the caller's consent (grant, revoke, decide requests,
    /// invalidate nonces) within the terms: it may grant only categories in `scopes`, windows
    /// of at most `maxDuration` seconds (starting no earlier than the change), never to itself,
    /// and its grants open records written before them only if `openHistory`.
    /// @param delegate The account appointed; not zero, not the caller, not already appointed.
    /// @param scopes The categories it may grant (a non-zero {Categories} bitmask).
    /// @param maxDuration The longest window it may grant, in seconds; not zero.
    /// @param openHistory Whether its grants open records written before them.
    function appointDelegate(address delegate, uint8 scopes, uint40 maxDuration, bool openHistory) external;

    /// @notice `appointDelegate`, authorized by the patient's own signature of an
    /// `AppointDelegate` with the (patient, delegate) nonce.
    /// @param patient The patient who appoints.
    /// @param delegate As in `appointDelegate`.
    /// @param scopes As in `appointDelegate`.
    /// @param maxDuration As in `appointDelegate`.
    /// @param openHistory As in `appointDelegate`.
    /// @param auth The signature, its nonce, deadline and the domain it was made for.
    function appointDelegateBySig(
        address patient,
        address delegate,
        uint8 scopes,
        uint40 maxDuration,
        bool openHistory,
        Authorization calldata auth
    ) external;

    /// @notice Withdraws `delegate`'s power over the caller's consent. The grants it made end
    /// with it (lazily: `canRead` checks the appointment) unless `keepGrants`.
    /// @param delegate The account removed; must be appointed.
    /// @param keepGrants Whether the grants the delegate made under this appointment still hold.
    function removeDelegate(address delegate, bool keepGrants) external;

    /// @notice `removeDelegate`, authorized by the patient's own signature of a
    /// `RemoveDelegate` with the (patient, delegate) nonce.
    /// @param patient The patient who removes.
    /// @param delegate As in `removeDelegate`.
    /// @param keepGrants As in `removeDelegate`.
    /// @param auth The signature, its nonce, deadline and the domain it was made for.
    function removeDelegateBySig(address patient, address delegate, bool keepGrants, Authorization calldata auth)
        external;

    /// @notice Voids every outstanding signature about the caller's relationship with
    /// `counterpart` without changing any grant: advances the (patient, counterpart) grant nonce
    /// and the delegation nonce.
    /// @param counterpart The grantee, researcher or delegate of the relationship; not zero.
    function invalidateNonce(address counterpart) external;

    /// @notice `invalidateNonce` for `patient` by their delegate (or the patient): advances the
    /// (patient, counterpart) grant nonce (a delegate cannot touch delegation nonces, nor its own
    /// relationship's nonce, which would void a revoke of its own grant the patient signed).
    /// @param patient The patient the caller acts for.
    /// @param counterpart The grantee or researcher of the relationship; not zero.
    function invalidateNonceFor(address patient, address counterpart) external;

    /// @notice An accredited researcher asks `patient` for access for `duration` seconds from approval.
    /// @param patient The patient asked.
    /// @param scopes The categories asked for (a non-zero {Categories} bitmask).
    /// @param purpose The HL7 PurposeOfUse code asked for.
    /// @param duration Seconds of access from the approval; 1 to `MAX_REQUEST_DURATION`.
    /// @param studyId The researcher's identifier of the study.
    /// @return requestId keccak256(abi.encode(request)) with researcher = caller, requestedAt = now.
    function requestAccess(address patient, uint8 scopes, uint8 purpose, uint40 duration, bytes32 studyId)
        external
        returns (uint256 requestId);

    /// @notice Approves a pending request (by the patient or their delegate, within its terms);
    /// the grant's window starts now. Refused once the request is `REQUEST_TTL` old. The grant
    /// holds only while the researcher is accredited: approved for one who lost it, it opens
    /// nothing (`canRead` checks the accreditation at every read).
    /// @param request The request, field for field as in its `AccessRequested` event.
    /// @param keysCid Binary CID of a key bundle wrapping existing record keys for the
    /// researcher, or empty; see `KeysShared`.
    function approveRequest(AccessRequest calldata request, bytes calldata keysCid) external;

    /// @notice `approveRequest`, authorized by the patient's or their delegate's signature of an
    /// `ApproveRequest` with the (patient, researcher) nonce.
    /// @param request As in `approveRequest`.
    /// @param keysCid As in `approveRequest`.
    /// @param auth The signature, its nonce, deadline and the domain it was made for.
    function approveRequestBySig(AccessRequest calldata request, bytes calldata keysCid, Authorization calldata auth)
        external;

    /// @notice Denies a pending request (by the patient or their delegate). A grant the
    /// researcher already holds is left as it is; revoke it to end it.
    /// @param request The request, field for field as in its `AccessRequested` event.
    function denyRequest(AccessRequest calldata request) external;

    /// @notice `denyRequest`, authorized by the patient's or their delegate's signature of a
    /// `DenyRequest` with the (patient, researcher) nonce.
    /// @param request As in `denyRequest`.
    /// @param auth The signature, its nonce, deadline and the domain it was made for.
    function denyRequestBySig(AccessRequest calldata request, Authorization calldata auth) external;

    /// @notice The caller sets who may take emergency access to its records, which categories
    /// that opens and whether it opens records written before it. Default: nobody.
    /// @param mode Nobody, named (allowed) providers, or any accredited provider not blocked.
    /// @param scopes The categories an emergency grant opens; a valid scope unless `mode` is None.
    /// @param fullHistory Whether emergency grants open records written before them.
    function setEmergencyPolicy(EmergencyMode mode, uint8 scopes, bool fullHistory) external;

    /// @notice The caller allows or blocks `provider`'s emergency access (or resets it to
    /// `Default`). A block ends a live emergency grant at once and holds in every mode.
    /// @param provider The provider; not zero, not the caller.
    /// @param standing The new standing.
    function setEmergencyStanding(address provider, EmergencyStanding standing) external;

    /// @notice An accredited provider takes `EMERGENCY_DURATION` of access to `patient`'s
    /// records in the policy's scopes for emergency treatment, stating why, if the patient's
    /// policy lets it and its last emergency window ended `EMERGENCY_COOLDOWN` ago. It replaces
    /// any grant the provider held.
    /// @param patient The patient; not the caller.
    /// @param reason Why; must not be empty.
    function takeEmergencyAccess(address patient, string calldata reason) external;

    /// @notice Whether `grantee` may read `patient`'s records of `category` now.
    /// @param patient The patient.
    /// @param grantee The reader; a patient may always read their own records.
    /// @param category A {Categories} category.
    /// @return True inside the grant's window, with `category` in its scope, and while the grant
    /// still holds: an emergency grant while the provider is accredited and the policy permits
    /// it, a research grant while the researcher is accredited, a delegate's grant while its
    /// appointment lives (or was kept).
    function canRead(address patient, address grantee, uint8 category) external view returns (bool);

    /// @notice Whether `grantee` may read now a record of `category` written at `writtenAt`:
    /// `canRead`, and the record was written inside the grant (`writtenAt >= validFrom`) unless
    /// the grant opens history: a patient's (or patient-approved) grant does; an emergency grant
    /// only with the patient's full-history opt-in; a delegate's grant only if its terms say so.
    /// Keepers ask this before releasing a record key.
    /// @param patient The patient.
    /// @param grantee The reader.
    /// @param category The record's category.
    /// @param writtenAt The record's time (its block's timestamp).
    /// @return Whether the record may be released to `grantee`.
    function canReadRecord(address patient, address grantee, uint8 category, uint64 writtenAt)
        external
        view
        returns (bool);

    /// @notice `patient`'s emergency policy.
    /// @param patient The patient.
    /// @return The policy (all zero: nobody may take emergency access).
    function emergencyPolicyOf(address patient) external view returns (EmergencyPolicy memory);

    /// @notice An appointment, by number.
    /// @param appointment The number, from {Delegation} or {Grant}.
    /// @return Its state and whether its grants open history.
    function appointmentOf(uint256 appointment) external view returns (Appointment memory);

    /// @notice The grant from `patient` to `grantee` (all zero but the nonce if none or revoked).
    /// @param patient The patient.
    /// @param grantee The grantee.
    /// @return The grant and the relationship's nonce.
    function grantOf(address patient, address grantee) external view returns (Grant memory);

    /// @notice Whether `delegate` manages `patient`'s consent, and the relationship's nonce.
    /// @param patient The patient.
    /// @param delegate The delegate.
    /// @return The delegation and the relationship's nonce.
    function delegationOf(address patient, address delegate) external view returns (Delegation memory);

    /// @notice The status of a research request.
    /// @param requestId The request's id, keccak256(abi.encode(request)).
    /// @return The status (`None` if no such request was made).
    function requestStatus(uint256 requestId) external view returns (RequestStatus);
}
