// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";
import {ParticipantRegistry} from "../../contracts/ParticipantRegistry.sol";
import {Cids} from "../../contracts/libraries/Cids.sol";

/// @notice What every contract suite shares: the clock, the record categories and purposes, the
/// record pointers, the accounts, and the participant registry the other contracts read.
/// The values are written out here rather than read from the contracts (or from
/// {Categories}), so that the suites stay an independent check of them.
abstract contract Base is Test {
    // Timestamps are literal constants: with via_ir, re-reading block.timestamp in the test
    // contract after vm.warp is not reliable.
    uint40 internal constant T0 = 1_750_000_000;

    // Record categories (bit c of a scope is category c).
    uint8 internal constant LABORATORY = 0;
    uint8 internal constant IMAGING = 1;
    uint8 internal constant MEDICATIONS = 2;
    uint8 internal constant CONDITIONS = 3;
    uint8 internal constant IMMUNIZATIONS = 4;
    uint8 internal constant NOTES = 5;
    uint8 internal constant CATEGORY_COUNT = 6;
    /// Every category.
    uint8 internal constant ALL = 0x3f;

    // HL7 PurposeOfUse codes.
    uint8 internal constant TREAT = 0;
    uint8 internal constant ETREAT = 1;
    uint8 internal constant HRESCH = 2;
    uint8 internal constant PURPOSE_COUNT = 8;

    // A record pointer: the ciphertext's CID, its hash, and the CID of its key bundle.
    bytes internal constant CID = hex"01551220aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11";
    bytes32 internal constant CONTENT_HASH = keccak256("ciphertext 0");
    bytes internal constant KEYS_CID = hex"01551220bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22";

    // Accounts: makeAddr(label), so each is the same address in every suite. The patient, the
    // delegate and the stranger sign, so their keys are kept too.
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
    address internal provider = makeAddr("provider");
    address internal researcher = makeAddr("researcher");
    address internal relayer = makeAddr("relayer");

    constructor() {
        (patient, patientPk) = makeAddrAndKey("patient");
        (delegate, delegatePk) = makeAddrAndKey("delegate");
        (stranger, strangerPk) = makeAddrAndKey("stranger");
    }

    /// A raw-codec binary CID (CIDv1, sha2-256) with a digest made of `content`. (keccak256, not
    /// sha256: a call to the sha256 precompile would take a pending prank or expectRevert.)
    function _cid(bytes memory content) internal pure returns (bytes memory) {
        return abi.encodePacked(hex"01551220", keccak256(content));
    }

    /// Pointers every contract refuses (InvalidCid): each breaks the CIDv1 / raw or dag-pb /
    /// sha2-256 / 32-byte layout one way.
    function _malformedCids() internal pure returns (bytes[] memory cids) {
        bytes32 digest = keccak256("ciphertext");
        cids = new bytes[](8);
        cids[0] = "";
        cids[1] = abi.encodePacked(hex"1220", digest); // CIDv0
        cids[2] = abi.encodePacked(hex"01711220", digest); // dag-cbor
        cids[3] = abi.encodePacked(hex"01551340", digest, digest); // sha2-512
        cids[4] = abi.encodePacked(hex"0155a0e40220", digest); // blake2b-256
        cids[5] = abi.encodePacked(hex"01551220", bytes31(digest)); // truncated
        cids[6] = abi.encodePacked(hex"01551220", digest, hex"00"); // 37 bytes
        cids[7] = abi.encodePacked(keccak256("random"), bytes4(0xdeadbeef)); // 36 random bytes
    }

    function _invalidCid(bytes memory cid) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(Cids.InvalidCid.selector, cid);
    }

    /// A new ParticipantRegistry with `admin` as its admin and first accreditor.
    function _deployParticipants() internal returns (ParticipantRegistry registry) {
        registry = new ParticipantRegistry(admin);
    }

    /// `admin` gives `account` the provider role.
    function _accreditProvider(ParticipantRegistry registry, address account) internal {
        bytes32 role = registry.PROVIDER_ROLE();
        vm.prank(admin);
        registry.grantRole(role, account);
    }

    /// `admin` gives `account` the researcher role.
    function _accreditResearcher(ParticipantRegistry registry, address account) internal {
        bytes32 role = registry.RESEARCHER_ROLE();
        vm.prank(admin);
        registry.grantRole(role, account);
    }
}
