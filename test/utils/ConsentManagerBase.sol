// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ConsentManager} from "../../contracts/ConsentManager.sol";
import {ParticipantRegistry} from "../../contracts/ParticipantRegistry.sol";
import {IConsentManager} from "../../contracts/interfaces/IConsentManager.sol";
import {IParticipantRegistry} from "../../contracts/interfaces/IParticipantRegistry.sol";
import {Base} from "./Base.sol";
import {ConsentSig} from "./ConsentSig.sol";

/// @notice The fixture of the ConsentManager suites (test/ConsentManager/): two deployments, an
/// accredited provider and researcher, the terms the tests grant and request, and helpers that
/// sign, relay and check each of the six signed operations.
abstract contract ConsentManagerBase is Base {
    ParticipantRegistry internal participants;
    ConsentManager internal cm;
    /// A second deployment: signatures made for it must not work on `cm`.
    ConsentManager internal otherCm;

    uint40 internal constant FROM = T0;
    uint40 internal constant UNTIL = T0 + 30 days;
    uint256 internal constant DEADLINE = T0 + 1 hours;
    uint40 internal constant DURATION = 90 days;

    /// laboratory | medications
    uint8 internal constant SCOPES = 0x05;
    /// laboratory | conditions
    uint8 internal constant RESEARCH_SCOPES = 0x09;

    bytes32 internal constant STUDY = keccak256("study-42");

    /// The six signed operations.
    enum Op {
        Grant,
        Revoke,
        Appoint,
        Remove,
        Approve,
        Deny
    }

    bytes32 internal domain;
    /// The request the Approve / Deny operations decide (set by `_request`).
    IConsentManager.AccessRequest internal req;
    uint256 internal reqId;

    function setUp() public virtual {
        vm.warp(T0);
        participants = _deployParticipants();
        cm = new ConsentManager(IParticipantRegistry(address(participants)));
        otherCm = new ConsentManager(IParticipantRegistry(address(participants)));
        domain = ConsentSig.domainSeparator(block.chainid, address(cm));
        _accreditProvider(participants, provider);
        _accreditResearcher(participants, researcher);
    }

    function _assertGrant(
        address patient_,
        address grantee,
        uint40 validFrom,
        uint40 validUntil,
        uint8 scopes,
        uint8 purpose,
        bool emergency,
        uint64 nonce
    ) internal view {
        IConsentManager.Grant memory g = cm.grantOf(patient_, grantee);
        assertEq(g.validFrom, validFrom, "validFrom");
        assertEq(g.validUntil, validUntil, "validUntil");
        assertEq(g.scopes, scopes, "scopes");
        assertEq(g.purpose, purpose, "purpose");
        assertEq(g.kind == IConsentManager.GrantKind.Emergency, emergency, "emergency");
        assertEq(g.nonce, nonce, "nonce");
    }

    function _assertNoAccess(address patient_, address grantee) internal view {
        for (uint8 c; c < 8; ++c) {
            assertFalse(cm.canRead(patient_, grantee, c), "no access");
        }
    }

    function _grantDirect(address grantee, uint8 scopes, uint40 validFrom, uint40 validUntil) internal {
        vm.prank(patient);
        cm.grant(grantee, scopes, TREAT, validFrom, validUntil, "");
    }

    /// `patient` appoints `delegate` by transaction.
    function _appointDelegate() internal {
        vm.prank(patient);
        cm.appointDelegate(delegate, ConsentSig.DELEGATE_SCOPES, ConsentSig.DELEGATE_MAX, ConsentSig.DELEGATE_HISTORY);
    }

    /// `structHash` signed with `pk` under `cm`'s domain, for `nonce`, valid until DEADLINE.
    function _sign(uint256 pk, bytes32 structHash, uint256 nonce)
        internal
        view
        returns (IConsentManager.Authorization memory)
    {
        return ConsentSig.sign(pk, domain, structHash, nonce, DEADLINE, block.chainid, address(cm));
    }

    /// The next call reverts with ConsentManagerInvalidSigner(signer, patient).
    function _expectInvalidSigner(address signer) internal {
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidSigner.selector, signer, patient)
        );
    }

    /// `patient` revokes `grantee` by transaction.
    function _revokeDirect(address grantee) internal {
        vm.prank(patient);
        cm.revoke(grantee);
    }

    function _status(uint256 id) internal view returns (uint8) {
        return uint8(cm.requestStatus(id));
    }

    /// The request `researcher` makes of `patient` at `requestedAt`, on the suites' terms.
    function _researchRequest(uint40 requestedAt) internal view returns (IConsentManager.AccessRequest memory) {
        return IConsentManager.AccessRequest({
            patient: patient,
            researcher: researcher,
            scopes: RESEARCH_SCOPES,
            purpose: HRESCH,
            duration: DURATION,
            requestedAt: requestedAt,
            studyId: STUDY
        });
    }

    function _requestAt(uint40 now_) internal returns (uint256 id) {
        req = _researchRequest(now_);
        vm.prank(researcher);
        id = cm.requestAccess(patient, RESEARCH_SCOPES, HRESCH, DURATION, STUDY);
        reqId = id;
    }

    function _request() internal returns (uint256) {
        return _requestAt(T0);
    }

    function _counterpart(Op op) internal view returns (address) {
        if (op == Op.Appoint || op == Op.Remove) return delegate;
        if (op == Op.Approve || op == Op.Deny) return researcher;
        return doctor;
    }

    function _nonce(Op op) internal view returns (uint64) {
        if (op == Op.Appoint || op == Op.Remove) return cm.delegationOf(patient, delegate).nonce;
        return cm.grantOf(patient, _counterpart(op)).nonce;
    }

    /// Puts the contract in a state where `op` can succeed.
    function _prepare(Op op) internal {
        if (op == Op.Revoke) {
            _grantDirect(doctor, SCOPES, FROM, UNTIL);
        } else if (op == Op.Remove) {
            _appointDelegate();
        } else if (op == Op.Approve || op == Op.Deny) {
            _request();
        }
    }

    function _structHash(Op op, uint256 nonce, uint256 deadline) internal view returns (bytes32) {
        if (op == Op.Grant) {
            return ConsentSig.grantHash(patient, doctor, SCOPES, TREAT, FROM, UNTIL, KEYS_CID, nonce, deadline);
        }
        if (op == Op.Revoke) return ConsentSig.revokeHash(patient, doctor, nonce, deadline);
        if (op == Op.Appoint) return ConsentSig.appointHash(patient, delegate, nonce, deadline);
        if (op == Op.Remove) return ConsentSig.removeHash(patient, delegate, nonce, deadline);
        if (op == Op.Approve) return ConsentSig.approveHash(req, KEYS_CID, nonce, deadline);
        return ConsentSig.denyHash(req, nonce, deadline);
    }

    function _signOpWith(
        Op op,
        uint256 pk,
        uint256 nonce,
        uint256 deadline,
        bytes32 signedDomain,
        uint256 claimedChainId,
        address claimedContract
    ) internal view returns (IConsentManager.Authorization memory) {
        return ConsentSig.sign(
            pk, signedDomain, _structHash(op, nonce, deadline), nonce, deadline, claimedChainId, claimedContract
        );
    }

    /// `op` signed by `pk` for the relationship nonce `nonce`; the delegate's signature names its
    /// current appointment in the nonce's high bits, as the contract wants.
    function _signOp(Op op, uint256 pk, uint256 nonce) internal view returns (IConsentManager.Authorization memory) {
        if (pk == delegatePk) nonce |= _appointmentBits(delegate);
        return _signOpWith(op, pk, nonce, DEADLINE, domain, block.chainid, address(cm));
    }

    /// The high bits a signature by `delegate_` carries: its current appointment, shifted by 64.
    function _appointmentBits(address delegate_) internal view returns (uint256) {
        return uint256(cm.delegationOf(patient, delegate_).appointment) << 64;
    }

    /// Relays `op` with `auth` from an unrelated account (anyone may relay).
    function _submit(Op op, IConsentManager.Authorization memory auth) internal {
        vm.prank(relayer);
        if (op == Op.Grant) cm.grantBySig(patient, doctor, SCOPES, TREAT, FROM, UNTIL, KEYS_CID, auth);
        else if (op == Op.Revoke) cm.revokeBySig(patient, doctor, auth);
        else if (op == Op.Appoint) cm.appointDelegateBySig(patient, delegate, ConsentSig.DELEGATE_SCOPES, ConsentSig.DELEGATE_MAX, ConsentSig.DELEGATE_HISTORY, auth);
        else if (op == Op.Remove) cm.removeDelegateBySig(patient, delegate, false, auth);
        else if (op == Op.Approve) cm.approveRequestBySig(req, KEYS_CID, auth);
        else cm.denyRequestBySig(req, auth);
    }

    /// Expects the events of `op` applied at `now_` (preceded by ActedAsDelegate if a delegate acts).
    function _expectEvents(Op op, address actingDelegate, uint40 now_) internal {
        if (actingDelegate != address(0)) {
            vm.expectEmit(true, true, true, true, address(cm));
            emit IConsentManager.ActedAsDelegate(patient, actingDelegate);
        }
        vm.expectEmit(true, true, true, true, address(cm));
        if (op == Op.Grant) {
            emit IConsentManager.AccessGranted(patient, doctor, SCOPES, TREAT, FROM, UNTIL);
            vm.expectEmit(true, true, true, true, address(cm));
            emit IConsentManager.KeysShared(patient, doctor, KEYS_CID);
        } else if (op == Op.Revoke) {
            emit IConsentManager.AccessRevoked(patient, doctor);
        } else if (op == Op.Appoint) {
            emit IConsentManager.DelegateAppointed(
                patient,
                delegate,
                cm.delegationOf(patient, delegate).appointment + 1,
                ConsentSig.DELEGATE_SCOPES,
                ConsentSig.DELEGATE_MAX,
                ConsentSig.DELEGATE_HISTORY
            );
        } else if (op == Op.Remove) {
            emit IConsentManager.DelegateRemoved(patient, delegate, cm.delegationOf(patient, delegate).appointment, false);
        } else if (op == Op.Approve) {
            emit IConsentManager.RequestApproved(reqId, patient, researcher, now_ + DURATION);
            vm.expectEmit(true, true, true, true, address(cm));
            emit IConsentManager.KeysShared(patient, researcher, KEYS_CID);
        } else {
            emit IConsentManager.RequestDenied(reqId, patient, researcher);
        }
    }

    /// Asserts the effect of `op` (applied at T0) and that its relationship's nonce moved by one.
    function _assertApplied(Op op, uint64 nonceBefore) internal view {
        assertEq(_nonce(op), nonceBefore + 1, "nonce advanced by one");
        if (op == Op.Grant) {
            _assertGrant(patient, doctor, FROM, UNTIL, SCOPES, TREAT, false, nonceBefore + 1);
            assertTrue(cm.canRead(patient, doctor, LABORATORY));
            assertFalse(cm.canRead(patient, doctor, IMAGING));
        } else if (op == Op.Revoke) {
            _assertGrant(patient, doctor, 0, 0, 0, 0, false, nonceBefore + 1);
            _assertNoAccess(patient, doctor);
        } else if (op == Op.Appoint) {
            assertTrue(cm.delegationOf(patient, delegate).appointed);
        } else if (op == Op.Remove) {
            assertFalse(cm.delegationOf(patient, delegate).appointed);
        } else if (op == Op.Approve) {
            assertEq(_status(reqId), uint8(IConsentManager.RequestStatus.Approved));
            _assertGrant(patient, researcher, T0, T0 + DURATION, RESEARCH_SCOPES, HRESCH, false, nonceBefore + 1);
            assertTrue(cm.canRead(patient, researcher, CONDITIONS));
        } else {
            assertEq(_status(reqId), uint8(IConsentManager.RequestStatus.Denied));
            _assertNoAccess(patient, researcher);
        }
    }

    /// `op`, already prepared, signed by `pk` for the current nonce, relayed and applied.
    function _assertSignedAccepted(Op op, uint256 pk, address actingDelegate) internal {
        uint64 n = _nonce(op);
        IConsentManager.Authorization memory auth = _signOp(op, pk, n);
        _expectEvents(op, actingDelegate, T0);
        _submit(op, auth);
        _assertApplied(op, n);
    }

    /// `auth` is refused with `err`; the refusal consumed nothing: the patient's own signature for
    /// the current nonce still goes through afterwards.
    function _assertRefused(Op op, IConsentManager.Authorization memory auth, bytes memory err) internal {
        uint64 n = _nonce(op);
        vm.expectRevert(err);
        _submit(op, auth);
        assertEq(_nonce(op), n, "nonce unchanged by refusal");

        _submit(op, _signOp(op, patientPk, n));
        _assertApplied(op, n);
    }
}
