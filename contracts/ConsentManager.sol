// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {IConsentManager} from "./interfaces/IConsentManager.sol";
import {IParticipantRegistry} from "./interfaces/IParticipantRegistry.sol";
import {Categories} from "./libraries/Categories.sol";

/// @title ConsentManager
/// @notice Scoped, time-limited, wallet-signed consent; see {IConsentManager}.
contract ConsentManager is IConsentManager, EIP712 {
    /// The scope holding every record category, {Categories-ALL}.
    uint8 public constant ALL_CATEGORIES = Categories.ALL;
    /// HL7 PurposeOfUse codes 0..7 (see {IConsentManager}).
    uint8 public constant PURPOSE_COUNT = 8;
    uint8 public constant PURPOSE_ETREAT = 1;
    uint40 public constant EMERGENCY_DURATION = 24 hours;
    uint40 public constant MAX_REQUEST_DURATION = 365 days;

    // The EIP-712 typehashes of the six signed changes (the types are listed in {IConsentManager}).
    bytes32 public constant GRANT_TYPEHASH = keccak256(
        "Grant(address patient,address grantee,uint8 scopes,uint8 purpose,uint40 validFrom,uint40 validUntil,bytes keysCid,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant REVOKE_TYPEHASH =
        keccak256("Revoke(address patient,address grantee,uint256 nonce,uint256 deadline)");
    bytes32 public constant APPOINT_DELEGATE_TYPEHASH =
        keccak256("AppointDelegate(address patient,address delegate,uint256 nonce,uint256 deadline)");
    bytes32 public constant REMOVE_DELEGATE_TYPEHASH =
        keccak256("RemoveDelegate(address patient,address delegate,uint256 nonce,uint256 deadline)");
    bytes32 public constant APPROVE_REQUEST_TYPEHASH = keccak256(
        "ApproveRequest(address patient,address researcher,uint8 scopes,uint8 purpose,uint40 duration,uint40 requestedAt,bytes32 studyId,bytes keysCid,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant DENY_REQUEST_TYPEHASH = keccak256(
        "DenyRequest(address patient,address researcher,uint8 scopes,uint8 purpose,uint40 duration,uint40 requestedAt,bytes32 studyId,uint256 nonce,uint256 deadline)"
    );

    IParticipantRegistry public immutable participants;

    mapping(address patient => mapping(address grantee => Grant)) private _grants;
    mapping(address patient => mapping(address delegate => Delegation)) private _delegations;
    mapping(uint256 requestId => RequestStatus) private _requests;

    /// The signature check of `appointDelegateBySig` and `removeDelegateBySig`: `auth` is the
    /// patient's own signature over (typehash, patient, delegate) for the delegation's nonce (a
    /// delegate cannot change delegations). A modifier rather than a private function: the
    /// compiler copies it into both, where a shared function would cost a call.
    modifier signedByPatient(bytes32 typehash, address patient, address delegate, Authorization calldata auth) {
        bytes32 structHash = keccak256(abi.encode(typehash, patient, delegate, auth.nonce, auth.deadline));
        _checkNonce(patient, delegate, _delegations[patient][delegate].nonce, auth);
        _authorizeSignature(patient, structHash, auth, false);
        _;
    }

    constructor(IParticipantRegistry participants_) EIP712("medvault ConsentManager", "1") {
        participants = participants_;
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
        _grant(msg.sender, grantee, scopes, purpose, validFrom, validUntil, keysCid, _grants[msg.sender][grantee].nonce);
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
        uint64 nonce = _checkNonce(patient, grantee, _grants[patient][grantee].nonce, auth);
        _authorizeSignature(patient, structHash, auth, true);
        _grant(patient, grantee, scopes, purpose, validFrom, validUntil, keysCid, nonce);
    }

    /// @inheritdoc IConsentManager
    function shareKeys(address grantee, bytes calldata keysCid) external {
        if (grantee == address(0)) revert ConsentManagerInvalidGrantee(grantee);
        if (keysCid.length == 0) revert ConsentManagerEmptyKeysCid();
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

    // -- delegates ------------------------------------------------------------------------------

    /// @inheritdoc IConsentManager
    function appointDelegate(address delegate) external {
        _setDelegate(msg.sender, delegate, true);
    }

    /// @inheritdoc IConsentManager
    function appointDelegateBySig(address patient, address delegate, Authorization calldata auth)
        external
        signedByPatient(APPOINT_DELEGATE_TYPEHASH, patient, delegate, auth)
    {
        _setDelegate(patient, delegate, true);
    }

    /// @inheritdoc IConsentManager
    function removeDelegate(address delegate) external {
        _setDelegate(msg.sender, delegate, false);
    }

    /// @inheritdoc IConsentManager
    function removeDelegateBySig(address patient, address delegate, Authorization calldata auth)
        external
        signedByPatient(REMOVE_DELEGATE_TYPEHASH, patient, delegate, auth)
    {
        _setDelegate(patient, delegate, false);
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
        _authorize(msg.sender, request.patient);
        _approve(request, keysCid);
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
        _authorizeSignature(request.patient, structHash, auth, true);
        _approve(request, keysCid);
    }

    /// @inheritdoc IConsentManager
    function denyRequest(AccessRequest calldata request) external {
        _authorize(msg.sender, request.patient);
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
        _authorizeSignature(request.patient, structHash, auth, true);
        _deny(request);
    }

    // -- emergency access --------------------------------------------------------------------

    /// @inheritdoc IConsentManager
    function takeEmergencyAccess(address patient, string calldata reason) external {
        if (!participants.isProvider(msg.sender)) revert ConsentManagerNotProvider(msg.sender);
        if (bytes(reason).length == 0) revert ConsentManagerMissingReason();
        if (patient == msg.sender) revert ConsentManagerInvalidGrantee(msg.sender);
        uint40 validUntil = uint40(block.timestamp) + EMERGENCY_DURATION;
        // The nonce stays: the provider's act must not void a revoke the patient has signed.
        _grants[patient][msg.sender] = Grant({
            validFrom: uint40(block.timestamp),
            validUntil: validUntil,
            scopes: ALL_CATEGORIES,
            purpose: PURPOSE_ETREAT,
            emergency: true,
            nonce: _grants[patient][msg.sender].nonce
        });
        emit EmergencyAccessTaken(patient, msg.sender, validUntil, reason);
    }

    // -- views ----------------------------------------------------------------------------------

    /// @inheritdoc IConsentManager
    function canRead(address patient, address grantee, uint8 category) external view returns (bool) {
        if (patient == grantee) return true;
        Grant memory g = _grants[patient][grantee];
        return g.validFrom <= block.timestamp && block.timestamp < g.validUntil
            && Categories.contains(g.scopes, category);
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

    function _grant(
        address patient,
        address grantee,
        uint8 scopes,
        uint8 purpose,
        uint40 validFrom,
        uint40 validUntil,
        bytes calldata keysCid,
        uint64 nonce
    ) private {
        if (grantee == address(0) || grantee == patient) revert ConsentManagerInvalidGrantee(grantee);
        _checkTerms(scopes, purpose);
        if (validFrom >= validUntil || validUntil <= block.timestamp) {
            revert ConsentManagerInvalidWindow(validFrom, validUntil, block.timestamp);
        }
        _grants[patient][grantee] = Grant({
            validFrom: validFrom,
            validUntil: validUntil,
            scopes: scopes,
            purpose: purpose,
            emergency: false,
            nonce: nonce + 1
        });
        emit AccessGranted(patient, grantee, scopes, purpose, validFrom, validUntil);
        if (keysCid.length != 0) emit KeysShared(patient, grantee, keysCid);
    }

    function _revoke(address patient, address grantee) private {
        Grant storage g = _grants[patient][grantee];
        if (g.validUntil <= block.timestamp) revert ConsentManagerNoActiveGrant(patient, grantee);
        // Keep the nonce: a signature made before the revoke must not become valid again.
        _grants[patient][grantee] = Grant(0, 0, 0, 0, false, g.nonce + 1);
        emit AccessRevoked(patient, grantee);
    }

    function _setDelegate(address patient, address delegate, bool appointed) private {
        Delegation storage d = _delegations[patient][delegate];
        if (delegate == address(0) || delegate == patient || d.appointed == appointed) {
            revert ConsentManagerInvalidDelegate(delegate);
        }
        _delegations[patient][delegate] = Delegation(appointed, d.nonce + 1);
        if (appointed) emit DelegateAppointed(patient, delegate);
        else emit DelegateRemoved(patient, delegate);
    }

    function _approve(AccessRequest calldata request, bytes calldata keysCid) private {
        uint256 requestId = _pendingRequest(request);
        _requests[requestId] = RequestStatus.Approved;
        uint40 validUntil = uint40(block.timestamp) + request.duration;
        Grant storage g = _grants[request.patient][request.researcher];
        _grants[request.patient][request.researcher] = Grant({
            validFrom: uint40(block.timestamp),
            validUntil: validUntil,
            scopes: request.scopes,
            purpose: request.purpose,
            emergency: false,
            nonce: g.nonce + 1
        });
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

    /// The caller acts for `patient`: the patient or their delegate.
    function _authorize(address actor, address patient) private {
        if (actor == patient) return;
        if (!_delegations[patient][actor].appointed) revert ConsentManagerUnauthorized(actor, patient);
        emit ActedAsDelegate(patient, actor);
    }

    /// The first signature check: the relationship's nonce (a replay fails here, before
    /// anything else). The caller writes `current + 1` with the change it makes.
    function _checkNonce(address patient, address counterpart, uint64 current, Authorization calldata auth)
        private
        pure
        returns (uint64)
    {
        if (auth.nonce != current) revert ConsentManagerInvalidNonce(patient, counterpart, current, auth.nonce);
        return current;
    }

    /// The rest of the signature check, the ERC20Permit way: deadline, domain, signer.
    function _authorizeSignature(address patient, bytes32 structHash, Authorization calldata auth, bool delegateAllowed)
        private
    {
        if (block.timestamp > auth.deadline) revert ConsentManagerExpiredSignature(auth.deadline);
        if (auth.chainId != block.chainid) revert ConsentManagerWrongChain(block.chainid, auth.chainId);
        if (auth.verifyingContract != address(this)) {
            revert ConsentManagerWrongContract(address(this), auth.verifyingContract);
        }
        address signer = ECDSA.recover(_hashTypedDataV4(structHash), auth.r, auth.vs);
        if (signer == patient) return;
        if (!delegateAllowed || !_delegations[patient][signer].appointed) {
            revert ConsentManagerInvalidSigner(signer, patient);
        }
        emit ActedAsDelegate(patient, signer);
    }

    function _checkTerms(uint8 scopes, uint8 purpose) private pure {
        if (!Categories.isValidScope(scopes)) revert ConsentManagerInvalidScopes(scopes);
        if (purpose >= PURPOSE_COUNT) revert ConsentManagerInvalidPurpose(purpose);
    }

    function _requestId(AccessRequest memory request) private pure returns (uint256) {
        return uint256(keccak256(abi.encode(request)));
    }
}
