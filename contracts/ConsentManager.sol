// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {IConsentManager} from "./interfaces/IConsentManager.sol";
import {IEmergencyAccess} from "./interfaces/IEmergencyAccess.sol";
import {IParticipantRegistry} from "./interfaces/IParticipantRegistry.sol";
import {Categories} from "./libraries/Categories.sol";
import {Cids} from "./libraries/Cids.sol";

/// @title ConsentManager
/// @notice Scoped, time-limited, wallet-signed consent; see {IConsentManager}.
contract ConsentManager is IConsentManager, EIP712 {
    /// The scope holding every record category, {Categories-ALL}.
    uint8 public constant ALL_CATEGORIES = Categories.ALL;
    /// HL7 PurposeOfUse codes 0..7 (see {IConsentManager}).
    uint8 public constant PURPOSE_COUNT = 8;
    uint8 public constant PURPOSE_ETREAT = 1;
    uint40 public constant EMERGENCY_DURATION = 24 hours;
    /// A provider's next emergency window may start this long after its last one ended: at most
    /// one day of break-glass access per provider and patient in any eight.
    uint40 public constant EMERGENCY_COOLDOWN = 7 days;
    uint40 public constant MAX_REQUEST_DURATION = 365 days;
    /// A research request can be approved for this long after it was made.
    uint40 public constant REQUEST_TTL = 30 days;

    // The EIP-712 typehashes of the six signed changes (the types are listed in {IConsentManager}).
    bytes32 public constant GRANT_TYPEHASH = keccak256(
        "Grant(address patient,address grantee,uint8 scopes,uint8 purpose,uint40 validFrom,uint40 validUntil,bytes keysCid,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant REVOKE_TYPEHASH =
        keccak256("Revoke(address patient,address grantee,uint256 nonce,uint256 deadline)");
    bytes32 public constant APPOINT_DELEGATE_TYPEHASH = keccak256(
        "AppointDelegate(address patient,address delegate,uint8 scopes,uint40 maxDuration,bool openHistory,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant REMOVE_DELEGATE_TYPEHASH =
        keccak256("RemoveDelegate(address patient,address delegate,bool keepGrants,uint256 nonce,uint256 deadline)");
    bytes32 public constant APPROVE_REQUEST_TYPEHASH = keccak256(
        "ApproveRequest(address patient,address researcher,uint8 scopes,uint8 purpose,uint40 duration,uint40 requestedAt,bytes32 studyId,bytes keysCid,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant DENY_REQUEST_TYPEHASH = keccak256(
        "DenyRequest(address patient,address researcher,uint8 scopes,uint8 purpose,uint40 duration,uint40 requestedAt,bytes32 studyId,uint256 nonce,uint256 deadline)"
    );

    // The bit positions of the packed {Grant} word, for the hot paths that write it whole.
    uint256 private constant KIND_SHIFT = 96;
    uint256 private constant NONCE_SHIFT = 104;
    uint256 private constant APPOINTMENT_SHIFT = 168;
    uint256 private constant STANDING_SHIFT = 216;
    uint256 private constant STANDING_BITS = uint256(0xff) << STANDING_SHIFT;
    /// Bits 224-255, outside the {Grant} struct: when the provider may next take emergency
    /// access, in seconds after `_cooldownEpoch` (zero: at any time). Every change to the word
    /// carries them over, so no grant, approval or revoke in between resets the cooldown.
    uint256 private constant COOLDOWN_SHIFT = 224;
    /// The bits a grant, an approval or a revoke of a non-emergency grant carries over.
    uint256 private constant KEPT_BITS = ~uint256(0) << STANDING_SHIFT;

    IParticipantRegistry public immutable participants;

    mapping(address patient => mapping(address grantee => Grant)) private _grants;
    mapping(address patient => mapping(address delegate => Delegation)) private _delegations;
    mapping(uint256 requestId => RequestStatus) private _requests;
    mapping(address patient => EmergencyPolicy) private _emergencyPolicies;
    mapping(uint256 appointment => Appointment) private _appointments;
    /// The number of appointments made so far (the last appointment's number).
    uint48 private _appointmentCount;
    /// The deployment's time: emergency cooldowns are stored as seconds after it.
    uint256 private immutable _cooldownEpoch;

    constructor(IParticipantRegistry participants_) EIP712("medvault ConsentManager", "1") {
        participants = participants_;
        _cooldownEpoch = block.timestamp;
    }

    // -- grants -------------------------------------------------------------------------------

    /// @inheritdoc IConsentManager
    function grant(
        address grantee,
        uint8 scopes,
        uint8 purpose,
        uint40 validFrom,
        uint40 validUntil,
        bytes calldata keysCid
    ) external {
        Grant storage g = _grants[msg.sender][grantee];
        _grant(msg.sender, grantee, scopes, purpose, validFrom, validUntil, keysCid, g, _word(g), 0);
    }

    /// @inheritdoc IConsentManager
    function grantBySig(
        address patient,
        address grantee,
        uint8 scopes,
        uint8 purpose,
        uint40 validFrom,
        uint40 validUntil,
        bytes calldata keysCid,
        Authorization calldata auth
    ) external {
        bytes32 structHash = keccak256(
            abi.encode(
                GRANT_TYPEHASH,
                patient,
                grantee,
                scopes,
                purpose,
                validFrom,
                validUntil,
                keccak256(keysCid),
                auth.nonce,
                auth.deadline
            )
        );
        Grant storage g = _grants[patient][grantee];
        uint256 word = _word(g);
        _checkNonce(patient, grantee, uint64(word >> NONCE_SHIFT), auth);
        (address signer, Delegation memory d) = _authorizeSignature(patient, structHash, auth, true);
        if (d.appointment == 0) {
            _grant(patient, grantee, scopes, purpose, validFrom, validUntil, keysCid, g, word, 0);
            return;
        }
        // A delegate's grant: never to itself, within its terms, opening no earlier than now.
        if (grantee == signer) revert ConsentManagerDelegateSelfGrant(signer);
        if (validFrom < block.timestamp) validFrom = uint40(block.timestamp);
        _checkDelegateTerms(signer, d, scopes, validUntil > validFrom ? validUntil - validFrom : 0);
        _grant(patient, grantee, scopes, purpose, validFrom, validUntil, keysCid, g, word, d.appointment);
    }

    /// @inheritdoc IConsentManager
    function shareKeys(address grantee, bytes calldata keysCid) external {
        if (grantee == address(0)) revert ConsentManagerInvalidGrantee(grantee);
        if (keysCid.length == 0) revert ConsentManagerEmptyKeysCid();
        Cids.check(keysCid);
        emit KeysShared(msg.sender, grantee, keysCid);
    }

    /// @inheritdoc IConsentManager
    function revoke(address grantee) external {
        _revoke(msg.sender, grantee);
    }

    /// @inheritdoc IConsentManager
    function revokeBySig(address patient, address grantee, Authorization calldata auth) external {
        bytes32 structHash = keccak256(abi.encode(REVOKE_TYPEHASH, patient, grantee, auth.nonce, auth.deadline));
        _checkNonce(patient, grantee, _grants[patient][grantee].nonce, auth);
        _authorizeSignature(patient, structHash, auth, true);
        _revoke(patient, grantee);
    }

    /// @inheritdoc IConsentManager
    function invalidateNonce(address counterpart) external {
        if (counterpart == address(0)) revert ConsentManagerInvalidGrantee(counterpart);
        _bumpNonce(msg.sender, counterpart);
        Delegation storage d = _delegations[msg.sender][counterpart];
        d.nonce += 1;
    }

    /// @inheritdoc IConsentManager
    function invalidateNonceFor(address patient, address counterpart) external {
        if (counterpart == address(0)) revert ConsentManagerInvalidGrantee(counterpart);
        // A delegate cannot void the patient's signatures about its own grant (a signed revoke).
        if (_authorize(msg.sender, patient).appointed && counterpart == msg.sender) {
            revert ConsentManagerDelegateSelfGrant(msg.sender);
        }
        _bumpNonce(patient, counterpart);
    }

    // -- delegates ------------------------------------------------------------------------------

    /// @inheritdoc IConsentManager
    function appointDelegate(address delegate, uint8 scopes, uint40 maxDuration, bool openHistory) external {
        _appoint(msg.sender, delegate, scopes, maxDuration, openHistory);
    }

    /// @inheritdoc IConsentManager
    function appointDelegateBySig(
        address patient,
        address delegate,
        uint8 scopes,
        uint40 maxDuration,
        bool openHistory,
        Authorization calldata auth
    ) external {
        bytes32 structHash = keccak256(
            abi.encode(
                APPOINT_DELEGATE_TYPEHASH,
                patient,
                delegate,
                scopes,
                maxDuration,
                openHistory,
                auth.nonce,
                auth.deadline
            )
        );
        _checkNonce(patient, delegate, _delegations[patient][delegate].nonce, auth);
        _authorizeSignature(patient, structHash, auth, false);
        _appoint(patient, delegate, scopes, maxDuration, openHistory);
    }

    /// @inheritdoc IConsentManager
    function removeDelegate(address delegate, bool keepGrants) external {
        _remove(msg.sender, delegate, keepGrants);
    }

    /// @inheritdoc IConsentManager
    function removeDelegateBySig(address patient, address delegate, bool keepGrants, Authorization calldata auth)
        external
    {
        bytes32 structHash =
            keccak256(abi.encode(REMOVE_DELEGATE_TYPEHASH, patient, delegate, keepGrants, auth.nonce, auth.deadline));
        _checkNonce(patient, delegate, _delegations[patient][delegate].nonce, auth);
        _authorizeSignature(patient, structHash, auth, false);
        _remove(patient, delegate, keepGrants);
    }

    // -- research requests -------------------------------------------------------------------

    /// @inheritdoc IConsentManager
    function requestAccess(address patient, uint8 scopes, uint8 purpose, uint40 duration, bytes32 studyId)
        external
        returns (uint256 requestId)
    {
        if (!participants.isResearcher(msg.sender)) revert ConsentManagerNotResearcher(msg.sender);
        _checkTerms(scopes, purpose);
        if (duration == 0 || duration > MAX_REQUEST_DURATION) {
            revert ConsentManagerInvalidDuration(duration, MAX_REQUEST_DURATION);
        }
        uint40 requestedAt = uint40(block.timestamp);
        requestId = _requestId(
            AccessRequest({
                patient: patient,
                researcher: msg.sender,
                scopes: scopes,
                purpose: purpose,
                duration: duration,
                requestedAt: requestedAt,
                studyId: studyId
            })
        );
        if (_requests[requestId] != RequestStatus.None) revert ConsentManagerDuplicateRequest(requestId);
        _requests[requestId] = RequestStatus.Pending;
        emit AccessRequested(requestId, patient, msg.sender, scopes, purpose, duration, requestedAt, studyId);
    }

    /// @inheritdoc IConsentManager
    function approveRequest(AccessRequest calldata request, bytes calldata keysCid) external {
        _approve(request, keysCid, _authorize(msg.sender, request.patient), msg.sender);
    }

    /// @inheritdoc IConsentManager
    function approveRequestBySig(AccessRequest calldata request, bytes calldata keysCid, Authorization calldata auth)
        external
    {
        bytes32 structHash = keccak256(
            abi.encode(
                APPROVE_REQUEST_TYPEHASH,
                request.patient,
                request.researcher,
                request.scopes,
                request.purpose,
                request.duration,
                request.requestedAt,
                request.studyId,
                keccak256(keysCid),
                auth.nonce,
                auth.deadline
            )
        );
        _checkNonce(request.patient, request.researcher, _grants[request.patient][request.researcher].nonce, auth);
        (address signer, Delegation memory d) = _authorizeSignature(request.patient, structHash, auth, true);
        _approve(request, keysCid, d, signer);
    }

    /// @inheritdoc IConsentManager
    function denyRequest(AccessRequest calldata request) external {
        // A delegate's deny of its own request would void the patient's signatures about its grant.
        if (_authorize(msg.sender, request.patient).appointed && request.researcher == msg.sender) {
            revert ConsentManagerDelegateSelfGrant(msg.sender);
        }
        _deny(request);
    }

    /// @inheritdoc IConsentManager
    function denyRequestBySig(AccessRequest calldata request, Authorization calldata auth) external {
        bytes32 structHash = keccak256(
            abi.encode(
                DENY_REQUEST_TYPEHASH,
                request.patient,
                request.researcher,
                request.scopes,
                request.purpose,
                request.duration,
                request.requestedAt,
                request.studyId,
                auth.nonce,
                auth.deadline
            )
        );
        _checkNonce(request.patient, request.researcher, _grants[request.patient][request.researcher].nonce, auth);
        (address signer, Delegation memory d) = _authorizeSignature(request.patient, structHash, auth, true);
        if (d.appointed && request.researcher == signer) revert ConsentManagerDelegateSelfGrant(signer);
        _deny(request);
    }

    // -- emergency access --------------------------------------------------------------------

    /// @inheritdoc IConsentManager
    function setEmergencyPolicy(EmergencyMode mode, uint8 scopes, bool fullHistory) external {
        if (mode == EmergencyMode.None ? scopes & ~ALL_CATEGORIES != 0 : !Categories.isValidScope(scopes)) {
            revert ConsentManagerInvalidEmergencyPolicy(mode, scopes);
        }
        _emergencyPolicies[msg.sender] = EmergencyPolicy(mode, scopes, fullHistory);
        emit EmergencyPolicySet(msg.sender, mode, scopes, fullHistory);
    }

    /// @inheritdoc IConsentManager
    function setEmergencyStanding(address provider, EmergencyStanding standing) external {
        if (provider == address(0) || provider == msg.sender) revert ConsentManagerInvalidGrantee(provider);
        _grants[msg.sender][provider].emergencyStanding = standing;
        emit EmergencyStandingSet(msg.sender, provider, standing);
    }

    /// @inheritdoc IConsentManager
    function takeEmergencyAccess(address patient, string calldata reason) external {
        if (!participants.isProvider(msg.sender)) revert ConsentManagerNotProvider(msg.sender);
        if (bytes(reason).length == 0) revert ConsentManagerMissingReason();
        if (patient == msg.sender) revert ConsentManagerInvalidGrantee(msg.sender);
        EmergencyPolicy memory policy = _emergencyPolicies[patient];
        Grant storage g = _grants[patient][msg.sender];
        uint256 word = _word(g);
        if (!_emergencyPermitted(policy.mode, EmergencyStanding(uint8(word >> STANDING_SHIFT)))) {
            revert ConsentManagerEmergencyNotPermitted(patient, msg.sender);
        }
        // One window at a time, and the next one only a cooldown after the last one ended, however
        // the grant changed in between (the cooldown bits survive grants and approvals).
        uint256 availableAt = _cooldownEpoch + (word >> COOLDOWN_SHIFT);
        if (block.timestamp < availableAt) revert ConsentManagerEmergencyCooldown(patient, msg.sender, availableAt);
        uint40 validUntil = uint40(block.timestamp) + EMERGENCY_DURATION;
        // 2^32 seconds (136 years) after deployment, the cooldown saturates rather than wraps.
        uint256 nextAt = uint256(validUntil) + EMERGENCY_COOLDOWN - _cooldownEpoch;
        if (nextAt > type(uint32).max) nextAt = type(uint32).max;
        // The nonce stays: the provider's act must not void a revoke the patient has signed.
        _store(
            g,
            _pack(
                uint40(block.timestamp),
                validUntil,
                policy.scopes,
                PURPOSE_ETREAT,
                GrantKind.Emergency,
                uint64(word >> NONCE_SHIFT),
                0
            ) | (word & STANDING_BITS) | nextAt << COOLDOWN_SHIFT
        );
        emit EmergencyAccessTaken(patient, msg.sender, validUntil, policy.scopes, policy.fullHistory, reason);
    }

    // -- views ----------------------------------------------------------------------------------

    /// @inheritdoc IConsentManager
    function canRead(address patient, address grantee, uint8 category) external view returns (bool) {
        if (patient == grantee) return true;
        return _holds(patient, grantee, _grants[patient][grantee], category);
    }

    /// @inheritdoc IConsentManager
    function canReadRecord(address patient, address grantee, uint8 category, uint64 writtenAt)
        external
        view
        returns (bool)
    {
        if (patient == grantee) return true;
        Grant memory g = _grants[patient][grantee];
        if (!_holds(patient, grantee, g, category)) return false;
        if (writtenAt >= g.validFrom) return true;
        // A record from before the grant: only if the grant may open history.
        if (g.appointment != 0) return _appointments[g.appointment].openHistory;
        if (g.kind == GrantKind.Emergency) return _emergencyPolicies[patient].fullHistory;
        return true;
    }

    /// @inheritdoc IEmergencyAccess
    function emergencyScopes(address patient, address provider) external view returns (uint8 scopes) {
        Grant memory g = _grants[patient][provider];
        if (g.kind != GrantKind.Emergency || !_live(patient, provider, g)) return 0;
        return g.scopes;
    }

    /// @inheritdoc IConsentManager
    function emergencyPolicyOf(address patient) external view returns (EmergencyPolicy memory) {
        return _emergencyPolicies[patient];
    }

    /// @inheritdoc IConsentManager
    function appointmentOf(uint256 appointment) external view returns (Appointment memory) {
        return _appointments[appointment];
    }

    /// @inheritdoc IConsentManager
    function grantOf(address patient, address grantee) external view returns (Grant memory) {
        return _grants[patient][grantee];
    }

    /// @inheritdoc IConsentManager
    function delegationOf(address patient, address delegate) external view returns (Delegation memory) {
        return _delegations[patient][delegate];
    }

    /// @inheritdoc IConsentManager
    function requestStatus(uint256 requestId) external view returns (RequestStatus) {
        return _requests[requestId];
    }

    /// @notice The EIP-712 domain separator (wallets read the domain via ERC-5267 `eip712Domain`).
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // -- internals ------------------------------------------------------------------------------

    /// Writes the grant into `g`, whose word is `word`: its nonce advances, the provider's
    /// emergency standing stays; `appointment` is the delegate appointment making it, or zero.
    function _grant(
        address patient,
        address grantee,
        uint8 scopes,
        uint8 purpose,
        uint40 validFrom,
        uint40 validUntil,
        bytes calldata keysCid,
        Grant storage g,
        uint256 word,
        uint48 appointment
    ) private {
        if (grantee == address(0) || grantee == patient) {
            revert ConsentManagerInvalidGrantee(grantee);
        }
        _checkTerms(scopes, purpose);
        if (validFrom >= validUntil || validUntil <= block.timestamp) {
            revert ConsentManagerInvalidWindow(validFrom, validUntil, block.timestamp);
        }
        if (keysCid.length != 0) Cids.check(keysCid);
        GrantKind kind = appointment == 0 ? GrantKind.Patient : GrantKind.Delegate;
        _store(
            g,
            _pack(validFrom, validUntil, scopes, purpose, kind, uint64(word >> NONCE_SHIFT) + 1, appointment)
                | (word & KEPT_BITS)
        );
        emit AccessGranted(patient, grantee, scopes, purpose, validFrom, validUntil);
        if (keysCid.length != 0) emit KeysShared(patient, grantee, keysCid);
    }

    function _revoke(address patient, address grantee) private {
        Grant storage g = _grants[patient][grantee];
        uint256 word = _word(g);
        if (uint40(word >> 40) <= block.timestamp) revert ConsentManagerNoActiveGrant(patient, grantee);
        // A revoke of emergency access blocks the provider from taking it again until the patient
        // allows it (which then needs no cooldown); any other revoke keeps standing and cooldown.
        bool emergency = uint8(word >> KIND_SHIFT) == uint8(GrantKind.Emergency);
        uint256 standing = emergency ? uint256(uint8(EmergencyStanding.Blocked)) << STANDING_SHIFT : word & KEPT_BITS;
        // Keep the nonce: a signature made before the revoke must not become valid again.
        _store(g, uint256(uint64(word >> NONCE_SHIFT) + 1) << NONCE_SHIFT | standing);
        emit AccessRevoked(patient, grantee);
        if (emergency) emit EmergencyStandingSet(patient, grantee, EmergencyStanding.Blocked);
    }

    /// The whole packed word of `g`.
    function _word(Grant storage g) private view returns (uint256 word) {
        assembly ("memory-safe") {
            word := sload(g.slot)
        }
    }

    function _store(Grant storage g, uint256 word) private {
        assembly ("memory-safe") {
            sstore(g.slot, word)
        }
    }

    /// A {Grant} word with the documented bit layout and no emergency standing.
    function _pack(
        uint40 validFrom,
        uint40 validUntil,
        uint8 scopes,
        uint8 purpose,
        GrantKind kind,
        uint64 nonce,
        uint48 appointment
    ) private pure returns (uint256) {
        return uint256(validFrom) | uint256(validUntil) << 40 | uint256(scopes) << 80 | uint256(purpose) << 88
            | uint256(uint8(kind)) << KIND_SHIFT | uint256(nonce) << NONCE_SHIFT | uint256(appointment)
            << APPOINTMENT_SHIFT;
    }

    function _bumpNonce(address patient, address counterpart) private {
        Grant storage g = _grants[patient][counterpart];
        uint64 nonce = g.nonce + 1;
        g.nonce = nonce;
        emit NonceInvalidated(patient, counterpart, nonce);
    }

    function _appoint(address patient, address delegate, uint8 scopes, uint40 maxDuration, bool openHistory) private {
        Delegation memory d = _delegations[patient][delegate];
        if (delegate == address(0) || delegate == patient || d.appointed) {
            revert ConsentManagerInvalidDelegate(delegate);
        }
        if (!Categories.isValidScope(scopes) || maxDuration == 0) {
            revert ConsentManagerInvalidDelegateTerms(scopes, maxDuration);
        }
        uint48 appointment = ++_appointmentCount;
        _delegations[patient][delegate] = Delegation(true, d.nonce + 1, appointment, scopes, maxDuration, openHistory);
        _appointments[appointment] = Appointment(AppointmentState.Live, openHistory);
        emit DelegateAppointed(patient, delegate, appointment, scopes, maxDuration, openHistory);
    }

    function _remove(address patient, address delegate, bool keepGrants) private {
        Delegation storage d = _delegations[patient][delegate];
        if (delegate == address(0) || delegate == patient || !d.appointed) {
            revert ConsentManagerInvalidDelegate(delegate);
        }
        uint48 appointment = d.appointment;
        d.appointed = false;
        d.nonce += 1;
        _appointments[appointment].state = keepGrants ? AppointmentState.Kept : AppointmentState.Ended;
        emit DelegateRemoved(patient, delegate, appointment, keepGrants);
    }

    /// Approves `request` for the patient, or for the delegate `actor` of appointment `d`.
    function _approve(AccessRequest calldata request, bytes calldata keysCid, Delegation memory d, address actor)
        private
    {
        uint256 requestId = _pendingRequest(request);
        if (block.timestamp >= uint256(request.requestedAt) + REQUEST_TTL) {
            revert ConsentManagerRequestExpired(requestId, uint256(request.requestedAt) + REQUEST_TTL);
        }
        // The researcher's accreditation is checked where it matters, at every read (`_live`): a
        // grant approved for, or held by, a researcher who lost it opens nothing. (Checking it
        // here too would cost a cold call, over the approval's gas budget.)
        if (d.appointment != 0) {
            if (request.researcher == actor) revert ConsentManagerDelegateSelfGrant(actor);
            _checkDelegateTerms(actor, d, request.scopes, request.duration);
        }
        if (keysCid.length != 0) Cids.check(keysCid);
        _requests[requestId] = RequestStatus.Approved;
        uint40 validUntil = uint40(block.timestamp) + request.duration;
        Grant storage g = _grants[request.patient][request.researcher];
        uint256 word = _word(g);
        _store(
            g,
            _pack(
                uint40(block.timestamp),
                validUntil,
                request.scopes,
                request.purpose,
                GrantKind.Research,
                uint64(word >> NONCE_SHIFT) + 1,
                d.appointment
            ) | (word & KEPT_BITS)
        );
        emit RequestApproved(requestId, request.patient, request.researcher, validUntil);
        if (keysCid.length != 0) emit KeysShared(request.patient, request.researcher, keysCid);
    }

    function _deny(AccessRequest calldata request) private {
        uint256 requestId = _pendingRequest(request);
        _requests[requestId] = RequestStatus.Denied;
        _grants[request.patient][request.researcher].nonce += 1;
        emit RequestDenied(requestId, request.patient, request.researcher);
    }

    function _pendingRequest(AccessRequest calldata request) private view returns (uint256 requestId) {
        // The request's seven static words hashed straight from calldata: the same bytes as
        // abi.encode(request), without copying the struct to memory field by field.
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            calldatacopy(ptr, request, 0xe0)
            requestId := keccak256(ptr, 0xe0)
        }
        RequestStatus status = _requests[requestId];
        if (status != RequestStatus.Pending) revert ConsentManagerRequestNotPending(requestId, status);
    }

    /// The caller acts for `patient`: the patient (an empty delegation) or their delegate (its
    /// delegation, with the appointment's terms).
    function _authorize(address actor, address patient) private returns (Delegation memory d) {
        if (actor == patient) return d;
        d = _delegations[patient][actor];
        if (!d.appointed) revert ConsentManagerUnauthorized(actor, patient);
        emit ActedAsDelegate(patient, actor);
    }

    /// The first signature check: the relationship's nonce in the low 64 bits of `auth.nonce` (a
    /// replay fails here, before anything else). The caller writes `current + 1` with the change.
    function _checkNonce(address patient, address counterpart, uint64 current, Authorization calldata auth)
        private
        pure
    {
        if (uint64(auth.nonce) != current) {
            revert ConsentManagerInvalidNonce(patient, counterpart, current, auth.nonce);
        }
    }

    /// The rest of the signature check, the ERC20Permit way: deadline, domain, signer. The
    /// signer is the patient (an empty delegation is returned) or, where allowed, a delegate
    /// whose current appointment is the one the nonce's high bits name (its delegation).
    function _authorizeSignature(address patient, bytes32 structHash, Authorization calldata auth, bool delegateAllowed)
        private
        returns (address signer, Delegation memory d)
    {
        if (block.timestamp > auth.deadline) revert ConsentManagerExpiredSignature(auth.deadline);
        if (auth.chainId != block.chainid) revert ConsentManagerWrongChain(block.chainid, auth.chainId);
        if (auth.verifyingContract != address(this)) {
            revert ConsentManagerWrongContract(address(this), auth.verifyingContract);
        }
        signer = ECDSA.recover(_hashTypedDataV4(structHash), auth.r, auth.vs);
        uint256 signedFor = auth.nonce >> 64;
        if (signer == patient) {
            if (signedFor != 0) revert ConsentManagerWrongAppointment(signer, signedFor, 0);
            return (signer, d);
        }
        if (delegateAllowed) d = _delegations[patient][signer];
        if (!d.appointed) revert ConsentManagerInvalidSigner(signer, patient);
        if (signedFor != d.appointment) revert ConsentManagerWrongAppointment(signer, signedFor, d.appointment);
        emit ActedAsDelegate(patient, signer);
    }

    /// A delegate's grant or approval of `scopes` for `duration` seconds is within its terms.
    function _checkDelegateTerms(address delegate, Delegation memory d, uint8 scopes, uint256 duration) private pure {
        if (scopes & ~d.scopes != 0 || duration > d.maxDuration) {
            revert ConsentManagerOutsideDelegateTerms(delegate, scopes, duration);
        }
    }

    /// Whether the policy's mode and the provider's standing let it take emergency access.
    function _emergencyPermitted(EmergencyMode mode, EmergencyStanding standing) private pure returns (bool) {
        if (standing == EmergencyStanding.Blocked) return false;
        return
            mode == EmergencyMode.AnyProvider || (mode == EmergencyMode.Named && standing == EmergencyStanding.Allowed);
    }

    /// `g` grants `category` now (see `_live`).
    function _holds(address patient, address grantee, Grant memory g, uint8 category) private view returns (bool) {
        return Categories.contains(g.scopes, category) && _live(patient, grantee, g);
    }

    /// `g`'s window holds now and so does what it rests on: the provider's accreditation and the
    /// patient's policy for emergency access, the researcher's accreditation for a research
    /// grant, the delegate's appointment (or the patient's keeping it) for a delegate's grant.
    function _live(address patient, address grantee, Grant memory g) private view returns (bool) {
        if (block.timestamp < g.validFrom || block.timestamp >= g.validUntil) return false;
        if (g.appointment != 0 && _appointments[g.appointment].state == AppointmentState.Ended) return false;
        if (g.kind == GrantKind.Emergency) {
            return _emergencyPermitted(_emergencyPolicies[patient].mode, g.emergencyStanding)
                && participants.isProvider(grantee);
        }
        if (g.kind == GrantKind.Research) return participants.isResearcher(grantee);
        return true;
    }

    function _checkTerms(uint8 scopes, uint8 purpose) private pure {
        if (!Categories.isValidScope(scopes)) revert ConsentManagerInvalidScopes(scopes);
        if (purpose >= PURPOSE_COUNT) revert ConsentManagerInvalidPurpose(purpose);
    }

    function _requestId(AccessRequest memory request) private pure returns (uint256) {
        return uint256(keccak256(abi.encode(request)));
    }
}
