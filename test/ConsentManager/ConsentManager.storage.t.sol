// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IConsentManager} from "../../contracts/interfaces/IConsentManager.sol";
import {ConsentManagerBase} from "../utils/ConsentManagerBase.sol";
import {ConsentSig} from "../utils/ConsentSig.sol";

/// @notice Pins ConsentManager's storage: the slot of each mapping and the packed `Grant` word
/// documented in {IConsentManager-Grant} (bits 0-39 validFrom | 40-79 validUntil | 80-87 scopes
/// | 88-95 purpose | 96-103 kind | 104-167 nonce | 168-215 appointment | 216-223 emergencyStanding),
/// and bits 224-255 outside the struct: when the grantee may next take emergency access, in
/// seconds after the contract's deployment (zero: any time). The words are read with vm.load and
/// decoded from those bit positions, never through the contract's own struct, so a change to
/// the layout (a new state variable, a reordered or resized field) fails here.
contract ConsentManagerStorageTest is ConsentManagerBase {
    // The slots of `forge inspect ConsentManager storageLayout`; slots 0 and 1 are EIP712's
    // name and version fallback strings.
    uint256 internal constant GRANTS_SLOT = 2;
    uint256 internal constant DELEGATIONS_SLOT = 3;
    uint256 internal constant REQUESTS_SLOT = 4;
    uint256 internal constant POLICIES_SLOT = 5;
    uint256 internal constant APPOINTMENTS_SLOT = 6;
    uint256 internal constant APPOINTMENT_COUNT_SLOT = 7;

    // GrantKind values.
    uint256 internal constant PATIENT_KIND = 1;
    uint256 internal constant DELEGATE_KIND = 2;
    uint256 internal constant EMERGENCY_KIND = 3;
    uint256 internal constant RESEARCH_KIND = 4;

    /// The fields of a grant word, as the documented bit layout gives them.
    struct GrantWord {
        uint256 validFrom;
        uint256 validUntil;
        uint256 scopes;
        uint256 purpose;
        uint256 kind;
        uint256 nonce;
        uint256 appointment;
        uint256 standing;
        uint256 cooldown;
    }

    // ---------------------------------------------------------------- helpers

    function _grantSlot(address patient_, address grantee) internal pure returns (bytes32) {
        return keccak256(abi.encode(grantee, keccak256(abi.encode(patient_, GRANTS_SLOT))));
    }

    function _delegationSlot(address patient_, address delegate_) internal pure returns (bytes32) {
        return keccak256(abi.encode(delegate_, keccak256(abi.encode(patient_, DELEGATIONS_SLOT))));
    }

    function _requestSlot(uint256 requestId) internal pure returns (bytes32) {
        return keccak256(abi.encode(requestId, REQUESTS_SLOT));
    }

    function _bits(bytes32 word, uint256 offset, uint256 width) internal pure returns (uint256) {
        return (uint256(word) >> offset) & ((uint256(1) << width) - 1);
    }

    function _decode(bytes32 word) internal pure returns (GrantWord memory w) {
        w.validFrom = _bits(word, 0, 40);
        w.validUntil = _bits(word, 40, 40);
        w.scopes = _bits(word, 80, 8);
        w.purpose = _bits(word, 88, 8);
        w.kind = _bits(word, 96, 8);
        w.nonce = _bits(word, 104, 64);
        w.appointment = _bits(word, 168, 48);
        w.standing = _bits(word, 216, 8);
        w.cooldown = uint256(word) >> 224;
    }

    function _pack(GrantWord memory w) internal pure returns (bytes32) {
        return bytes32(
            w.validFrom | w.validUntil << 40 | w.scopes << 80 | w.purpose << 88 | w.kind << 96 | w.nonce << 104
                | w.appointment << 168 | w.standing << 216
        );
    }

    /// The word of (`patient_`, `grantee`) read from storage holds exactly `expected`.
    function _assertGrantWord(address patient_, address grantee, GrantWord memory expected) internal view {
        GrantWord memory w = _decode(vm.load(address(cm), _grantSlot(patient_, grantee)));
        assertEq(w.validFrom, expected.validFrom, "bits 0-39 validFrom");
        assertEq(w.validUntil, expected.validUntil, "bits 40-79 validUntil");
        assertEq(w.scopes, expected.scopes, "bits 80-87 scopes");
        assertEq(w.purpose, expected.purpose, "bits 88-95 purpose");
        assertEq(w.kind, expected.kind, "bits 96-103 kind");
        assertEq(w.nonce, expected.nonce, "bits 104-167 nonce");
        assertEq(w.appointment, expected.appointment, "bits 168-215 appointment");
        assertEq(w.standing, expected.standing, "bits 216-223 emergencyStanding");
        assertEq(w.cooldown, expected.cooldown, "bits 224-255 emergency cooldown");
    }

    /// Every slot `cm` wrote since vm.record() is `slot`, and it wrote at least one.
    function _assertWroteOnly(bytes32 slot) internal {
        (, bytes32[] memory writes) = vm.accesses(address(cm));
        assertGt(writes.length, 0, "no storage write");
        for (uint256 i; i < writes.length; ++i) {
            assertEq(writes[i], slot, "wrote another slot");
        }
    }

    // ---------------------------------------------------------------- grants

    function test_grant_WritesOneWordWithTheDocumentedBits() public {
        vm.record();
        vm.prank(patient);
        cm.grant(doctor, 0x2a, 6, T0 + 1 days, T0 + 60 days, "");
        _assertWroteOnly(_grantSlot(patient, doctor));
        _assertGrantWord(patient, doctor, GrantWord(T0 + 1 days, T0 + 60 days, 0x2a, 6, PATIENT_KIND, 1, 0, 0, 0));
    }

    function test_takeEmergencyAccess_SetsTheEmergencyBitsAndKeepsTheNonce() public {
        _grantDirect(provider, SCOPES, FROM, UNTIL);
        vm.startPrank(patient);
        cm.setEmergencyPolicy(IConsentManager.EmergencyMode.Named, ALL, false);
        cm.setEmergencyStanding(provider, IConsentManager.EmergencyStanding.Allowed);
        vm.stopPrank();
        _assertGrantWord(patient, provider, GrantWord(FROM, UNTIL, SCOPES, TREAT, PATIENT_KIND, 1, 0, 1, 0));
        vm.record();
        vm.prank(provider);
        cm.takeEmergencyAccess(patient, "unconscious in ER");
        _assertWroteOnly(_grantSlot(patient, provider));
        // cm was deployed at T0: the next emergency is 24 hours + 7 days after it.
        _assertGrantWord(
            patient, provider, GrantWord(T0, T0 + 24 hours, ALL, ETREAT, EMERGENCY_KIND, 1, 0, 1, 24 hours + 7 days)
        );
    }

    function test_revoke_LeavesOnlyTheNonce() public {
        _grantDirect(doctor, ALL, FROM, UNTIL);
        vm.record();
        _revokeDirect(doctor);
        _assertWroteOnly(_grantSlot(patient, doctor));
        assertEq(vm.load(address(cm), _grantSlot(patient, doctor)), bytes32(uint256(2) << 104));
    }

    function test_approveRequest_WritesTheResearchersGrantWord() public {
        uint256 id = _request();
        assertEq(vm.load(address(cm), _requestSlot(id)), bytes32(uint256(IConsentManager.RequestStatus.Pending)));
        vm.prank(patient);
        cm.approveRequest(req, "");
        assertEq(vm.load(address(cm), _requestSlot(id)), bytes32(uint256(IConsentManager.RequestStatus.Approved)));
        _assertGrantWord(
            patient, researcher, GrantWord(T0, T0 + DURATION, RESEARCH_SCOPES, HRESCH, RESEARCH_KIND, 1, 0, 0, 0)
        );
    }

    function test_grantOf_ReadsTheDocumentedBits() public {
        // A word packed by hand, each field at its widest, reads back field for field.
        GrantWord memory w =
            GrantWord(type(uint40).max - 1, type(uint40).max, 0x3f, 7, 4, type(uint64).max, type(uint48).max, 2, 0);
        vm.store(address(cm), _grantSlot(patient, doctor), _pack(w));
        IConsentManager.Grant memory g = cm.grantOf(patient, doctor);
        assertEq(g.validFrom, w.validFrom, "validFrom");
        assertEq(g.validUntil, w.validUntil, "validUntil");
        assertEq(g.scopes, w.scopes, "scopes");
        assertEq(g.purpose, w.purpose, "purpose");
        assertEq(uint8(g.kind), w.kind, "kind");
        assertEq(g.nonce, w.nonce, "nonce");
        assertEq(g.appointment, w.appointment, "appointment");
        assertEq(uint8(g.emergencyStanding), w.standing, "emergencyStanding");
    }

    function testFuzz_grant_PacksTheDocumentedBits(uint256 scopes, uint256 purpose, uint256 from, uint256 length)
        public
    {
        uint8 s = uint8(bound(scopes, 1, ALL));
        uint8 p = uint8(bound(purpose, 0, PURPOSE_COUNT - 1));
        uint40 validFrom = uint40(bound(from, 0, T0 + 365 days));
        uint40 validUntil = (validFrom > T0 ? validFrom : T0) + uint40(bound(length, 1, 365 days));
        vm.prank(patient);
        cm.grant(doctor, s, p, validFrom, validUntil, "");
        _assertGrantWord(patient, doctor, GrantWord(validFrom, validUntil, s, p, PATIENT_KIND, 1, 0, 0, 0));
    }

    // ---------------------------------------------------------------- delegations

    function test_appointDelegate_WritesTheDelegationWordAndTheAppointment() public {
        // Delegation: bits 0-7 appointed | 8-71 nonce | 72-119 appointment | 120-127 scopes |
        // 128-167 maxDuration | 168-175 openHistory. Appointment: bits 0-7 state | 8-15 openHistory.
        vm.prank(patient);
        cm.appointDelegate(delegate, 0x05, 30 days, true);
        assertEq(
            vm.load(address(cm), _delegationSlot(patient, delegate)),
            bytes32(
                uint256(1) | uint256(1) << 8 | uint256(1) << 72 | uint256(0x05) << 120 | uint256(30 days) << 128
                    | uint256(1) << 168
            )
        );
        assertEq(
            vm.load(address(cm), keccak256(abi.encode(uint256(1), APPOINTMENTS_SLOT))),
            bytes32(uint256(1) | uint256(1) << 8)
        );
        assertEq(vm.load(address(cm), bytes32(APPOINTMENT_COUNT_SLOT)), bytes32(uint256(1)));

        vm.prank(patient);
        cm.removeDelegate(delegate, false);
        assertEq(
            vm.load(address(cm), _delegationSlot(patient, delegate)),
            bytes32(
                uint256(2) << 8 | uint256(1) << 72 | uint256(0x05) << 120 | uint256(30 days) << 128 | uint256(1) << 168
            )
        );
        assertEq(
            vm.load(address(cm), keccak256(abi.encode(uint256(1), APPOINTMENTS_SLOT))),
            bytes32(uint256(2) | uint256(1) << 8)
        );
    }

    function test_grantBySig_ByDelegateRecordsTheAppointment() public {
        _appointDelegate();
        bytes32 h = ConsentSig.grantHash(patient, doctor, SCOPES, TREAT, FROM, UNTIL, "", uint256(1) << 64, DEADLINE);
        IConsentManager.Authorization memory auth = _sign(delegatePk, h, uint256(1) << 64);
        vm.prank(relayer);
        cm.grantBySig(patient, doctor, SCOPES, TREAT, FROM, UNTIL, "", auth);
        _assertGrantWord(patient, doctor, GrantWord(FROM, UNTIL, SCOPES, TREAT, DELEGATE_KIND, 1, 1, 0, 0));
    }

    function test_setEmergencyPolicy_WritesOneWord() public {
        // EmergencyPolicy: bits 0-7 mode | 8-15 scopes | 16-23 fullHistory.
        vm.prank(patient);
        cm.setEmergencyPolicy(IConsentManager.EmergencyMode.AnyProvider, 0x07, true);
        assertEq(
            vm.load(address(cm), keccak256(abi.encode(patient, POLICIES_SLOT))),
            bytes32(uint256(2) | uint256(0x07) << 8 | uint256(1) << 16)
        );
    }
}
