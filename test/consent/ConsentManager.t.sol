// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test, Vm} from "forge-std/Test.sol";
import {ConsentManager} from "../../contracts/ConsentManager.sol";
import {ParticipantRegistry} from "../../contracts/ParticipantRegistry.sol";
import {IConsentManager} from "../../contracts/interfaces/IConsentManager.sol";
import {IParticipantRegistry} from "../../contracts/interfaces/IParticipantRegistry.sol";
import {ConsentSig} from "./ConsentSig.sol";

contract ConsentManagerTest is Test {
    ParticipantRegistry internal participants;
    ConsentManager internal cm;
    /// A second deployment: signatures made for it must not work on `cm`.
    ConsentManager internal otherCm;

    address internal admin = makeAddr("admin");
    address internal patient;
    uint256 internal patientPk;
    address internal delegate;
    uint256 internal delegatePk;
    address internal stranger;
    uint256 internal strangerPk;
    address internal patient2 = makeAddr("patient2");
    address internal guardian = makeAddr("guardian");
    address internal doctor = makeAddr("doctor");
    address internal researcher = makeAddr("researcher");
    address internal provider = makeAddr("provider");
    address internal relayer = makeAddr("relayer");

    // Timestamps are literal constants: with via_ir, re-reading block.timestamp in the test
    // contract after vm.warp is not reliable.
    uint40 internal constant T0 = 1_750_000_000;
    uint40 internal constant FROM = T0;
    uint40 internal constant UNTIL = T0 + 30 days;
    uint256 internal constant DEADLINE = T0 + 1 hours;
    uint40 internal constant DURATION = 90 days;

    uint8 internal constant LABORATORY = 0;
    uint8 internal constant IMAGING = 1;
    uint8 internal constant MEDICATIONS = 2;
    uint8 internal constant CONDITIONS = 3;
    uint8 internal constant NOTES = 5;
    uint8 internal constant ALL = 0x3f;
    /// laboratory | medications
    uint8 internal constant SCOPES = 0x05;
    /// laboratory | conditions
    uint8 internal constant RESEARCH_SCOPES = 0x09;

    uint8 internal constant TREAT = 0;
    uint8 internal constant ETREAT = 1;
    uint8 internal constant HRESCH = 2;

    bytes32 internal constant STUDY = keccak256("study-42");
    bytes internal constant KEYS_CID = hex"01551220bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22";

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

    function setUp() public {
        vm.warp(T0);
        (patient, patientPk) = makeAddrAndKey("patient");
        (delegate, delegatePk) = makeAddrAndKey("delegate");
        (stranger, strangerPk) = makeAddrAndKey("stranger");

        participants = new ParticipantRegistry(admin);
        cm = new ConsentManager(IParticipantRegistry(address(participants)));
        otherCm = new ConsentManager(IParticipantRegistry(address(participants)));
        domain = ConsentSig.domainSeparator(block.chainid, address(cm));

        vm.startPrank(admin);
        participants.grantRole(participants.PROVIDER_ROLE(), provider);
        participants.grantRole(participants.RESEARCHER_ROLE(), researcher);
        vm.stopPrank();
    }

    // ---------------------------------------------------------------- helpers

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
        assertEq(g.emergency, emergency, "emergency");
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

    function _status(uint256 id) internal view returns (uint8) {
        return uint8(cm.requestStatus(id));
    }

    function _requestAt(uint40 now_) internal returns (uint256 id) {
        req = IConsentManager.AccessRequest({
            patient: patient,
            researcher: researcher,
            scopes: RESEARCH_SCOPES,
            purpose: HRESCH,
            duration: DURATION,
            requestedAt: now_,
            studyId: STUDY
        });
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
            vm.prank(patient);
            cm.appointDelegate(delegate);
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

    function _signOp(Op op, uint256 pk, uint256 nonce) internal view returns (IConsentManager.Authorization memory) {
        return _signOpWith(op, pk, nonce, DEADLINE, domain, block.chainid, address(cm));
    }

    /// Relays `op` with `auth` from an unrelated account (anyone may relay).
    function _submit(Op op, IConsentManager.Authorization memory auth) internal {
        vm.prank(relayer);
        if (op == Op.Grant) cm.grantBySig(patient, doctor, SCOPES, TREAT, FROM, UNTIL, KEYS_CID, auth);
        else if (op == Op.Revoke) cm.revokeBySig(patient, doctor, auth);
        else if (op == Op.Appoint) cm.appointDelegateBySig(patient, delegate, auth);
        else if (op == Op.Remove) cm.removeDelegateBySig(patient, delegate, auth);
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
            emit IConsentManager.DelegateAppointed(patient, delegate);
        } else if (op == Op.Remove) {
            emit IConsentManager.DelegateRemoved(patient, delegate);
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

    /// A direct change to `op`'s relationship; returns how many changes (nonce steps) it made.
    function _directChange(Op op) internal returns (uint64) {
        if (op == Op.Grant || op == Op.Revoke) {
            _grantDirect(doctor, ALL, FROM, UNTIL + 1 days);
            return 1;
        }
        if (op == Op.Appoint) {
            vm.startPrank(patient);
            cm.appointDelegate(delegate);
            cm.removeDelegate(delegate);
            vm.stopPrank();
            return 2;
        }
        if (op == Op.Remove) {
            vm.startPrank(patient);
            cm.removeDelegate(delegate);
            cm.appointDelegate(delegate);
            vm.stopPrank();
            return 2;
        }
        // The researcher's relationship: a direct grant, then its revoke.
        _grantDirect(researcher, RESEARCH_SCOPES, FROM, UNTIL);
        vm.prank(patient);
        cm.revoke(researcher);
        return 2;
    }

    // ---- signature rules, one helper per rule, applied to every *BySig function below

    function _checkValid(Op op) internal {
        _prepare(op);
        _assertSignedAccepted(op, patientPk, address(0));
    }

    function _checkReplay(Op op) internal {
        _prepare(op);
        uint64 n = _nonce(op);
        IConsentManager.Authorization memory auth = _signOp(op, patientPk, n);
        _submit(op, auth);
        _assertApplied(op, n);

        vm.expectRevert(
            abi.encodeWithSelector(
                IConsentManager.ConsentManagerInvalidNonce.selector, patient, _counterpart(op), n + 1, uint256(n)
            )
        );
        _submit(op, auth);
        assertEq(_nonce(op), n + 1, "replay changed nothing");
    }

    function _checkVoidedByDirectChange(Op op) internal {
        _prepare(op);
        uint64 n = _nonce(op);
        IConsentManager.Authorization memory auth = _signOp(op, patientPk, n);
        uint64 steps = _directChange(op);
        assertEq(_nonce(op), n + steps, "direct change advanced the nonce");
        _assertRefused(
            op,
            auth,
            abi.encodeWithSelector(
                IConsentManager.ConsentManagerInvalidNonce.selector, patient, _counterpart(op), n + steps, uint256(n)
            )
        );
    }

    function _checkExpired(Op op) internal {
        _prepare(op);
        uint256 deadline = T0 - 1;
        IConsentManager.Authorization memory auth =
            _signOpWith(op, patientPk, _nonce(op), deadline, domain, block.chainid, address(cm));
        _assertRefused(
            op, auth, abi.encodeWithSelector(IConsentManager.ConsentManagerExpiredSignature.selector, deadline)
        );
    }

    function _checkWrongChainClaimed(Op op) internal {
        _prepare(op);
        uint256 otherChain = block.chainid + 1;
        // A consistent signature for another chain: its own domain, its own claim.
        IConsentManager.Authorization memory auth = _signOpWith(
            op, patientPk, _nonce(op), DEADLINE, ConsentSig.domainSeparator(otherChain, address(cm)), otherChain, address(cm)
        );
        _assertRefused(
            op,
            auth,
            abi.encodeWithSelector(IConsentManager.ConsentManagerWrongChain.selector, block.chainid, otherChain)
        );
    }

    function _checkSignedForOtherChain(Op op) internal {
        _prepare(op);
        uint64 n = _nonce(op);
        // Signed under another chain's domain, but claiming this chain: the digest differs, so
        // the signature recovers to some unrelated address.
        IConsentManager.Authorization memory auth = _signOpWith(
            op,
            patientPk,
            n,
            DEADLINE,
            ConsentSig.domainSeparator(block.chainid + 1, address(cm)),
            block.chainid,
            address(cm)
        );
        address recovered = ConsentSig.recover(ConsentSig.digest(domain, _structHash(op, n, DEADLINE)), auth);
        assertNotEq(recovered, patient);
        _assertRefused(
            op, auth, abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidSigner.selector, recovered, patient)
        );
    }

    function _checkWrongContractClaimed(Op op) internal {
        _prepare(op);
        IConsentManager.Authorization memory auth = _signOpWith(
            op,
            patientPk,
            _nonce(op),
            DEADLINE,
            ConsentSig.domainSeparator(block.chainid, address(otherCm)),
            block.chainid,
            address(otherCm)
        );
        _assertRefused(
            op,
            auth,
            abi.encodeWithSelector(
                IConsentManager.ConsentManagerWrongContract.selector, address(cm), address(otherCm)
            )
        );
    }

    function _checkSignedForOtherContract(Op op) internal {
        _prepare(op);
        uint64 n = _nonce(op);
        IConsentManager.Authorization memory auth = _signOpWith(
            op,
            patientPk,
            n,
            DEADLINE,
            ConsentSig.domainSeparator(block.chainid, address(otherCm)),
            block.chainid,
            address(cm)
        );
        address recovered = ConsentSig.recover(ConsentSig.digest(domain, _structHash(op, n, DEADLINE)), auth);
        assertNotEq(recovered, patient);
        _assertRefused(
            op, auth, abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidSigner.selector, recovered, patient)
        );
    }

    function _checkWrongSigner(Op op) internal {
        _prepare(op);
        IConsentManager.Authorization memory auth = _signOp(op, strangerPk, _nonce(op));
        _assertRefused(
            op, auth, abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidSigner.selector, stranger, patient)
        );
    }

    // ---------------------------------------------------------------- constructor / constants

    function test_constructor_SetsParticipantsAndConstants() public view {
        assertEq(address(cm.participants()), address(participants));
        assertEq(cm.ALL_CATEGORIES(), 0x3f);
        assertEq(cm.PURPOSE_COUNT(), 8);
        assertEq(cm.PURPOSE_ETREAT(), 1);
        assertEq(cm.EMERGENCY_DURATION(), 24 hours);
        assertEq(cm.MAX_REQUEST_DURATION(), 365 days);
    }

    function test_typehashes_MatchTypeStrings() public view {
        assertEq(cm.GRANT_TYPEHASH(), ConsentSig.GRANT_TYPEHASH);
        assertEq(cm.REVOKE_TYPEHASH(), ConsentSig.REVOKE_TYPEHASH);
        assertEq(cm.APPOINT_DELEGATE_TYPEHASH(), ConsentSig.APPOINT_DELEGATE_TYPEHASH);
        assertEq(cm.REMOVE_DELEGATE_TYPEHASH(), ConsentSig.REMOVE_DELEGATE_TYPEHASH);
        assertEq(cm.APPROVE_REQUEST_TYPEHASH(), ConsentSig.APPROVE_REQUEST_TYPEHASH);
        assertEq(cm.DENY_REQUEST_TYPEHASH(), ConsentSig.DENY_REQUEST_TYPEHASH);
    }

    function test_DOMAIN_SEPARATOR_MatchesEip712Domain() public view {
        assertEq(cm.DOMAIN_SEPARATOR(), domain);
        assertNotEq(otherCm.DOMAIN_SEPARATOR(), domain);
        (, string memory name, string memory version, uint256 chainId, address verifyingContract,,) =
            cm.eip712Domain();
        assertEq(name, "medvault ConsentManager");
        assertEq(version, "1");
        assertEq(chainId, block.chainid);
        assertEq(verifyingContract, address(cm));
    }

    // ---------------------------------------------------------------- grant

    function test_grant_StoresGrantAndEmits() public {
        vm.expectEmit(true, true, true, true, address(cm));
        emit IConsentManager.AccessGranted(patient, doctor, SCOPES, TREAT, FROM, UNTIL);
        vm.expectEmit(true, true, true, true, address(cm));
        emit IConsentManager.KeysShared(patient, doctor, KEYS_CID);
        vm.prank(patient);
        cm.grant(doctor, SCOPES, TREAT, FROM, UNTIL, KEYS_CID);

        _assertGrant(patient, doctor, FROM, UNTIL, SCOPES, TREAT, false, 1);
        assertTrue(cm.canRead(patient, doctor, LABORATORY));
        assertTrue(cm.canRead(patient, doctor, MEDICATIONS));
    }

    function test_grant_NoKeysSharedWhenKeysCidEmpty() public {
        vm.recordLogs();
        vm.prank(patient);
        cm.grant(doctor, SCOPES, TREAT, FROM, UNTIL, "");
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(logs.length, 1, "only AccessGranted");
        assertEq(logs[0].topics[0], IConsentManager.AccessGranted.selector);
        assertEq(logs[0].emitter, address(cm));
    }

    function test_grant_KeysSharedWhenKeysCidGiven() public {
        vm.recordLogs();
        vm.prank(patient);
        cm.grant(doctor, SCOPES, TREAT, FROM, UNTIL, KEYS_CID);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(logs.length, 2);
        assertEq(logs[1].topics[0], IConsentManager.KeysShared.selector);
        assertEq(abi.decode(logs[1].data, (bytes)), KEYS_CID);
    }

    // ---------------------------------------------------------------- shareKeys

    function test_shareKeys_EmitsKeysShared() public {
        vm.expectEmit(true, true, true, true, address(cm));
        emit IConsentManager.KeysShared(patient, doctor, KEYS_CID);
        vm.prank(patient);
        cm.shareKeys(doctor, KEYS_CID);
    }

    function test_shareKeys_ToSelfAnnouncesRotation() public {
        vm.expectEmit(true, true, true, true, address(cm));
        emit IConsentManager.KeysShared(patient, patient, KEYS_CID);
        vm.prank(patient);
        cm.shareKeys(patient, KEYS_CID);
    }

    function test_shareKeys_GrantsNothingAndKeepsNonces() public {
        vm.recordLogs();
        vm.prank(patient);
        cm.shareKeys(doctor, KEYS_CID);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(logs.length, 1, "only KeysShared");
        assertEq(logs[0].topics[0], IConsentManager.KeysShared.selector);
        assertEq(logs[0].topics[1], bytes32(uint256(uint160(patient))));
        assertEq(logs[0].topics[2], bytes32(uint256(uint160(doctor))));
        assertEq(abi.decode(logs[0].data, (bytes)), KEYS_CID);
        _assertNoAccess(patient, doctor);
        _assertGrant(patient, doctor, 0, 0, 0, 0, false, 0);
    }

    function test_RevertWhen_ShareKeysWithEmptyCid() public {
        vm.expectRevert(IConsentManager.ConsentManagerEmptyKeysCid.selector);
        vm.prank(patient);
        cm.shareKeys(doctor, "");
    }

    function test_RevertWhen_ShareKeysWithZeroGrantee() public {
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidGrantee.selector, address(0)));
        vm.prank(patient);
        cm.shareKeys(address(0), KEYS_CID);
    }

    function test_canRead_PatientReadsOwnRecords() public view {
        for (uint8 c; c < 8; ++c) {
            assertTrue(cm.canRead(patient, patient, c));
        }
        _assertNoAccess(patient, doctor);
    }

    function test_canRead_ActiveOnlyInsideWindow() public {
        uint40 from = T0 + 2 days;
        uint40 until = T0 + 5 days;
        _grantDirect(doctor, ALL, from, until);

        // Future-dated: recorded but not yet active.
        assertFalse(cm.canRead(patient, doctor, LABORATORY));
        vm.warp(from - 1);
        assertFalse(cm.canRead(patient, doctor, LABORATORY));
        vm.warp(from);
        assertTrue(cm.canRead(patient, doctor, LABORATORY));
        vm.warp(until - 1);
        assertTrue(cm.canRead(patient, doctor, LABORATORY));
        // Ends exactly at validUntil.
        vm.warp(until);
        assertFalse(cm.canRead(patient, doctor, LABORATORY));
    }

    function test_grant_ValidFromInThePastStartsNow() public {
        _grantDirect(doctor, SCOPES, T0 - 10 days, UNTIL);
        _assertGrant(patient, doctor, T0 - 10 days, UNTIL, SCOPES, TREAT, false, 1);
        assertTrue(cm.canRead(patient, doctor, LABORATORY));
    }

    function test_canRead_OnlyGrantedCategories() public {
        for (uint8 bit; bit < 6; ++bit) {
            address grantee = address(uint160(0x1000 + bit));
            _grantDirect(grantee, uint8(1 << bit), FROM, UNTIL);
            for (uint8 c; c < 8; ++c) {
                assertEq(cm.canRead(patient, grantee, c), c == bit);
            }
        }
    }

    function test_grant_RegrantNarrowsScope() public {
        _grantDirect(doctor, ALL, FROM, UNTIL);
        assertTrue(cm.canRead(patient, doctor, NOTES));

        _grantDirect(doctor, uint8(1 << LABORATORY), FROM, UNTIL);
        _assertGrant(patient, doctor, FROM, UNTIL, uint8(1 << LABORATORY), TREAT, false, 2);
        assertTrue(cm.canRead(patient, doctor, LABORATORY));
        assertFalse(cm.canRead(patient, doctor, NOTES));
        assertFalse(cm.canRead(patient, doctor, IMAGING));
    }

    function test_grant_RegrantExtendsWindow() public {
        _grantDirect(doctor, SCOPES, FROM, UNTIL);
        _grantDirect(doctor, SCOPES, FROM, UNTIL + 30 days);
        _assertGrant(patient, doctor, FROM, UNTIL + 30 days, SCOPES, TREAT, false, 2);
        vm.warp(UNTIL);
        assertTrue(cm.canRead(patient, doctor, LABORATORY));
        vm.warp(UNTIL + 30 days);
        assertFalse(cm.canRead(patient, doctor, LABORATORY));
    }

    function test_grant_RegrantShortensWindow() public {
        _grantDirect(doctor, SCOPES, FROM, UNTIL);
        _grantDirect(doctor, SCOPES, FROM, T0 + 1 days);
        vm.warp(T0 + 1 days);
        assertFalse(cm.canRead(patient, doctor, LABORATORY));
    }

    function test_grant_PerPatientAndPerGrantee() public {
        _grantDirect(doctor, SCOPES, FROM, UNTIL);
        _assertNoAccess(patient2, doctor);
        _assertNoAccess(patient, researcher);
        assertEq(cm.grantOf(patient, researcher).nonce, 0);
    }

    function test_RevertWhen_GranteeIsZero() public {
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidGrantee.selector, address(0)));
        vm.prank(patient);
        cm.grant(address(0), SCOPES, TREAT, FROM, UNTIL, "");
        _assertGrant(patient, address(0), 0, 0, 0, 0, false, 0);
    }

    function test_RevertWhen_GranteeIsPatient() public {
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidGrantee.selector, patient));
        vm.prank(patient);
        cm.grant(patient, SCOPES, TREAT, FROM, UNTIL, "");
        _assertGrant(patient, patient, 0, 0, 0, 0, false, 0);
    }

    function test_RevertWhen_ScopesZero() public {
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidScopes.selector, uint8(0)));
        vm.prank(patient);
        cm.grant(doctor, 0, TREAT, FROM, UNTIL, "");
        assertEq(cm.grantOf(patient, doctor).nonce, 0);
    }

    function test_RevertWhen_ScopesNameUnknownCategory() public {
        uint8[3] memory bad = [uint8(0x40), 0x80, 0x41];
        for (uint256 i; i < bad.length; ++i) {
            vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidScopes.selector, bad[i]));
            vm.prank(patient);
            cm.grant(doctor, bad[i], TREAT, FROM, UNTIL, "");
        }
        assertEq(cm.grantOf(patient, doctor).nonce, 0);
    }

    function test_RevertWhen_PurposeOutOfRange() public {
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidPurpose.selector, uint8(8)));
        vm.prank(patient);
        cm.grant(doctor, SCOPES, 8, FROM, UNTIL, "");

        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidPurpose.selector, uint8(255)));
        vm.prank(patient);
        cm.grant(doctor, SCOPES, 255, FROM, UNTIL, "");
        assertEq(cm.grantOf(patient, doctor).nonce, 0);

        // The last purpose code is accepted.
        vm.prank(patient);
        cm.grant(doctor, SCOPES, 7, FROM, UNTIL, "");
        assertEq(cm.grantOf(patient, doctor).purpose, 7);
    }

    function test_RevertWhen_WindowEmpty() public {
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidWindow.selector, UNTIL, UNTIL, uint256(T0))
        );
        vm.prank(patient);
        cm.grant(doctor, SCOPES, TREAT, UNTIL, UNTIL, "");
        assertEq(cm.grantOf(patient, doctor).nonce, 0);
    }

    function test_RevertWhen_WindowInverted() public {
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidWindow.selector, UNTIL, FROM, uint256(T0))
        );
        vm.prank(patient);
        cm.grant(doctor, SCOPES, TREAT, UNTIL, FROM, "");
        assertEq(cm.grantOf(patient, doctor).nonce, 0);
    }

    function test_RevertWhen_WindowAlreadyOver() public {
        // validUntil == now: the window [from, now) has no instant left.
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidWindow.selector, T0 - 10, T0, uint256(T0))
        );
        vm.prank(patient);
        cm.grant(doctor, SCOPES, TREAT, T0 - 10, T0, "");
        assertEq(cm.grantOf(patient, doctor).nonce, 0);

        // One second more is a valid (one-second) grant.
        _grantDirect(doctor, SCOPES, T0 - 10, T0 + 1);
        assertTrue(cm.canRead(patient, doctor, LABORATORY));
    }

    function test_grant_DelegateDirectCallGrantsOwnRecordsOnly() public {
        vm.prank(patient);
        cm.appointDelegate(delegate);

        // A direct grant always acts for msg.sender, never for the patient a delegate serves.
        vm.prank(delegate);
        cm.grant(doctor, SCOPES, TREAT, FROM, UNTIL, "");
        _assertGrant(delegate, doctor, FROM, UNTIL, SCOPES, TREAT, false, 1);
        _assertGrant(patient, doctor, 0, 0, 0, 0, false, 0);
        assertFalse(cm.canRead(patient, doctor, LABORATORY));
    }

    // ---------------------------------------------------------------- revoke

    function test_revoke_EndsAccessImmediately() public {
        _grantDirect(doctor, ALL, FROM, UNTIL);
        assertTrue(cm.canRead(patient, doctor, LABORATORY));

        vm.expectEmit(true, true, true, true, address(cm));
        emit IConsentManager.AccessRevoked(patient, doctor);
        vm.prank(patient);
        cm.revoke(doctor);

        _assertNoAccess(patient, doctor);
        _assertGrant(patient, doctor, 0, 0, 0, 0, false, 2);
        vm.warp(T0 + 1 days);
        _assertNoAccess(patient, doctor);
    }

    function test_revoke_FutureDatedGrant() public {
        uint40 from = T0 + 7 days;
        _grantDirect(doctor, ALL, from, from + 7 days);

        vm.prank(patient);
        cm.revoke(doctor);

        vm.warp(from);
        _assertNoAccess(patient, doctor);
        assertEq(cm.grantOf(patient, doctor).nonce, 2);
    }

    function test_revoke_KeepsNonceAndRegrantContinuesIt() public {
        _grantDirect(doctor, SCOPES, FROM, UNTIL);
        assertEq(cm.grantOf(patient, doctor).nonce, 1);
        vm.prank(patient);
        cm.revoke(doctor);
        assertEq(cm.grantOf(patient, doctor).nonce, 2);

        // A new grant restores access and continues the nonce (the slot was not deleted).
        _grantDirect(doctor, SCOPES, FROM, UNTIL);
        _assertGrant(patient, doctor, FROM, UNTIL, SCOPES, TREAT, false, 3);
        assertTrue(cm.canRead(patient, doctor, LABORATORY));
    }

    function test_RevertWhen_RevokeWithoutGrant() public {
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerNoActiveGrant.selector, patient, doctor)
        );
        vm.prank(patient);
        cm.revoke(doctor);
        assertEq(cm.grantOf(patient, doctor).nonce, 0);
    }

    function test_RevertWhen_RevokeTwice() public {
        _grantDirect(doctor, SCOPES, FROM, UNTIL);
        vm.prank(patient);
        cm.revoke(doctor);

        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerNoActiveGrant.selector, patient, doctor)
        );
        vm.prank(patient);
        cm.revoke(doctor);
        assertEq(cm.grantOf(patient, doctor).nonce, 2);
    }

    function test_RevertWhen_RevokeExpiredGrant() public {
        _grantDirect(doctor, SCOPES, FROM, UNTIL);
        vm.warp(UNTIL);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerNoActiveGrant.selector, patient, doctor)
        );
        vm.prank(patient);
        cm.revoke(doctor);
        assertEq(cm.grantOf(patient, doctor).nonce, 1);
    }

    function test_RevertWhen_RevokeAnotherPatientsGrant() public {
        // A grantee "revoking" acts on its own (empty) relationship, not the patient's.
        _grantDirect(doctor, SCOPES, FROM, UNTIL);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerNoActiveGrant.selector, stranger, doctor)
        );
        vm.prank(stranger);
        cm.revoke(doctor);
        assertTrue(cm.canRead(patient, doctor, LABORATORY));
    }

    // ---------------------------------------------------------------- delegates

    function test_appointDelegate_ByTransaction() public {
        vm.expectEmit(true, true, true, true, address(cm));
        emit IConsentManager.DelegateAppointed(patient, delegate);
        vm.prank(patient);
        cm.appointDelegate(delegate);

        IConsentManager.Delegation memory d = cm.delegationOf(patient, delegate);
        assertTrue(d.appointed);
        assertEq(d.nonce, 1);
        assertFalse(cm.delegationOf(patient2, delegate).appointed);
    }

    function test_removeDelegate_ByTransaction() public {
        vm.prank(patient);
        cm.appointDelegate(delegate);

        vm.expectEmit(true, true, true, true, address(cm));
        emit IConsentManager.DelegateRemoved(patient, delegate);
        vm.prank(patient);
        cm.removeDelegate(delegate);

        IConsentManager.Delegation memory d = cm.delegationOf(patient, delegate);
        assertFalse(d.appointed);
        assertEq(d.nonce, 2);
    }

    function test_RevertWhen_DelegateIsZero() public {
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidDelegate.selector, address(0)));
        vm.prank(patient);
        cm.appointDelegate(address(0));
        assertEq(cm.delegationOf(patient, address(0)).nonce, 0);
    }

    function test_RevertWhen_DelegateIsPatient() public {
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidDelegate.selector, patient));
        vm.prank(patient);
        cm.appointDelegate(patient);
        assertFalse(cm.delegationOf(patient, patient).appointed);
    }

    function test_RevertWhen_DelegateAppointedTwice() public {
        vm.prank(patient);
        cm.appointDelegate(delegate);
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidDelegate.selector, delegate));
        vm.prank(patient);
        cm.appointDelegate(delegate);
        assertEq(cm.delegationOf(patient, delegate).nonce, 1);
    }

    function test_RevertWhen_RemovingDelegateNotAppointed() public {
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidDelegate.selector, delegate));
        vm.prank(patient);
        cm.removeDelegate(delegate);
        assertEq(cm.delegationOf(patient, delegate).nonce, 0);
    }

    function test_grantBySig_SignedByDelegate() public {
        vm.prank(patient);
        cm.appointDelegate(delegate);
        _assertSignedAccepted(Op.Grant, delegatePk, delegate);
    }

    function test_revokeBySig_SignedByDelegate() public {
        vm.prank(patient);
        cm.appointDelegate(delegate);
        _prepare(Op.Revoke);
        _assertSignedAccepted(Op.Revoke, delegatePk, delegate);
    }

    function test_approveRequestBySig_SignedByDelegate() public {
        vm.prank(patient);
        cm.appointDelegate(delegate);
        _prepare(Op.Approve);
        _assertSignedAccepted(Op.Approve, delegatePk, delegate);
    }

    function test_denyRequestBySig_SignedByDelegate() public {
        vm.prank(patient);
        cm.appointDelegate(delegate);
        _prepare(Op.Deny);
        _assertSignedAccepted(Op.Deny, delegatePk, delegate);
    }

    function test_grantBySig_DelegateRelaysOwnSignature() public {
        vm.prank(patient);
        cm.appointDelegate(delegate);
        IConsentManager.Authorization memory auth = _signOp(Op.Grant, delegatePk, 0);
        vm.prank(delegate);
        cm.grantBySig(patient, doctor, SCOPES, TREAT, FROM, UNTIL, KEYS_CID, auth);
        _assertApplied(Op.Grant, 0);
    }

    function test_RevertWhen_DelegateSignsAppointDelegate() public {
        vm.prank(patient);
        cm.appointDelegate(delegate);

        IConsentManager.Authorization memory auth = ConsentSig.sign(
            delegatePk, domain, ConsentSig.appointHash(patient, guardian, 0, DEADLINE), 0, DEADLINE, block.chainid, address(cm)
        );
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidSigner.selector, delegate, patient)
        );
        vm.prank(delegate);
        cm.appointDelegateBySig(patient, guardian, auth);
        assertFalse(cm.delegationOf(patient, guardian).appointed);
    }

    function test_RevertWhen_DelegateSignsRemoveDelegate() public {
        vm.startPrank(patient);
        cm.appointDelegate(delegate);
        cm.appointDelegate(guardian);
        vm.stopPrank();

        IConsentManager.Authorization memory auth = ConsentSig.sign(
            delegatePk, domain, ConsentSig.removeHash(patient, guardian, 1, DEADLINE), 1, DEADLINE, block.chainid, address(cm)
        );
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidSigner.selector, delegate, patient)
        );
        vm.prank(relayer);
        cm.removeDelegateBySig(patient, guardian, auth);
        assertTrue(cm.delegationOf(patient, guardian).appointed);
    }

    function test_RevertWhen_RemovedDelegateSigns() public {
        vm.startPrank(patient);
        cm.appointDelegate(delegate);
        cm.removeDelegate(delegate);
        vm.stopPrank();

        IConsentManager.Authorization memory auth = _signOp(Op.Grant, delegatePk, 0);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidSigner.selector, delegate, patient)
        );
        _submit(Op.Grant, auth);
        _assertNoAccess(patient, doctor);
    }

    function test_RevertWhen_DelegateOfAnotherPatientSigns() public {
        vm.prank(patient2);
        cm.appointDelegate(delegate);

        IConsentManager.Authorization memory auth = _signOp(Op.Grant, delegatePk, 0);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidSigner.selector, delegate, patient)
        );
        _submit(Op.Grant, auth);
        _assertNoAccess(patient, doctor);
    }

    function test_approveRequest_DirectByDelegate() public {
        vm.prank(patient);
        cm.appointDelegate(delegate);
        uint256 id = _request();

        _expectEvents(Op.Approve, delegate, T0);
        vm.prank(delegate);
        cm.approveRequest(req, KEYS_CID);
        assertEq(_status(id), uint8(IConsentManager.RequestStatus.Approved));
        _assertApplied(Op.Approve, 0);
    }

    function test_denyRequest_DirectByDelegate() public {
        vm.prank(patient);
        cm.appointDelegate(delegate);
        uint256 id = _request();

        _expectEvents(Op.Deny, delegate, T0);
        vm.prank(delegate);
        cm.denyRequest(req);
        assertEq(_status(id), uint8(IConsentManager.RequestStatus.Denied));
        _assertApplied(Op.Deny, 0);
    }

    function test_RevertWhen_StrangerApprovesDirectly() public {
        uint256 id = _request();
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerUnauthorized.selector, stranger, patient)
        );
        vm.prank(stranger);
        cm.approveRequest(req, KEYS_CID);
        assertEq(_status(id), uint8(IConsentManager.RequestStatus.Pending));
        _assertNoAccess(patient, researcher);
    }

    function test_RevertWhen_StrangerDeniesDirectly() public {
        uint256 id = _request();
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerUnauthorized.selector, stranger, patient)
        );
        vm.prank(stranger);
        cm.denyRequest(req);
        assertEq(_status(id), uint8(IConsentManager.RequestStatus.Pending));
    }

    function test_RevertWhen_ResearcherApprovesOwnRequest() public {
        uint256 id = _request();
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerUnauthorized.selector, researcher, patient)
        );
        vm.prank(researcher);
        cm.approveRequest(req, "");
        assertEq(_status(id), uint8(IConsentManager.RequestStatus.Pending));
    }

    function test_RevertWhen_RemovedDelegateApprovesDirectly() public {
        vm.startPrank(patient);
        cm.appointDelegate(delegate);
        cm.removeDelegate(delegate);
        vm.stopPrank();
        uint256 id = _request();

        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerUnauthorized.selector, delegate, patient)
        );
        vm.prank(delegate);
        cm.approveRequest(req, KEYS_CID);
        assertEq(_status(id), uint8(IConsentManager.RequestStatus.Pending));
    }

    // ---------------------------------------------------------------- signatures: every *BySig

    function test_grantBySig_ValidSignature() public {
        _checkValid(Op.Grant);
    }

    function test_revokeBySig_ValidSignature() public {
        _checkValid(Op.Revoke);
    }

    function test_appointDelegateBySig_ValidSignature() public {
        _checkValid(Op.Appoint);
    }

    function test_removeDelegateBySig_ValidSignature() public {
        _checkValid(Op.Remove);
    }

    function test_approveRequestBySig_ValidSignature() public {
        _checkValid(Op.Approve);
    }

    function test_denyRequestBySig_ValidSignature() public {
        _checkValid(Op.Deny);
    }

    function test_RevertWhen_GrantBySigReplayed() public {
        _checkReplay(Op.Grant);
    }

    function test_RevertWhen_RevokeBySigReplayed() public {
        _checkReplay(Op.Revoke);
    }

    function test_RevertWhen_AppointDelegateBySigReplayed() public {
        _checkReplay(Op.Appoint);
    }

    function test_RevertWhen_RemoveDelegateBySigReplayed() public {
        _checkReplay(Op.Remove);
    }

    function test_RevertWhen_ApproveRequestBySigReplayed() public {
        _checkReplay(Op.Approve);
    }

    function test_RevertWhen_DenyRequestBySigReplayed() public {
        _checkReplay(Op.Deny);
    }

    function test_RevertWhen_GrantBySigVoidedByDirectChange() public {
        _checkVoidedByDirectChange(Op.Grant);
    }

    function test_RevertWhen_RevokeBySigVoidedByDirectChange() public {
        _checkVoidedByDirectChange(Op.Revoke);
    }

    function test_RevertWhen_AppointDelegateBySigVoidedByDirectChange() public {
        _checkVoidedByDirectChange(Op.Appoint);
    }

    function test_RevertWhen_RemoveDelegateBySigVoidedByDirectChange() public {
        _checkVoidedByDirectChange(Op.Remove);
    }

    function test_RevertWhen_ApproveRequestBySigVoidedByDirectChange() public {
        _checkVoidedByDirectChange(Op.Approve);
    }

    function test_RevertWhen_DenyRequestBySigVoidedByDirectChange() public {
        _checkVoidedByDirectChange(Op.Deny);
    }

    function test_RevertWhen_GrantBySigExpired() public {
        _checkExpired(Op.Grant);
    }

    function test_RevertWhen_RevokeBySigExpired() public {
        _checkExpired(Op.Revoke);
    }

    function test_RevertWhen_AppointDelegateBySigExpired() public {
        _checkExpired(Op.Appoint);
    }

    function test_RevertWhen_RemoveDelegateBySigExpired() public {
        _checkExpired(Op.Remove);
    }

    function test_RevertWhen_ApproveRequestBySigExpired() public {
        _checkExpired(Op.Approve);
    }

    function test_RevertWhen_DenyRequestBySigExpired() public {
        _checkExpired(Op.Deny);
    }

    function test_RevertWhen_GrantBySigClaimsOtherChain() public {
        _checkWrongChainClaimed(Op.Grant);
    }

    function test_RevertWhen_RevokeBySigClaimsOtherChain() public {
        _checkWrongChainClaimed(Op.Revoke);
    }

    function test_RevertWhen_AppointDelegateBySigClaimsOtherChain() public {
        _checkWrongChainClaimed(Op.Appoint);
    }

    function test_RevertWhen_RemoveDelegateBySigClaimsOtherChain() public {
        _checkWrongChainClaimed(Op.Remove);
    }

    function test_RevertWhen_ApproveRequestBySigClaimsOtherChain() public {
        _checkWrongChainClaimed(Op.Approve);
    }

    function test_RevertWhen_DenyRequestBySigClaimsOtherChain() public {
        _checkWrongChainClaimed(Op.Deny);
    }

    function test_RevertWhen_GrantBySigSignedForOtherChain() public {
        _checkSignedForOtherChain(Op.Grant);
    }

    function test_RevertWhen_RevokeBySigSignedForOtherChain() public {
        _checkSignedForOtherChain(Op.Revoke);
    }

    function test_RevertWhen_AppointDelegateBySigSignedForOtherChain() public {
        _checkSignedForOtherChain(Op.Appoint);
    }

    function test_RevertWhen_RemoveDelegateBySigSignedForOtherChain() public {
        _checkSignedForOtherChain(Op.Remove);
    }

    function test_RevertWhen_ApproveRequestBySigSignedForOtherChain() public {
        _checkSignedForOtherChain(Op.Approve);
    }

    function test_RevertWhen_DenyRequestBySigSignedForOtherChain() public {
        _checkSignedForOtherChain(Op.Deny);
    }

    function test_RevertWhen_GrantBySigClaimsOtherContract() public {
        _checkWrongContractClaimed(Op.Grant);
    }

    function test_RevertWhen_RevokeBySigClaimsOtherContract() public {
        _checkWrongContractClaimed(Op.Revoke);
    }

    function test_RevertWhen_AppointDelegateBySigClaimsOtherContract() public {
        _checkWrongContractClaimed(Op.Appoint);
    }

    function test_RevertWhen_RemoveDelegateBySigClaimsOtherContract() public {
        _checkWrongContractClaimed(Op.Remove);
    }

    function test_RevertWhen_ApproveRequestBySigClaimsOtherContract() public {
        _checkWrongContractClaimed(Op.Approve);
    }

    function test_RevertWhen_DenyRequestBySigClaimsOtherContract() public {
        _checkWrongContractClaimed(Op.Deny);
    }

    function test_RevertWhen_GrantBySigSignedForOtherContract() public {
        _checkSignedForOtherContract(Op.Grant);
    }

    function test_RevertWhen_RevokeBySigSignedForOtherContract() public {
        _checkSignedForOtherContract(Op.Revoke);
    }

    function test_RevertWhen_AppointDelegateBySigSignedForOtherContract() public {
        _checkSignedForOtherContract(Op.Appoint);
    }

    function test_RevertWhen_RemoveDelegateBySigSignedForOtherContract() public {
        _checkSignedForOtherContract(Op.Remove);
    }

    function test_RevertWhen_ApproveRequestBySigSignedForOtherContract() public {
        _checkSignedForOtherContract(Op.Approve);
    }

    function test_RevertWhen_DenyRequestBySigSignedForOtherContract() public {
        _checkSignedForOtherContract(Op.Deny);
    }

    function test_RevertWhen_GrantBySigWrongSigner() public {
        _checkWrongSigner(Op.Grant);
    }

    function test_RevertWhen_RevokeBySigWrongSigner() public {
        _checkWrongSigner(Op.Revoke);
    }

    function test_RevertWhen_AppointDelegateBySigWrongSigner() public {
        _checkWrongSigner(Op.Appoint);
    }

    function test_RevertWhen_RemoveDelegateBySigWrongSigner() public {
        _checkWrongSigner(Op.Remove);
    }

    function test_RevertWhen_ApproveRequestBySigWrongSigner() public {
        _checkWrongSigner(Op.Approve);
    }

    function test_RevertWhen_DenyRequestBySigWrongSigner() public {
        _checkWrongSigner(Op.Deny);
    }

    // ---- signature details

    function test_grantBySig_DeadlineEqualToNowAccepted() public {
        IConsentManager.Authorization memory auth =
            _signOpWith(Op.Grant, patientPk, 0, T0, domain, block.chainid, address(cm));
        _submit(Op.Grant, auth);
        _assertApplied(Op.Grant, 0);
    }

    function test_grantBySig_ChecksInDocumentedOrder() public {
        uint256 otherChain = block.chainid + 1;
        // Everything wrong: the nonce is reported first.
        IConsentManager.Authorization memory auth =
            _signOpWith(Op.Grant, strangerPk, 5, T0 - 1, domain, otherChain, address(otherCm));
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidNonce.selector, patient, doctor, 0, 5)
        );
        _submit(Op.Grant, auth);

        // Nonce right: the deadline next.
        auth = _signOpWith(Op.Grant, strangerPk, 0, T0 - 1, domain, otherChain, address(otherCm));
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerExpiredSignature.selector, T0 - 1));
        _submit(Op.Grant, auth);

        // Deadline right: the chain claim.
        auth = _signOpWith(Op.Grant, strangerPk, 0, DEADLINE, domain, otherChain, address(otherCm));
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerWrongChain.selector, block.chainid, otherChain)
        );
        _submit(Op.Grant, auth);

        // Chain right: the contract claim.
        auth = _signOpWith(Op.Grant, strangerPk, 0, DEADLINE, domain, block.chainid, address(otherCm));
        vm.expectRevert(
            abi.encodeWithSelector(
                IConsentManager.ConsentManagerWrongContract.selector, address(cm), address(otherCm)
            )
        );
        _submit(Op.Grant, auth);

        // All claims right: the signer.
        auth = _signOpWith(Op.Grant, strangerPk, 0, DEADLINE, domain, block.chainid, address(cm));
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidSigner.selector, stranger, patient)
        );
        _submit(Op.Grant, auth);
        assertEq(cm.grantOf(patient, doctor).nonce, 0);
    }

    function test_RevertWhen_SignatureForOtherOperation() public {
        // A Revoke signature over (patient, doctor, nonce 0) presented to grantBySig.
        IConsentManager.Authorization memory auth = ConsentSig.sign(
            patientPk, domain, ConsentSig.revokeHash(patient, doctor, 0, DEADLINE), 0, DEADLINE, block.chainid, address(cm)
        );
        address recovered = ConsentSig.recover(
            ConsentSig.digest(domain, _structHash(Op.Grant, 0, DEADLINE)), auth
        );
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidSigner.selector, recovered, patient)
        );
        _submit(Op.Grant, auth);
        _assertNoAccess(patient, doctor);
    }

    function test_RevertWhen_SignedTermsAltered() public {
        // The relayer changes the scopes the patient signed for.
        IConsentManager.Authorization memory auth = _signOp(Op.Grant, patientPk, 0);
        address recovered = ConsentSig.recover(
            ConsentSig.digest(
                domain, ConsentSig.grantHash(patient, doctor, ALL, TREAT, FROM, UNTIL, KEYS_CID, 0, DEADLINE)
            ),
            auth
        );
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidSigner.selector, recovered, patient)
        );
        vm.prank(relayer);
        cm.grantBySig(patient, doctor, ALL, TREAT, FROM, UNTIL, KEYS_CID, auth);
        _assertNoAccess(patient, doctor);
    }

    function test_revokeBySig_StillEndsEmergencyAccessTakenAfterSigning() public {
        // The patient (or a guardian) signs a revoke of the provider; the provider then takes
        // emergency access. Emergency access must not void the pending revoke by moving the nonce.
        IConsentManager.Authorization memory auth = ConsentSig.sign(
            patientPk,
            domain,
            ConsentSig.revokeHash(patient, provider, 0, DEADLINE),
            0,
            DEADLINE,
            block.chainid,
            address(cm)
        );
        vm.prank(provider);
        cm.takeEmergencyAccess(patient, "unconscious in ER");
        assertEq(cm.grantOf(patient, provider).nonce, 0);

        vm.prank(relayer);
        cm.revokeBySig(patient, provider, auth);

        assertFalse(cm.canRead(patient, provider, 0));
        assertEq(cm.grantOf(patient, provider).nonce, 1);
    }

    function test_RevertWhen_ApproveSigVoidedByDeny() public {
        _request();
        IConsentManager.Authorization memory auth = _signOp(Op.Approve, patientPk, 0);
        vm.prank(patient);
        cm.denyRequest(req);
        assertEq(cm.grantOf(patient, researcher).nonce, 1);

        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidNonce.selector, patient, researcher, 1, 0)
        );
        _submit(Op.Approve, auth);
        _assertNoAccess(patient, researcher);
    }

    function test_RevertWhen_GrantBySigInvalidTermsAfterValidSignature() public {
        // A valid signature over invalid terms still fails on the terms.
        IConsentManager.Authorization memory auth = ConsentSig.sign(
            patientPk,
            domain,
            ConsentSig.grantHash(patient, patient, SCOPES, TREAT, FROM, UNTIL, "", 0, DEADLINE),
            0,
            DEADLINE,
            block.chainid,
            address(cm)
        );
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidGrantee.selector, patient));
        vm.prank(relayer);
        cm.grantBySig(patient, patient, SCOPES, TREAT, FROM, UNTIL, "", auth);
    }

    // ---------------------------------------------------------------- research requests

    function test_requestAccess_IdIsHashOfAbiEncodedRequest() public {
        IConsentManager.AccessRequest memory r = IConsentManager.AccessRequest({
            patient: patient,
            researcher: researcher,
            scopes: RESEARCH_SCOPES,
            purpose: HRESCH,
            duration: DURATION,
            requestedAt: T0,
            studyId: STUDY
        });
        uint256 expected = uint256(keccak256(abi.encode(r)));

        vm.expectEmit(true, true, true, true, address(cm));
        emit IConsentManager.AccessRequested(
            expected, patient, researcher, RESEARCH_SCOPES, HRESCH, DURATION, T0, STUDY
        );
        vm.prank(researcher);
        uint256 id = cm.requestAccess(patient, RESEARCH_SCOPES, HRESCH, DURATION, STUDY);

        assertEq(id, expected);
        assertEq(_status(id), uint8(IConsentManager.RequestStatus.Pending));
    }

    function test_approveRequest_FindsRequestByAbiEncodedId() public {
        _request();
        IConsentManager.AccessRequest memory r = req;
        uint256 expected = uint256(keccak256(abi.encode(r)));
        assertEq(reqId, expected);

        vm.expectEmit(true, true, true, true, address(cm));
        emit IConsentManager.RequestApproved(expected, patient, researcher, T0 + DURATION);
        vm.prank(patient);
        cm.approveRequest(r, "");
        assertEq(_status(expected), uint8(IConsentManager.RequestStatus.Approved));
    }

    function test_denyRequest_FindsRequestByAbiEncodedId() public {
        _request();
        IConsentManager.AccessRequest memory r = req;
        uint256 expected = uint256(keccak256(abi.encode(r)));

        vm.expectEmit(true, true, true, true, address(cm));
        emit IConsentManager.RequestDenied(expected, patient, researcher);
        vm.prank(patient);
        cm.denyRequest(r);
        assertEq(_status(expected), uint8(IConsentManager.RequestStatus.Denied));
    }

    function test_RevertWhen_DecidingAlteredRequest() public {
        uint256 id = _request();
        // Each of the seven fields changed in turn: the decision hashes a different request,
        // which was never made.
        for (uint256 field; field < 7; ++field) {
            IConsentManager.AccessRequest memory r = req;
            if (field == 0) r.patient = patient2;
            else if (field == 1) r.researcher = stranger;
            else if (field == 2) r.scopes = ALL;
            else if (field == 3) r.purpose = TREAT;
            else if (field == 4) r.duration = DURATION + 1;
            else if (field == 5) r.requestedAt = T0 - 1;
            else r.studyId = keccak256("other study");
            uint256 alteredId = uint256(keccak256(abi.encode(r)));
            bytes memory err = abi.encodeWithSelector(
                IConsentManager.ConsentManagerRequestNotPending.selector,
                alteredId,
                IConsentManager.RequestStatus.None
            );
            vm.expectRevert(err);
            vm.prank(r.patient);
            cm.approveRequest(r, "");
            vm.expectRevert(err);
            vm.prank(r.patient);
            cm.denyRequest(r);
        }
        assertEq(_status(id), uint8(IConsentManager.RequestStatus.Pending));
        _assertNoAccess(patient, researcher);
    }

    function test_RevertWhen_NonResearcherRequests() public {
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerNotResearcher.selector, stranger));
        vm.prank(stranger);
        cm.requestAccess(patient, RESEARCH_SCOPES, HRESCH, DURATION, STUDY);

        // Being a provider is not enough.
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerNotResearcher.selector, provider));
        vm.prank(provider);
        cm.requestAccess(patient, RESEARCH_SCOPES, HRESCH, DURATION, STUDY);
    }

    function test_RevertWhen_ResearcherAccreditationWithdrawn() public {
        vm.startPrank(admin);
        participants.revokeRole(participants.RESEARCHER_ROLE(), researcher);
        vm.stopPrank();
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerNotResearcher.selector, researcher));
        vm.prank(researcher);
        cm.requestAccess(patient, RESEARCH_SCOPES, HRESCH, DURATION, STUDY);
    }

    function test_RevertWhen_RequestDurationZero() public {
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidDuration.selector, uint40(0), 365 days)
        );
        vm.prank(researcher);
        cm.requestAccess(patient, RESEARCH_SCOPES, HRESCH, 0, STUDY);
    }

    function test_RevertWhen_RequestDurationTooLong() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IConsentManager.ConsentManagerInvalidDuration.selector, uint40(365 days + 1), 365 days
            )
        );
        vm.prank(researcher);
        cm.requestAccess(patient, RESEARCH_SCOPES, HRESCH, 365 days + 1, STUDY);

        // The maximum itself is allowed.
        vm.prank(researcher);
        uint256 id = cm.requestAccess(patient, RESEARCH_SCOPES, HRESCH, 365 days, STUDY);
        assertEq(_status(id), uint8(IConsentManager.RequestStatus.Pending));
    }

    function test_RevertWhen_RequestTermsInvalid() public {
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidScopes.selector, uint8(0)));
        vm.prank(researcher);
        cm.requestAccess(patient, 0, HRESCH, DURATION, STUDY);

        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidScopes.selector, uint8(0x40)));
        vm.prank(researcher);
        cm.requestAccess(patient, 0x40, HRESCH, DURATION, STUDY);

        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidPurpose.selector, uint8(8)));
        vm.prank(researcher);
        cm.requestAccess(patient, RESEARCH_SCOPES, 8, DURATION, STUDY);
    }

    function test_RevertWhen_DuplicateRequestInSameBlock() public {
        uint256 id = _request();
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerDuplicateRequest.selector, id));
        vm.prank(researcher);
        cm.requestAccess(patient, RESEARCH_SCOPES, HRESCH, DURATION, STUDY);

        // A second later it is a new request.
        vm.warp(T0 + 1);
        uint256 later = _requestAt(T0 + 1);
        assertNotEq(later, id);
        assertEq(_status(later), uint8(IConsentManager.RequestStatus.Pending));
    }

    function test_approveRequest_WindowStartsAtApproval() public {
        uint256 id = _request();
        uint40 t1 = T0 + 3 days;
        vm.warp(t1);

        vm.expectEmit(true, true, true, true, address(cm));
        emit IConsentManager.RequestApproved(id, patient, researcher, t1 + DURATION);
        vm.prank(patient);
        cm.approveRequest(req, "");

        _assertGrant(patient, researcher, t1, t1 + DURATION, RESEARCH_SCOPES, HRESCH, false, 1);
        assertTrue(cm.canRead(patient, researcher, LABORATORY));
        assertTrue(cm.canRead(patient, researcher, CONDITIONS));
        assertFalse(cm.canRead(patient, researcher, IMAGING));
        vm.warp(t1 + DURATION - 1);
        assertTrue(cm.canRead(patient, researcher, CONDITIONS));
        vm.warp(t1 + DURATION);
        assertFalse(cm.canRead(patient, researcher, CONDITIONS));
    }

    function test_approveRequest_KeysSharedOnlyWithKeys() public {
        _request();
        vm.recordLogs();
        vm.prank(patient);
        cm.approveRequest(req, "");
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(logs.length, 1, "only RequestApproved");
        assertEq(logs[0].topics[0], IConsentManager.RequestApproved.selector);

        vm.warp(T0 + 1);
        _requestAt(T0 + 1);
        vm.expectEmit(true, true, true, true, address(cm));
        emit IConsentManager.KeysShared(patient, researcher, KEYS_CID);
        vm.prank(patient);
        cm.approveRequest(req, KEYS_CID);
    }

    function test_RevertWhen_ApprovedTwice() public {
        uint256 id = _request();
        vm.prank(patient);
        cm.approveRequest(req, "");

        vm.expectRevert(
            abi.encodeWithSelector(
                IConsentManager.ConsentManagerRequestNotPending.selector, id, IConsentManager.RequestStatus.Approved
            )
        );
        vm.prank(patient);
        cm.approveRequest(req, "");

        vm.expectRevert(
            abi.encodeWithSelector(
                IConsentManager.ConsentManagerRequestNotPending.selector, id, IConsentManager.RequestStatus.Approved
            )
        );
        vm.prank(patient);
        cm.denyRequest(req);
        assertEq(cm.grantOf(patient, researcher).nonce, 1);
    }

    function test_RevertWhen_DecidingDeniedRequest() public {
        uint256 id = _request();
        vm.prank(patient);
        cm.denyRequest(req);

        bytes memory err = abi.encodeWithSelector(
            IConsentManager.ConsentManagerRequestNotPending.selector, id, IConsentManager.RequestStatus.Denied
        );
        vm.expectRevert(err);
        vm.prank(patient);
        cm.approveRequest(req, "");
        vm.expectRevert(err);
        vm.prank(patient);
        cm.denyRequest(req);
        _assertNoAccess(patient, researcher);
    }

    function test_denyRequest_NoAccessAndNonceAdvances() public {
        uint256 id = _request();
        vm.expectEmit(true, true, true, true, address(cm));
        emit IConsentManager.RequestDenied(id, patient, researcher);
        vm.prank(patient);
        cm.denyRequest(req);

        assertEq(_status(id), uint8(IConsentManager.RequestStatus.Denied));
        _assertGrant(patient, researcher, 0, 0, 0, 0, false, 1);
        _assertNoAccess(patient, researcher);
    }

    function test_denyRequest_KeepsExistingGrant() public {
        // Denying a new request does not touch the researcher's current grant terms.
        _grantDirect(researcher, SCOPES, FROM, UNTIL);
        _request();
        vm.prank(patient);
        cm.denyRequest(req);
        _assertGrant(patient, researcher, FROM, UNTIL, SCOPES, TREAT, false, 2);
        assertTrue(cm.canRead(patient, researcher, LABORATORY));
    }

    function test_requestStatus_Lifecycle() public {
        IConsentManager.AccessRequest memory r = IConsentManager.AccessRequest({
            patient: patient,
            researcher: researcher,
            scopes: RESEARCH_SCOPES,
            purpose: HRESCH,
            duration: DURATION,
            requestedAt: T0,
            studyId: STUDY
        });
        uint256 expected = uint256(keccak256(abi.encode(r)));
        assertEq(_status(expected), uint8(IConsentManager.RequestStatus.None));
        _request();
        assertEq(_status(expected), uint8(IConsentManager.RequestStatus.Pending));
        vm.prank(patient);
        cm.approveRequest(r, "");
        assertEq(_status(expected), uint8(IConsentManager.RequestStatus.Approved));
    }

    function test_RevertWhen_ApprovingUnknownRequest() public {
        IConsentManager.AccessRequest memory r = IConsentManager.AccessRequest({
            patient: patient,
            researcher: researcher,
            scopes: RESEARCH_SCOPES,
            purpose: HRESCH,
            duration: DURATION,
            requestedAt: T0,
            studyId: STUDY
        });
        vm.expectRevert(
            abi.encodeWithSelector(
                IConsentManager.ConsentManagerRequestNotPending.selector,
                uint256(keccak256(abi.encode(r))),
                IConsentManager.RequestStatus.None
            )
        );
        vm.prank(patient);
        cm.approveRequest(r, "");
        _assertNoAccess(patient, researcher);
    }

    // ---------------------------------------------------------------- emergency access

    function test_takeEmergencyAccess_GrantsAllForOneDay() public {
        vm.expectEmit(true, true, true, true, address(cm));
        emit IConsentManager.EmergencyAccessTaken(patient, provider, T0 + 24 hours, "unconscious in ER");
        vm.prank(provider);
        cm.takeEmergencyAccess(patient, "unconscious in ER");

        _assertGrant(patient, provider, T0, T0 + 24 hours, ALL, ETREAT, true, 0);
        for (uint8 c; c < 6; ++c) {
            assertTrue(cm.canRead(patient, provider, c));
        }
        vm.warp(T0 + 24 hours - 1);
        assertTrue(cm.canRead(patient, provider, NOTES));
        vm.warp(T0 + 24 hours);
        _assertNoAccess(patient, provider);
    }

    function test_takeEmergencyAccess_ReplacesExistingGrant() public {
        _grantDirect(provider, SCOPES, FROM, UNTIL);
        vm.prank(provider);
        cm.takeEmergencyAccess(patient, "cardiac arrest");
        _assertGrant(patient, provider, T0, T0 + 24 hours, ALL, ETREAT, true, 1);
    }

    function test_revoke_EndsEmergencyAccess() public {
        vm.prank(provider);
        cm.takeEmergencyAccess(patient, "unconscious in ER");

        vm.expectEmit(true, true, true, true, address(cm));
        emit IConsentManager.AccessRevoked(patient, provider);
        vm.prank(patient);
        cm.revoke(provider);
        _assertNoAccess(patient, provider);
        _assertGrant(patient, provider, 0, 0, 0, 0, false, 1);
    }

    function test_grant_ClearsEmergencyFlag() public {
        vm.prank(provider);
        cm.takeEmergencyAccess(patient, "unconscious in ER");
        _grantDirect(provider, SCOPES, FROM, UNTIL);
        _assertGrant(patient, provider, FROM, UNTIL, SCOPES, TREAT, false, 1);
    }

    function test_RevertWhen_EmergencyByNonProvider() public {
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerNotProvider.selector, stranger));
        vm.prank(stranger);
        cm.takeEmergencyAccess(patient, "unconscious in ER");

        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerNotProvider.selector, researcher));
        vm.prank(researcher);
        cm.takeEmergencyAccess(patient, "unconscious in ER");
        _assertNoAccess(patient, stranger);
        _assertNoAccess(patient, researcher);
    }

    function test_RevertWhen_EmergencyWithoutReason() public {
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerMissingReason.selector));
        vm.prank(provider);
        cm.takeEmergencyAccess(patient, "");
        _assertNoAccess(patient, provider);
    }

    function test_RevertWhen_EmergencyOnOwnRecords() public {
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidGrantee.selector, provider));
        vm.prank(provider);
        cm.takeEmergencyAccess(provider, "self");
        assertEq(cm.grantOf(provider, provider).nonce, 0);
    }

    // ---------------------------------------------------------------- fuzz

    function testFuzz_canRead_IffInsideWindow(uint256 validFrom, uint256 validUntil, uint256 t) public {
        uint40 from = uint40(bound(validFrom, 0, T0 + 365 days));
        uint40 lowestUntil = (from > T0 ? from : T0) + 1;
        uint40 until = uint40(bound(validUntil, lowestUntil, T0 + 2 * 365 days));
        uint40 at = uint40(bound(t, T0, T0 + 3 * 365 days));

        _grantDirect(doctor, ALL, from, until);
        vm.warp(at);
        bool inside = from <= at && at < until;
        for (uint8 c; c < 6; ++c) {
            assertEq(cm.canRead(patient, doctor, c), inside);
        }
    }

    function testFuzz_canRead_IffScopeBitSet(uint256 scopes, uint256 category) public {
        uint8 s = uint8(bound(scopes, 1, ALL));
        uint8 c = uint8(bound(category, 0, type(uint8).max));
        _grantDirect(doctor, s, FROM, UNTIL);
        assertEq(cm.canRead(patient, doctor, c), c < 8 && (s >> c) & 1 == 1);
    }

    function testFuzz_RevertWhen_ScopesInvalid(uint256 scopes) public {
        // 0, or any mask with a bit above the sixth category.
        uint8 s = uint8(bound(scopes, ALL, type(uint8).max));
        if (s == ALL) s = 0;
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidScopes.selector, s));
        vm.prank(patient);
        cm.grant(doctor, s, TREAT, FROM, UNTIL, "");
    }

    function testFuzz_grantBySig_OnlyCurrentNonceAccepted(uint256 changes, uint256 given) public {
        // Some direct changes first: grant, revoke, grant, ...
        uint64 current = uint64(bound(changes, 0, 6));
        for (uint64 i; i < current; ++i) {
            if (i % 2 == 0) {
                _grantDirect(doctor, ALL, FROM, UNTIL);
            } else {
                vm.prank(patient);
                cm.revoke(doctor);
            }
        }
        assertEq(cm.grantOf(patient, doctor).nonce, current);

        uint256 wrong = bound(given, 0, type(uint256).max - 1);
        if (wrong >= current) wrong += 1;
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidNonce.selector, patient, doctor, current, wrong)
        );
        _submit(Op.Grant, _signOp(Op.Grant, patientPk, wrong));

        _submit(Op.Grant, _signOp(Op.Grant, patientPk, current));
        _assertApplied(Op.Grant, current);
    }

    function testFuzz_bySig_OnlyCurrentNonceAccepted(uint256 opIndex, uint256 given) public {
        Op op = Op(bound(opIndex, 0, 5));
        _prepare(op);
        uint64 current = _nonce(op);
        uint256 wrong = bound(given, 0, type(uint256).max - 1);
        if (wrong >= current) wrong += 1;

        _assertRefused(
            op,
            _signOp(op, patientPk, wrong),
            abi.encodeWithSelector(
                IConsentManager.ConsentManagerInvalidNonce.selector, patient, _counterpart(op), current, wrong
            )
        );
    }

    function testFuzz_bySig_RefusesOtherKey(uint256 opIndex, uint256 privateKey) public {
        Op op = Op(bound(opIndex, 0, 5));
        uint256 pk = bound(privateKey, 1, SECP256K1_ORDER - 1);
        // Any key but the patient's or the delegate's (nudged off them, not discarded).
        while (pk == patientPk || pk == delegatePk) {
            pk = pk == 1 ? 2 : pk - 1;
        }
        address signer = vm.addr(pk);
        // A delegate is present where delegates may sign: still only the patient or the delegate.
        if (op != Op.Appoint && op != Op.Remove) {
            vm.prank(patient);
            cm.appointDelegate(delegate);
        }
        _prepare(op);
        _assertRefused(
            op,
            _signOp(op, pk, _nonce(op)),
            abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidSigner.selector, signer, patient)
        );
    }

    function testFuzz_requestId_MatchesAbiEncodeAndIsFound(
        uint256 scopes,
        uint256 purpose,
        uint256 duration,
        bytes32 studyId,
        uint256 t,
        bool approve
    ) public {
        IConsentManager.AccessRequest memory r = IConsentManager.AccessRequest({
            patient: patient,
            researcher: researcher,
            scopes: uint8(bound(scopes, 1, ALL)),
            purpose: uint8(bound(purpose, 0, 7)),
            duration: uint40(bound(duration, 1, 365 days)),
            requestedAt: uint40(bound(t, T0, T0 + 10 * 365 days)),
            studyId: studyId
        });
        vm.warp(r.requestedAt);
        vm.prank(researcher);
        uint256 id = cm.requestAccess(patient, r.scopes, r.purpose, r.duration, r.studyId);
        assertEq(id, uint256(keccak256(abi.encode(r))));

        vm.prank(patient);
        if (approve) {
            cm.approveRequest(r, "");
            assertEq(_status(id), uint8(IConsentManager.RequestStatus.Approved));
            _assertGrant(
                patient, researcher, r.requestedAt, r.requestedAt + r.duration, r.scopes, r.purpose, false, 1
            );
        } else {
            cm.denyRequest(r);
            assertEq(_status(id), uint8(IConsentManager.RequestStatus.Denied));
        }
    }
}
