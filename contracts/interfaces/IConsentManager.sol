// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

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
///   AppointDelegate(address patient,address delegate,uint256 nonce,uint256 deadline)
///   RemoveDelegate(address patient,address delegate,uint256 nonce,uint256 deadline)
///   ApproveRequest(address patient,address researcher,uint8 scopes,uint8 purpose,uint40 duration,uint40 requestedAt,bytes32 studyId,bytes keysCid,uint256 nonce,uint256 deadline)
///   DenyRequest(address patient,address researcher,uint8 scopes,uint8 purpose,uint40 duration,uint40 requestedAt,bytes32 studyId,uint256 nonce,uint256 deadline)
interface IConsentManager {
    /// @notice A grant and its relationship's nonce, packed in one storage word: bits 0-39
    /// validFrom | 40-79 validUntil | 80-87 scopes | 88-95 purpose | 96-103 emergency |
    /// 104-167 nonce (pinned by test/ConsentManager/ConsentManager.storage.t.sol).
    /// A revoked grant keeps only its nonce.
    /// @param validFrom First second of access.
    /// @param validUntil First second after access; zero if none or revoked.
    /// @param scopes The categories the grantee may read (a {Categories} bitmask).
    /// @param purpose The HL7 PurposeOfUse code the access is for.
    /// @param emergency Whether the grant is emergency access a provider took.
    /// @param nonce The relationship's nonce: the number of changes the patient's side made to it.
    struct Grant {
        uint40 validFrom;
        uint40 validUntil;
        uint8 scopes;
        uint8 purpose;
        bool emergency;
        uint64 nonce;
    }

    /// @notice A delegation and its relationship's nonce, in one storage word: bits 0-7
    /// appointed | 8-71 nonce.
    /// @param appointed Whether the delegate manages the patient's consent now.
    /// @param nonce The relationship's nonce: the number of appointments and removals.
    struct Delegation {
        bool appointed;
        uint64 nonce;
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
    /// them. With `grantee` = `patient`, the patient re-wrapped their record keys for a new
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
    /// @notice `patient` appointed `delegate` to manage their consent.
    /// @param patient The patient.
    /// @param delegate The account appointed.
    event DelegateAppointed(address indexed patient, address indexed delegate);
    /// @notice `patient` removed `delegate`.
    /// @param patient The patient.
    /// @param delegate The account removed.
    event DelegateRemoved(address indexed patient, address indexed delegate);
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
    /// @notice An accredited provider took emergency access (purpose ETREAT, all categories).
    /// @param patient The patient whose records the provider may read.
    /// @param provider The provider who took access.
    /// @param validUntil First second after the emergency access.
    /// @param reason Why, as the provider stated it.
    event EmergencyAccessTaken(address indexed patient, address indexed provider, uint40 validUntil, string reason);

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

    /// @notice Lets `delegate` manage the caller's consent (grant, revoke, decide requests).
    /// @param delegate The account appointed; not zero, not the caller, not already appointed.
    function appointDelegate(address delegate) external;

    /// @notice `appointDelegate`, authorized by the patient's own signature of an
    /// `AppointDelegate` with the (patient, delegate) nonce.
    /// @param patient The patient who appoints.
    /// @param delegate The account appointed.
    /// @param auth The signature, its nonce, deadline and the domain it was made for.
    function appointDelegateBySig(address patient, address delegate, Authorization calldata auth) external;

    /// @notice Withdraws `delegate`'s power over the caller's consent.
    /// @param delegate The account removed; must be appointed.
    function removeDelegate(address delegate) external;

    /// @notice `removeDelegate`, authorized by the patient's own signature of a
    /// `RemoveDelegate` with the (patient, delegate) nonce.
    /// @param patient The patient who removes.
    /// @param delegate The account removed.
    /// @param auth The signature, its nonce, deadline and the domain it was made for.
    function removeDelegateBySig(address patient, address delegate, Authorization calldata auth) external;

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

    /// @notice Approves a pending request (by the patient or their delegate); the grant's window
    /// starts now.
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

    /// @notice An accredited provider takes `EMERGENCY_DURATION` of access to all of `patient`'s
    /// records for emergency treatment, stating why. It replaces any grant the provider held.
    /// @param patient The patient; not the caller.
    /// @param reason Why; must not be empty.
    function takeEmergencyAccess(address patient, string calldata reason) external;

    /// @notice Whether `grantee` may read `patient`'s records of `category` now.
    /// @param patient The patient.
    /// @param grantee The reader; a patient may always read their own records.
    /// @param category A {Categories} category.
    /// @return True inside the grant's window and with `category` in its scope.
    function canRead(address patient, address grantee, uint8 category) external view returns (bool);

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
