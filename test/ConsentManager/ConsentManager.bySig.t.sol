// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IConsentManager} from "../../contracts/interfaces/IConsentManager.sol";
import {ConsentManagerBase} from "../utils/ConsentManagerBase.sol";
import {ConsentSig} from "../utils/ConsentSig.sol";

/// @notice The six *BySig functions: the EIP-712 domain and types, and every signature rule
/// applied to each of them.
contract ConsentManagerBySigTest is ConsentManagerBase {
    // ---------------------------------------------------------------- domain and types

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

    // ---------------------------------------------------------------- signature rules
    // One helper per rule, applied to every *BySig function below.

    /// A direct change to `op`'s relationship; returns how many changes (nonce steps) it made.
    function _directChange(Op op) internal returns (uint64) {
        if (op == Op.Grant || op == Op.Revoke) {
            _grantDirect(doctor, ALL, FROM, UNTIL + 1 days);
            return 1;
        }
        if (op == Op.Appoint) {
            vm.startPrank(patient);
            cm.appointDelegate(delegate, ConsentSig.DELEGATE_SCOPES, ConsentSig.DELEGATE_MAX, ConsentSig.DELEGATE_HISTORY);
            cm.removeDelegate(delegate, false);
            vm.stopPrank();
            return 2;
        }
        if (op == Op.Remove) {
            vm.startPrank(patient);
            cm.removeDelegate(delegate, false);
            cm.appointDelegate(delegate, ConsentSig.DELEGATE_SCOPES, ConsentSig.DELEGATE_MAX, ConsentSig.DELEGATE_HISTORY);
            vm.stopPrank();
            return 2;
        }
        // The researcher's relationship: a direct grant, then its revoke.
        _grantDirect(researcher, RESEARCH_SCOPES, FROM, UNTIL);
        _revokeDirect(researcher);
        return 2;
    }

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
        // Signed under another chain's domain, but claiming this chain: the digest differs, so
        // the signature recovers to some unrelated address.
        _checkSignedUnderOtherDomain(op, ConsentSig.domainSeparator(block.chainid + 1, address(cm)));
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
        _checkSignedUnderOtherDomain(op, ConsentSig.domainSeparator(block.chainid, address(otherCm)));
    }

    /// `op` signed by the patient under `signedDomain` while claiming this chain and contract:
    /// refused as signed by whatever address the digest under `cm`'s own domain recovers to.
    function _checkSignedUnderOtherDomain(Op op, bytes32 signedDomain) internal {
        _prepare(op);
        uint64 n = _nonce(op);
        IConsentManager.Authorization memory auth =
            _signOpWith(op, patientPk, n, DEADLINE, signedDomain, block.chainid, address(cm));
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

    // ---------------------------------------------------------------- every *BySig

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

    // ---------------------------------------------------------------- signature details

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
        _expectInvalidSigner(stranger);
        _submit(Op.Grant, auth);
        assertEq(cm.grantOf(patient, doctor).nonce, 0);
    }

    function test_RevertWhen_SignatureForOtherOperation() public {
        // A Revoke signature over (patient, doctor, nonce 0) presented to grantBySig.
        IConsentManager.Authorization memory auth =
            _sign(patientPk, ConsentSig.revokeHash(patient, doctor, 0, DEADLINE), 0);
        address recovered = ConsentSig.recover(
            ConsentSig.digest(domain, _structHash(Op.Grant, 0, DEADLINE)), auth
        );
        _expectInvalidSigner(recovered);
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
        _expectInvalidSigner(recovered);
        vm.prank(relayer);
        cm.grantBySig(patient, doctor, ALL, TREAT, FROM, UNTIL, KEYS_CID, auth);
        _assertNoAccess(patient, doctor);
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
        IConsentManager.Authorization memory auth =
            _sign(patientPk, ConsentSig.grantHash(patient, patient, SCOPES, TREAT, FROM, UNTIL, "", 0, DEADLINE), 0);
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidGrantee.selector, patient));
        vm.prank(relayer);
        cm.grantBySig(patient, patient, SCOPES, TREAT, FROM, UNTIL, "", auth);
    }

    // ---------------------------------------------------------------- fuzz

    function testFuzz_grantBySig_OnlyCurrentNonceAccepted(uint256 changes, uint256 given) public {
        // Some direct changes first: grant, revoke, grant, ...
        uint64 current = uint64(bound(changes, 0, 6));
        for (uint64 i; i < current; ++i) {
            if (i % 2 == 0) {
                _grantDirect(doctor, ALL, FROM, UNTIL);
            } else {
                _revokeDirect(doctor);
            }
        }
        assertEq(cm.grantOf(patient, doctor).nonce, current);

        uint256 wrong = bound(given, 0, type(uint256).max - 1);
        if (wrong >= current) wrong += 1;
        vm.expectRevert(_wrongNonceError(doctor, current, wrong));
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

        _assertRefused(op, _signOp(op, patientPk, wrong), _wrongNonceError(_counterpart(op), current, wrong));
    }

    /// The refusal of the patient's signature carrying `wrong` for a relationship at `current`: a
    /// wrong nonce (its low 64 bits), or, with the right one, bits 64 and up naming an appointment.
    function _wrongNonceError(address counterpart, uint64 current, uint256 wrong) internal view returns (bytes memory) {
        if (uint64(wrong) == current) {
            return abi.encodeWithSelector(
                IConsentManager.ConsentManagerWrongAppointment.selector, patient, wrong >> 64, uint256(0)
            );
        }
        return abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidNonce.selector, patient, counterpart, current, wrong);
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
            _appointDelegate();
        }
        _prepare(op);
        _assertRefused(
            op,
            _signOp(op, pk, _nonce(op)),
            abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidSigner.selector, signer, patient)
        );
    }
}
