// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {CommonBase} from "forge-std/Base.sol";
import {StdCheats} from "forge-std/StdCheats.sol";
import {StdUtils} from "forge-std/StdUtils.sol";
import {ConsentManager} from "../../contracts/ConsentManager.sol";
import {IConsentManager} from "../../contracts/interfaces/IConsentManager.sol";
import {ConsentSig} from "./ConsentSig.sol";

/// @notice Drives {ConsentManager} for the invariant tests: two patients, two grantees, one
/// delegate, one stranger, and time. Every call goes through a low-level call so that the
/// handler itself never reverts; the outcome is compared with a model of what the contract
/// must do, and every divergence is counted in a ghost_ variable the invariants read.
contract ConsentHandler is CommonBase, StdCheats, StdUtils {
    struct GrantModel {
        uint40 from;
        uint40 until;
        uint8 scopes;
        uint64 nonce;
        bool revoked;
        bool emergency;
        /// The delegate appointment that made the grant, or zero.
        uint48 appointment;
        /// The patient's emergency standing of the grantee: 0 default, 1 allowed, 2 blocked.
        uint8 standing;
        /// When the grantee may next take emergency access: set by a take, kept by every grant,
        /// approval and other revoke, cleared only by a revoke of the emergency (which blocks).
        uint256 emergencyAvailableAt;
    }

    struct DelegationModel {
        bool appointed;
        uint64 nonce;
        uint48 appointment;
    }

    struct PolicyModel {
        uint8 mode;
        uint8 scopes;
    }

    ConsentManager internal immutable cm;
    bytes32 internal immutable domain;

    address[2] internal _patients;
    uint256[2] internal _patientPks;
    address[2] internal _grantees;
    address public delegate;
    uint256 internal delegatePk;
    address public stranger;
    uint256 internal strangerPk;

    mapping(address patient => mapping(address grantee => GrantModel)) internal _grantModel;
    mapping(address patient => mapping(address delegate => DelegationModel)) internal _delegationModel;

    mapping(address patient => PolicyModel) internal _policyModel;
    /// Appointments removed without keeping their grants.
    mapping(uint48 appointment => bool) internal _appointmentEnded;
    uint48 internal _appointments;

    mapping(bytes32 digest => bool) internal _usedDigest;
    mapping(bytes32 relationshipNonce => bool) internal _usedNonce;
    bytes[] internal _acceptedSignedCalls;

    /// The model's clock; every action starts by warping to it.
    uint40 public ghost_now;

    /// A consent change succeeded although neither the patient nor an allowed delegate made it.
    uint256 public ghost_unauthorizedSuccesses;
    /// A call's success differed from what the model expected.
    uint256 public ghost_modelMismatches;
    /// A success did not advance its relationship's nonce by exactly one, or a failure moved it.
    uint256 public ghost_nonceViolations;
    /// An accepted signature was accepted again (relayed later from the recorded calldata).
    uint256 public ghost_replaySuccesses;
    /// A signature voided by a later direct change was accepted.
    uint256 public ghost_staleSignatureSuccesses;
    /// The same EIP-712 digest, or the same (relationship, nonce), was accepted twice.
    uint256 public ghost_duplicateDigests;
    uint256 public ghost_nonceReuses;

    // Coverage counters (not asserted on except to show the run did something).
    uint256 public ghost_changes;
    uint256 public ghost_signaturesAccepted;
    uint256 public ghost_replaysTried;
    uint256 public ghost_strangerAttempts;
    uint256 public ghost_emergenciesTaken;
    uint256 public ghost_delegateGrantsEnded;

    modifier synced() {
        vm.warp(ghost_now);
        _;
    }

    constructor(ConsentManager cm_, uint40 now_) {
        cm = cm_;
        domain = ConsentSig.domainSeparator(block.chainid, address(cm_));
        ghost_now = now_;
        (_patients[0], _patientPks[0]) = makeAddrAndKey("inv-patient-0");
        (_patients[1], _patientPks[1]) = makeAddrAndKey("inv-patient-1");
        _grantees[0] = makeAddr("inv-grantee-0");
        _grantees[1] = makeAddr("inv-grantee-1");
        (delegate, delegatePk) = makeAddrAndKey("inv-delegate");
        (stranger, strangerPk) = makeAddrAndKey("inv-stranger");
    }

    // ---------------------------------------------------------------- views for the invariants

    function patients() external view returns (address[] memory list) {
        list = new address[](2);
        list[0] = _patients[0];
        list[1] = _patients[1];
    }

    /// Everyone who may hold a grant in this model (the stranger only by an attack).
    function grantees() external view returns (address[] memory list) {
        list = new address[](3);
        list[0] = _grantees[0];
        list[1] = _grantees[1];
        list[2] = stranger;
    }

    /// Everyone who may be a delegate in this model (the stranger only by an attack).
    function delegates() external view returns (address[] memory list) {
        list = new address[](2);
        list[0] = delegate;
        list[1] = stranger;
    }

    function grantModel(address patient, address grantee) external view returns (GrantModel memory) {
        return _grantModel[patient][grantee];
    }

    function delegationModel(address patient, address delegate_) external view returns (DelegationModel memory) {
        return _delegationModel[patient][delegate_];
    }

    /// What canRead must answer now according to the model.
    function expectedAccess(address patient, address grantee, uint8 category) public view returns (bool) {
        GrantModel memory m = _grantModel[patient][grantee];
        if (m.appointment != 0 && _appointmentEnded[m.appointment]) return false;
        if (m.emergency && !_permitted(_policyModel[patient].mode, m.standing)) return false;
        return m.from <= ghost_now && ghost_now < m.until && category < 8 && (m.scopes >> category) & 1 == 1;
    }

    function appointmentEnded(uint48 appointment) external view returns (bool) {
        return _appointmentEnded[appointment];
    }

    function _permitted(uint8 mode, uint8 standing) internal pure returns (bool) {
        return standing != 2 && (mode == 2 || (mode == 1 && standing == 1));
    }

    // ---------------------------------------------------------------- actions

    function grant(uint256 patientSeed, uint256 granteeSeed, uint256 scopes, uint256 fromOffset, uint256 length)
        external
        synced
    {
        address p = _patients[patientSeed % 2];
        address g = _grantees[granteeSeed % 2];
        (uint8 s, uint40 from, uint40 until) = _terms(scopes, fromOffset, length);
        vm.prank(p);
        (bool ok,) = address(cm).call(abi.encodeCall(IConsentManager.grant, (g, s, 0, from, until, "")));
        _settleGrant(p, g, ok, true, true, false, from, until, s);
    }

    function revoke(uint256 patientSeed, uint256 granteeSeed) external synced {
        address p = _patients[patientSeed % 2];
        address g = _grantees[granteeSeed % 2];
        bool active = _grantModel[p][g].until > ghost_now;
        vm.prank(p);
        (bool ok,) = address(cm).call(abi.encodeCall(IConsentManager.revoke, (g)));
        _settleGrant(p, g, ok, active, true, true, 0, 0, 0);
    }

    /// Signed by the patient, or by the delegate (valid only while appointed); relayed by the stranger.
    function grantBySig(
        uint256 patientSeed,
        uint256 granteeSeed,
        uint256 scopes,
        uint256 fromOffset,
        uint256 length,
        bool byDelegate
    ) external synced {
        uint256 i = patientSeed % 2;
        address p = _patients[i];
        bool authorized = !byDelegate || _delegationModel[p][delegate].appointed;
        _signedGrant(
            p, _grantees[granteeSeed % 2], byDelegate ? delegatePk : _patientPks[i], authorized, stranger, scopes, fromOffset, length
        );
    }

    /// The delegate signs a grant and relays it itself.
    function delegateGrant(uint256 patientSeed, uint256 granteeSeed, uint256 scopes, uint256 fromOffset, uint256 length)
        external
        synced
    {
        address p = _patients[patientSeed % 2];
        bool authorized = _delegationModel[p][delegate].appointed;
        _signedGrant(p, _grantees[granteeSeed % 2], delegatePk, authorized, delegate, scopes, fromOffset, length);
    }

    function revokeBySig(uint256 patientSeed, uint256 granteeSeed, bool byDelegate) external synced {
        uint256 i = patientSeed % 2;
        address p = _patients[i];
        address g = _grantees[granteeSeed % 2];
        bool authorized = !byDelegate || _delegationModel[p][delegate].appointed;
        bool active = _grantModel[p][g].until > ghost_now;
        _signedRevoke(p, g, byDelegate ? delegatePk : _patientPks[i], authorized, active);
    }

    function appointDelegate(uint256 patientSeed) external synced {
        address p = _patients[patientSeed % 2];
        bool expectOk = !_delegationModel[p][delegate].appointed;
        vm.prank(p);
        (bool ok,) = address(cm).call(abi.encodeCall(IConsentManager.appointDelegate, (delegate, ConsentSig.DELEGATE_SCOPES, ConsentSig.DELEGATE_MAX, ConsentSig.DELEGATE_HISTORY)));
        _settleDelegation(p, delegate, ok, expectOk, true, true);
    }

    function removeDelegate(uint256 patientSeed, bool keepGrants) external synced {
        address p = _patients[patientSeed % 2];
        bool expectOk = _delegationModel[p][delegate].appointed;
        vm.prank(p);
        (bool ok,) = address(cm).call(abi.encodeCall(IConsentManager.removeDelegate, (delegate, keepGrants)));
        if (ok && !keepGrants) _appointmentEnded[_delegationModel[p][delegate].appointment] = true;
        _settleDelegation(p, delegate, ok, expectOk, true, false);
    }

    // ---------------------------------------------------------------- emergency access

    /// The patient sets a policy: mode 0 none, 1 named, 2 any provider.
    function setEmergencyPolicy(uint256 patientSeed, uint256 modeSeed, uint256 scopes) external synced {
        address p = _patients[patientSeed % 2];
        uint8 mode = uint8(modeSeed % 3);
        uint8 s = mode == 0 ? 0 : uint8(bound(scopes, 1, 0x3f));
        vm.prank(p);
        (bool ok,) = address(cm).call(
            abi.encodeCall(IConsentManager.setEmergencyPolicy, (IConsentManager.EmergencyMode(mode), s, scopes % 2 == 0))
        );
        if (!ok) ++ghost_modelMismatches;
        else _policyModel[p] = PolicyModel(mode, s);
    }

    /// The patient allows, blocks or resets a grantee (an accredited provider here).
    function setEmergencyStanding(uint256 patientSeed, uint256 granteeSeed, uint256 standingSeed) external synced {
        address p = _patients[patientSeed % 2];
        address g = _grantees[granteeSeed % 2];
        uint8 standing = uint8(standingSeed % 3);
        vm.prank(p);
        (bool ok,) = address(cm).call(
            abi.encodeCall(IConsentManager.setEmergencyStanding, (g, IConsentManager.EmergencyStanding(standing)))
        );
        if (!ok) ++ghost_modelMismatches;
        else _grantModel[p][g].standing = standing;
        if (cm.grantOf(p, g).nonce != _grantModel[p][g].nonce) ++ghost_nonceViolations;
    }

    /// A grantee (an accredited provider) tries to take emergency access.
    function takeEmergency(uint256 patientSeed, uint256 granteeSeed) external synced {
        address p = _patients[patientSeed % 2];
        address g = _grantees[granteeSeed % 2];
        GrantModel storage m = _grantModel[p][g];
        bool coolingDown = uint256(ghost_now) < m.emergencyAvailableAt;
        bool expectOk = _permitted(_policyModel[p].mode, m.standing) && !coolingDown;
        vm.prank(g);
        (bool ok,) = address(cm).call(abi.encodeCall(IConsentManager.takeEmergencyAccess, (p, "handler")));
        if (ok != expectOk) ++ghost_modelMismatches;
        // Emergency access never moves the nonce.
        if (cm.grantOf(p, g).nonce != m.nonce) ++ghost_nonceViolations;
        if (!ok) return;
        ++ghost_emergenciesTaken;
        (m.from, m.until, m.scopes, m.revoked, m.emergency, m.appointment) =
            (ghost_now, ghost_now + 24 hours, _policyModel[p].scopes, false, true, 0);
        m.emergencyAvailableAt = uint256(ghost_now) + 24 hours + 7 days;
    }

    /// Signed by the patient or (never allowed) by the delegate.
    function appointDelegateBySig(uint256 patientSeed, bool byDelegate) external synced {
        uint256 i = patientSeed % 2;
        address p = _patients[i];
        bool expectOk = !byDelegate && !_delegationModel[p][delegate].appointed;
        _signedDelegation(p, delegate, byDelegate ? delegatePk : _patientPks[i], !byDelegate, expectOk, true);
    }

    function removeDelegateBySig(uint256 patientSeed, bool byDelegate) external synced {
        uint256 i = patientSeed % 2;
        address p = _patients[i];
        bool expectOk = !byDelegate && _delegationModel[p][delegate].appointed;
        _signedDelegation(p, delegate, byDelegate ? delegatePk : _patientPks[i], !byDelegate, expectOk, false);
    }

    /// Attempts that must all fail: the stranger signs for a patient, the delegate appoints or
    /// removes delegates.
    function strangerAttempt(uint256 patientSeed, uint256 granteeSeed, uint256 kind) external synced {
        address p = _patients[patientSeed % 2];
        ++ghost_strangerAttempts;
        kind = bound(kind, 0, 5);
        if (kind == 0) {
            // The stranger grants itself access to the patient's records.
            _signedGrant(p, stranger, strangerPk, false, stranger, granteeSeed, granteeSeed >> 8, granteeSeed >> 16);
        } else if (kind == 1) {
            _signedRevoke(p, _grantees[granteeSeed % 2], strangerPk, false, _grantModel[p][_grantees[granteeSeed % 2]].until > ghost_now);
        } else if (kind == 2) {
            _signedDelegation(p, stranger, strangerPk, false, false, true);
        } else if (kind == 3) {
            // A delegate (appointed or not) cannot appoint others.
            _signedDelegation(p, stranger, delegatePk, false, false, true);
        } else if (kind == 4) {
            _signedDelegation(p, delegate, strangerPk, false, false, false);
        } else {
            // Nor remove themselves or others by signature.
            _signedDelegation(p, delegate, delegatePk, false, false, false);
        }
    }

    /// Relays a signature that was already accepted once.
    function replay(uint256 index) external synced {
        uint256 n = _acceptedSignedCalls.length;
        if (n == 0) return;
        ++ghost_replaysTried;
        vm.prank(stranger);
        (bool ok,) = address(cm).call(_acceptedSignedCalls[index % n]);
        if (ok) ++ghost_replaySuccesses;
    }

    /// The patient signs a grant, then changes the relationship directly; the unrelayed signature
    /// must be void.
    function staleSignature(uint256 patientSeed, uint256 granteeSeed, uint256 scopes, uint256 fromOffset, uint256 length)
        external
        synced
    {
        uint256 i = patientSeed % 2;
        address p = _patients[i];
        address g = _grantees[granteeSeed % 2];
        (uint8 s, uint40 from, uint40 until) = _terms(scopes, fromOffset, length);
        uint64 n = _grantModel[p][g].nonce;
        uint256 deadline = uint256(ghost_now) + 1 hours;
        IConsentManager.Authorization memory auth = ConsentSig.sign(
            _patientPks[i],
            domain,
            ConsentSig.grantHash(p, g, s, 0, from, until, "", n, deadline),
            n,
            deadline,
            block.chainid,
            address(cm)
        );

        // The direct change (a grant of other terms, or a revoke when one is active).
        if (_grantModel[p][g].until > ghost_now) {
            vm.prank(p);
            (bool revoked,) = address(cm).call(abi.encodeCall(IConsentManager.revoke, (g)));
            _settleGrant(p, g, revoked, true, true, true, 0, 0, 0);
        } else {
            vm.prank(p);
            (bool granted,) = address(cm).call(abi.encodeCall(IConsentManager.grant, (g, 0x3f, 0, from, until, "")));
            _settleGrant(p, g, granted, true, true, false, from, until, 0x3f);
        }

        vm.prank(stranger);
        (bool ok,) =
            address(cm).call(abi.encodeCall(IConsentManager.grantBySig, (p, g, s, 0, from, until, "", auth)));
        if (ok) ++ghost_staleSignatureSuccesses;
        _settleGrant(p, g, ok, false, true, false, from, until, s);
    }

    function warp(uint256 seconds_) external {
        ghost_now += uint40(bound(seconds_, 0, 2 days));
        vm.warp(ghost_now);
    }

    // ---------------------------------------------------------------- internals

    /// Valid terms relative to the model's clock: from in [now - 1 day, now + 2 days], a window
    /// of 1 s .. 5 days that has not ended.
    function _terms(uint256 scopes, uint256 fromOffset, uint256 length)
        internal
        view
        returns (uint8 s, uint40 from, uint40 until)
    {
        s = uint8(bound(scopes, 1, 0x3f));
        from = ghost_now - 1 days + uint40(bound(fromOffset, 0, 3 days));
        uint40 start = from > ghost_now ? from : ghost_now;
        until = start + uint40(bound(length, 1, 5 days));
    }

    function _signedGrant(
        address p,
        address g,
        uint256 signerPk,
        bool authorized,
        address relayer,
        uint256 scopes,
        uint256 fromOffset,
        uint256 length
    ) internal {
        (uint8 s, uint40 from, uint40 until) = _terms(scopes, fromOffset, length);
        uint64 n = _grantModel[p][g].nonce;
        uint256 deadline = uint256(ghost_now) + 1 hours;
        uint256 signedNonce = _signedNonce(p, signerPk, n);
        bytes32 structHash = ConsentSig.grantHash(p, g, s, 0, from, until, "", signedNonce, deadline);
        IConsentManager.Authorization memory auth =
            ConsentSig.sign(signerPk, domain, structHash, signedNonce, deadline, block.chainid, address(cm));
        bytes memory data = abi.encodeCall(IConsentManager.grantBySig, (p, g, s, 0, from, until, "", auth));
        vm.prank(relayer);
        (bool ok,) = address(cm).call(data);
        if (ok) _recordSignature(structHash, data, keccak256(abi.encode("grant", p, g, n)));
        bool byDelegate = signerPk == delegatePk;
        // A delegate's grant opens no earlier than it is made.
        if (byDelegate && from < ghost_now) from = ghost_now;
        _settleGrant(p, g, ok, authorized, authorized, false, from, until, s);
        if (ok) _grantModel[p][g].appointment = byDelegate ? _delegationModel[p][delegate].appointment : 0;
    }

    function _signedRevoke(address p, address g, uint256 signerPk, bool authorized, bool active) internal {
        uint64 n = _grantModel[p][g].nonce;
        uint256 deadline = uint256(ghost_now) + 1 hours;
        uint256 signedNonce = _signedNonce(p, signerPk, n);
        bytes32 structHash = ConsentSig.revokeHash(p, g, signedNonce, deadline);
        IConsentManager.Authorization memory auth =
            ConsentSig.sign(signerPk, domain, structHash, signedNonce, deadline, block.chainid, address(cm));
        bytes memory data = abi.encodeCall(IConsentManager.revokeBySig, (p, g, auth));
        vm.prank(stranger);
        (bool ok,) = address(cm).call(data);
        if (ok) _recordSignature(structHash, data, keccak256(abi.encode("grant", p, g, n)));
        _settleGrant(p, g, ok, authorized && active, authorized, true, 0, 0, 0);
    }

    function _signedDelegation(address p, address d, uint256 signerPk, bool authorized, bool expectOk, bool appoint)
        internal
    {
        uint64 n = _delegationModel[p][d].nonce;
        uint256 deadline = uint256(ghost_now) + 1 hours;
        bytes32 structHash =
            appoint ? ConsentSig.appointHash(p, d, n, deadline) : ConsentSig.removeHash(p, d, n, deadline);
        IConsentManager.Authorization memory auth =
            ConsentSig.sign(signerPk, domain, structHash, n, deadline, block.chainid, address(cm));
        bytes memory data = appoint
            ? abi.encodeCall(IConsentManager.appointDelegateBySig, (p, d, ConsentSig.DELEGATE_SCOPES, ConsentSig.DELEGATE_MAX, ConsentSig.DELEGATE_HISTORY, auth))
            : abi.encodeCall(IConsentManager.removeDelegateBySig, (p, d, false, auth));
        vm.prank(stranger);
        (bool ok,) = address(cm).call(data);
        if (ok) _recordSignature(structHash, data, keccak256(abi.encode("delegation", p, d, n)));
        if (ok && !appoint) _appointmentEnded[_delegationModel[p][d].appointment] = true;
        _settleDelegation(p, d, ok, expectOk, authorized, appoint);
    }

    /// The nonce a signature carries: the delegate's names its current appointment (bits 64 up).
    function _signedNonce(address p, uint256 signerPk, uint64 n) internal view returns (uint256) {
        if (signerPk != delegatePk) return n;
        return uint256(n) | uint256(_delegationModel[p][delegate].appointment) << 64;
    }

    function _recordSignature(bytes32 structHash, bytes memory data, bytes32 nonceKey) internal {
        bytes32 digest = ConsentSig.digest(domain, structHash);
        if (_usedDigest[digest]) ++ghost_duplicateDigests;
        _usedDigest[digest] = true;
        if (_usedNonce[nonceKey]) ++ghost_nonceReuses;
        _usedNonce[nonceKey] = true;
        _acceptedSignedCalls.push(data);
        ++ghost_signaturesAccepted;
    }

    function _settleGrant(
        address p,
        address g,
        bool ok,
        bool expectOk,
        bool authorized,
        bool isRevoke,
        uint40 from,
        uint40 until,
        uint8 s
    ) internal {
        GrantModel storage m = _grantModel[p][g];
        if (!_settle(ok, expectOk, authorized, m.nonce, cm.grantOf(p, g).nonce)) return;
        m.nonce += 1;
        if (isRevoke) {
            // A revoke of emergency access blocks the provider.
            if (m.emergency) (m.standing, m.emergencyAvailableAt) = (2, 0);
            (m.from, m.until, m.scopes, m.revoked, m.emergency, m.appointment) = (0, 0, 0, true, false, 0);
        } else {
            (m.from, m.until, m.scopes, m.revoked, m.emergency, m.appointment) = (from, until, s, false, false, 0);
        }
    }

    function _settleDelegation(address p, address d, bool ok, bool expectOk, bool authorized, bool appointed)
        internal
    {
        DelegationModel storage m = _delegationModel[p][d];
        if (!_settle(ok, expectOk, authorized, m.nonce, cm.delegationOf(p, d).nonce)) return;
        m.nonce += 1;
        m.appointed = appointed;
        if (appointed) m.appointment = ++_appointments;
    }

    /// Counts a call's divergences from the model: an unexpected outcome, an unauthorized
    /// success, a nonce that did not move by exactly one on success (or moved on failure).
    /// Returns whether the call succeeded, so the caller applies it to its model.
    function _settle(bool ok, bool expectOk, bool authorized, uint64 modelNonce, uint64 actualNonce)
        internal
        returns (bool)
    {
        if (ok != expectOk) ++ghost_modelMismatches;
        if (ok && !authorized) ++ghost_unauthorizedSuccesses;
        if (!ok) {
            if (actualNonce != modelNonce) ++ghost_nonceViolations;
            return false;
        }
        if (actualNonce != modelNonce + 1) ++ghost_nonceViolations;
        ++ghost_changes;
        return true;
    }
}
