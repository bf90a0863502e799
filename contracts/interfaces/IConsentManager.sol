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
/// Record categories (scope bits): 0 laboratory, 1 imaging, 2 medications, 3 conditions,
/// 4 immunizations, 5 notes. Purposes: 0 TREAT, 1 ETREAT, 2 HRESCH, 3 PATRQT, 4 FAMRQT,
/// 5 PUBHLTH, 6 HPAYMT, 7 HOPERAT.
interface IConsentManager {
    /// A grant and its relationship's nonce, packed in one storage word: bits 0-39 validFrom |
    /// 40-79 validUntil | 80-87 scopes | 88-95 purpose | 96-103 emergency | 104-167 nonce.
    /// A revoked grant keeps only its nonce.
    struct Grant {
        uint40 validFrom;
        uint40 validUntil;
        uint8 scopes;
        uint8 purpose;
        bool emergency;
        uint64 nonce;
    }

    /// A delegation and its relationship's nonce, in one storage word.
    struct Delegation {
        bool appointed;
        uint64 nonce;
    }

    /// What a researcher asked for. Only its hash (the request id) and status are stored; the
    /// fields travel in the `AccessRequested` event and in the calldata of the decision.
    struct AccessRequest {
        address patient;
        address researcher;
        uint8 scopes;
        uint8 purpose;
        uint40 duration;
        uint40 requestedAt;
        bytes32 studyId;
    }

    /// An EIP-712 signature over a consent change (compact EIP-2098 form: r and yParity|s),
    /// with the domain the signer saw. The domain fields are checked against this chain and
    /// contract so that a signature made for another one is refused by name; the digest itself
    /// is always built from this contract's own domain.
    struct Authorization {
        uint256 nonce;
        uint256 deadline;
        uint256 chainId;
        address verifyingContract;
        bytes32 r;
        bytes32 vs;
    }

    enum RequestStatus {
        None,
        Pending,
        Approved,
        Denied
    }

    /// @notice `grantee` may read `patient`'s records in `scopes` for `purpose` during
    /// [validFrom, validUntil). Replaces any earlier grant to the same grantee.
    event AccessGranted(
        address indexed patient, address indexed grantee, uint8 scopes, uint8 purpose, uint40 validFrom, uint40 validUntil
    );
    /// @notice With a grant or approval, or by `shareKeys`, `patient` released the keys of
    /// existing records to `grantee`: `keysCid` is the binary CID of the key bundle that wraps
    /// them. With `grantee` = `patient`, the patient re-wrapped their record keys for a new
    /// encryption key (a key rotation).
    event KeysShared(address indexed patient, address indexed grantee, bytes keysCid);
    /// @notice `grantee`'s access to `patient`'s records ended now.
    event AccessRevoked(address indexed patient, address indexed grantee);
    /// @notice A consent change for `patient` was made by their delegate `delegate`.
    event ActedAsDelegate(address indexed patient, address indexed delegate);
    /// @notice `patient` appointed `delegate` to manage their consent.
    event DelegateAppointed(address indexed patient, address indexed delegate);
    /// @notice `patient` removed `delegate`.
    event DelegateRemoved(address indexed patient, address indexed delegate);
    /// @notice A researcher asked `patient` for access; `requestId` commits to every field.
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
    event RequestApproved(
        uint256 indexed requestId, address indexed patient, address indexed researcher, uint40 validUntil
    );
    /// @notice The request was denied.
    event RequestDenied(uint256 indexed requestId, address indexed patient, address indexed researcher);
    /// @notice An accredited provider took emergency access (purpose ETREAT, all categories).
    event EmergencyAccessTaken(address indexed patient, address indexed provider, uint40 validUntil, string reason);

    /// @notice The caller (or signer) is neither the patient nor, where allowed, their delegate.
    error ConsentManagerUnauthorized(address actor, address patient);
    /// @notice A patient cannot grant to the zero address or to themselves.
    error ConsentManagerInvalidGrantee(address grantee);
    /// @notice The window is empty or already over.
    error ConsentManagerInvalidWindow(uint40 validFrom, uint40 validUntil, uint256 nowTimestamp);
    /// @notice `scopes` is zero or names a category that does not exist.
    error ConsentManagerInvalidScopes(uint8 scopes);
    /// @notice `purpose` is not one of the defined purpose codes.
    error ConsentManagerInvalidPurpose(uint8 purpose);
    /// @notice There is no current or future grant from `patient` to `grantee` to revoke.
    error ConsentManagerNoActiveGrant(address patient, address grantee);
    /// @notice The signature carries `given`, but the relationship's nonce is `expected`: it was
    /// used already (a replay) or voided by a later change.
    error ConsentManagerInvalidNonce(address patient, address counterpart, uint64 expected, uint256 given);
    /// @notice The signature's deadline has passed.
    error ConsentManagerExpiredSignature(uint256 deadline);
    /// @notice The signature was made for another chain.
    error ConsentManagerWrongChain(uint256 expected, uint256 signedFor);
    /// @notice The signature was made for another contract.
    error ConsentManagerWrongContract(address expected, address signedFor);
    /// @notice The signature does not recover to the patient (or their delegate, where allowed).
    error ConsentManagerInvalidSigner(address signer, address patient);
    /// @notice `researcher` is not an accredited researcher.
    error ConsentManagerNotResearcher(address researcher);
    /// @notice `provider` is not an accredited provider.
    error ConsentManagerNotProvider(address provider);
    /// @notice A research request's duration is zero or longer than `maximum`.
    error ConsentManagerInvalidDuration(uint40 duration, uint40 maximum);
    /// @notice The request is not pending (`status` says what it is).
    error ConsentManagerRequestNotPending(uint256 requestId, RequestStatus status);
    /// @notice The same request was already made in this block.
    error ConsentManagerDuplicateRequest(uint256 requestId);
    /// @notice Emergency access needs a stated reason.
    error ConsentManagerMissingReason();
    /// @notice A delegate cannot be the zero address or the patient; or is already in that state.
    error ConsentManagerInvalidDelegate(address delegate);
    /// @notice `shareKeys` needs the CID of a key bundle.
    error ConsentManagerEmptyKeysCid();

    /// @notice Grants (or replaces) `grantee`'s access to the caller's records.
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

    /// @notice `grant` for `patient`, authorized by the patient's or their delegate's signature.
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
    /// @param keysCid Binary CID of the key bundle; must not be empty.
    function shareKeys(address grantee, bytes calldata keysCid) external;

    /// @notice Ends `grantee`'s current or future grant to the caller's records at once.
    function revoke(address grantee) external;

    /// @notice `revoke` for `patient`, authorized by the patient's or their delegate's signature.
    function revokeBySig(address patient, address grantee, Authorization calldata auth) external;

    /// @notice Lets `delegate` manage the caller's consent (grant, revoke, decide requests).
    function appointDelegate(address delegate) external;

    /// @notice `appointDelegate`, authorized by the patient's own signature.
    function appointDelegateBySig(address patient, address delegate, Authorization calldata auth) external;

    /// @notice Withdraws `delegate`'s power over the caller's consent.
    function removeDelegate(address delegate) external;

    /// @notice `removeDelegate`, authorized by the patient's own signature.
    function removeDelegateBySig(address patient, address delegate, Authorization calldata auth) external;

    /// @notice An accredited researcher asks `patient` for access for `duration` seconds from approval.
    /// @return requestId keccak256(abi.encode(request)) with researcher = caller, requestedAt = now.
    function requestAccess(address patient, uint8 scopes, uint8 purpose, uint40 duration, bytes32 studyId)
        external
        returns (uint256 requestId);

    /// @notice Approves a pending request (by the patient or their delegate); the grant's window
    /// starts now.
    function approveRequest(AccessRequest calldata request, bytes calldata keysCid) external;

    /// @notice `approveRequest`, authorized by signature.
    function approveRequestBySig(AccessRequest calldata request, bytes calldata keysCid, Authorization calldata auth)
        external;

    /// @notice Denies a pending request (by the patient or their delegate). A grant the
    /// researcher already holds is left as it is; revoke it to end it.
    function denyRequest(AccessRequest calldata request) external;

    /// @notice `denyRequest`, authorized by signature.
    function denyRequestBySig(AccessRequest calldata request, Authorization calldata auth) external;

    /// @notice An accredited provider takes `EMERGENCY_DURATION` of access to all of `patient`'s
    /// records for emergency treatment, stating why. It replaces any grant the provider held.
    function takeEmergencyAccess(address patient, string calldata reason) external;

    /// @notice Whether `grantee` may read `patient`'s records of `category` now.
    function canRead(address patient, address grantee, uint8 category) external view returns (bool);

    /// @notice The grant from `patient` to `grantee` (all zero but the nonce if none or revoked).
    function grantOf(address patient, address grantee) external view returns (Grant memory);

    /// @notice Whether `delegate` manages `patient`'s consent, and the relationship's nonce.
    function delegationOf(address patient, address delegate) external view returns (Delegation memory);

    /// @notice The status of a research request.
    function requestStatus(uint256 requestId) external view returns (RequestStatus);
}
