// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {KeeperDirectory} from "../contracts/KeeperDirectory.sol";
import {IKeeperDirectory} from "../contracts/interfaces/IKeeperDirectory.sol";
import {Base} from "./utils/Base.sol";

contract KeeperDirectoryTest is Base {
    KeeperDirectory internal directory;

    address internal keeperA = makeAddr("keeperA");
    address internal keeperB = makeAddr("keeperB");
    address internal keeperC = makeAddr("keeperC");

    function setUp() public {
        directory = new KeeperDirectory();
    }

    function _three() internal view returns (address[] memory keepers) {
        keepers = new address[](3);
        keepers[0] = keeperA;
        keepers[1] = keeperB;
        keepers[2] = keeperC;
    }

    bytes32 internal constant KEY_REQUEST_TYPEHASH =
        keccak256("KeyRequest(address patient,uint64 index,address reader,address keeper,uint256 issuedAt)");

    /// The EIP-712 digest of a reader's KeyRequest, computed here from the spec (domain
    /// "medvault keeper" / "1"), independently of the contract.
    function _digest(uint64 index, address keeper, uint40 issuedAt) internal view returns (bytes32) {
        bytes32 domain = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("medvault keeper"),
                keccak256("1"),
                block.chainid,
                address(directory)
            )
        );
        bytes32 structHash = keccak256(abi.encode(KEY_REQUEST_TYPEHASH, patient, index, stranger, keeper, issuedAt));
        return keccak256(abi.encodePacked("\x19\x01", domain, structHash));
    }

    /// A receipt for a request the reader (`stranger`, whose key the suite holds) signed to `keeper`.
    function _signed(uint64 index, address keeper, uint256 signerPk)
        internal
        view
        returns (IKeeperDirectory.Release memory release, bytes32 id)
    {
        id = _digest(index, keeper, T0);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(signerPk, id);
        release = IKeeperDirectory.Release(patient, index, stranger, T0, T0, 1, abi.encodePacked(r, s, v));
    }

    function _one(IKeeperDirectory.Release memory release)
        internal
        pure
        returns (IKeeperDirectory.Release[] memory releases)
    {
        releases = new IKeeperDirectory.Release[](1);
        releases[0] = release;
    }

    function _atT0() internal {
        vm.warp(T0);
        vm.roll(10);
    }

    function test_setKeepers_StoresTheSetAndEmits() public {
        address[] memory keepers = _three();
        vm.expectEmit(true, false, false, true, address(directory));
        emit IKeeperDirectory.KeepersChosen(patient, keepers, 2, "");
        vm.prank(patient);
        directory.setKeepers(keepers, 2, "");

        (address[] memory stored, uint8 threshold,) = directory.keepersOf(patient);
        assertEq(stored, keepers);
        assertEq(threshold, 2);
    }

    function test_setKeepers_EmptyListRemovesThem() public {
        vm.startPrank(patient);
        directory.setKeepers(_three(), 2, "");
        directory.setKeepers(new address[](0), 0, "");
        vm.stopPrank();

        (address[] memory stored, uint8 threshold,) = directory.keepersOf(patient);
        assertEq(stored.length, 0);
        assertEq(threshold, 0);
    }

    function test_setKeepers_PatientAsItsOwnSingleKeeper() public {
        address[] memory keepers = new address[](1);
        keepers[0] = patient;
        vm.prank(patient);
        directory.setKeepers(keepers, 1, "");

        (address[] memory stored, uint8 threshold,) = directory.keepersOf(patient);
        assertEq(stored[0], patient);
        assertEq(threshold, 1);
    }

    function test_RevertWhen_ThresholdAboveKeeperCount() public {
        vm.expectRevert(abi.encodeWithSelector(IKeeperDirectory.KeeperDirectoryInvalidKeepers.selector, 3, 4));
        vm.prank(patient);
        directory.setKeepers(_three(), 4, "");
    }

    function test_RevertWhen_ThresholdZero() public {
        vm.expectRevert(abi.encodeWithSelector(IKeeperDirectory.KeeperDirectoryInvalidKeepers.selector, 3, 0));
        vm.prank(patient);
        directory.setKeepers(_three(), 0, "");
    }

    function test_RevertWhen_DuplicateKeeper() public {
        address[] memory keepers = _three();
        keepers[2] = keeperA;
        vm.expectRevert(abi.encodeWithSelector(IKeeperDirectory.KeeperDirectoryInvalidKeepers.selector, 3, 2));
        vm.prank(patient);
        directory.setKeepers(keepers, 2, "");
    }

    function test_RevertWhen_ZeroAddressKeeper() public {
        address[] memory keepers = _three();
        keepers[1] = address(0);
        vm.expectRevert(abi.encodeWithSelector(IKeeperDirectory.KeeperDirectoryInvalidKeepers.selector, 3, 2));
        vm.prank(patient);
        directory.setKeepers(keepers, 2, "");
    }

    function test_announce_Emits() public {
        vm.expectEmit(true, false, false, true, address(directory));
        emit IKeeperDirectory.KeeperAnnounced(keeperA, "http://127.0.0.1:7001");
        vm.prank(keeperA);
        directory.announce("http://127.0.0.1:7001");
    }

    function test_RevertWhen_AnnouncingAnEmptyUrl() public {
        vm.expectRevert(IKeeperDirectory.KeeperDirectoryInvalidUrl.selector);
        vm.prank(keeperA);
        directory.announce("");
    }

    function test_recordReleases_EmitsOneReceiptPerRelease() public {
        _atT0();
        vm.prank(patient);
        directory.setKeepers(_three(), 2, "");
        IKeeperDirectory.Release[] memory releases = new IKeeperDirectory.Release[](2);
        bytes32 one;
        bytes32 two;
        (releases[0], one) = _signed(0, keeperB, strangerPk);
        (releases[1], two) = _signed(1, keeperB, strangerPk);

        vm.expectEmit(true, true, true, true, address(directory));
        emit IKeeperDirectory.KeyReleased(patient, stranger, keeperB, 0, T0, one, 1, T0);
        vm.expectEmit(true, true, true, true, address(directory));
        emit IKeeperDirectory.KeyReleased(patient, stranger, keeperB, 1, T0, two, 1, T0);
        vm.prank(keeperB);
        directory.recordReleases(releases);
    }

    function test_RevertWhen_ANonKeeperPostsReceipts() public {
        _atT0();
        vm.prank(patient);
        directory.setKeepers(_three(), 2, "");
        (IKeeperDirectory.Release memory release,) = _signed(0, stranger, strangerPk);

        vm.expectRevert(abi.encodeWithSelector(IKeeperDirectory.KeeperDirectoryNotAKeeper.selector, stranger, patient));
        vm.prank(stranger);
        directory.recordReleases(_one(release));
    }

    /// M-7: a keeper cannot post a receipt for a request the reader never signed, nor one
    /// dated in the future or decided on a block that has not been mined.
    function test_fabricated_receipt_is_refused() public {
        _atT0();
        vm.prank(patient);
        directory.setKeepers(_three(), 2, "");
        (IKeeperDirectory.Release memory forged,) = _signed(0, keeperA, patientPk); // not the reader's key
        vm.expectRevert(
            abi.encodeWithSelector(IKeeperDirectory.KeeperDirectoryNotSignedByReader.selector, 0, stranger)
        );
        vm.prank(keeperA);
        directory.recordReleases(_one(forged));

        (IKeeperDirectory.Release memory otherKeeper,) = _signed(0, keeperB, strangerPk); // signed to B, posted by A
        vm.expectRevert(
            abi.encodeWithSelector(IKeeperDirectory.KeeperDirectoryNotSignedByReader.selector, 0, stranger)
        );
        vm.prank(keeperA);
        directory.recordReleases(_one(otherKeeper));

        (IKeeperDirectory.Release memory release,) = _signed(0, keeperA, strangerPk);
        release.signature = hex"00";
        vm.expectRevert(
            abi.encodeWithSelector(IKeeperDirectory.KeeperDirectoryNotSignedByReader.selector, 0, stranger)
        );
        vm.prank(keeperA);
        directory.recordReleases(_one(release));

        (release,) = _signed(0, keeperA, strangerPk);
        release.releasedAt = type(uint40).max; // "released" in the future
        vm.expectRevert(abi.encodeWithSelector(IKeeperDirectory.KeeperDirectoryInvalidReceipt.selector, 0));
        vm.prank(keeperA);
        directory.recordReleases(_one(release));

        (release,) = _signed(0, keeperA, strangerPk);
        release.decidedAt = 11; // a block not yet mined
        vm.expectRevert(abi.encodeWithSelector(IKeeperDirectory.KeeperDirectoryInvalidReceipt.selector, 0));
        vm.prank(keeperA);
        directory.recordReleases(_one(release));

        (release,) = _signed(0, keeperA, strangerPk);
        release.releasedAt = T0 - 301; // decided long after the request was issued
        vm.expectRevert(abi.encodeWithSelector(IKeeperDirectory.KeeperDirectoryInvalidReceipt.selector, 0));
        vm.prank(keeperA);
        directory.recordReleases(_one(release));
    }

    /// M-7: a keeper the patient removed can still post the receipts of releases it made.
    function test_receipts_from_removed_keeper_are_kept() public {
        _atT0();
        vm.startPrank(patient);
        directory.setKeepers(_three(), 2, "");
        address[] memory others = new address[](1);
        others[0] = keeperC;
        directory.setKeepers(others, 1, KEYS_CID);
        vm.stopPrank();
        assertTrue(directory.wasKeeper(patient, keeperA));
        assertFalse(directory.wasKeeper(patient, stranger));

        (IKeeperDirectory.Release memory release, bytes32 id) = _signed(3, keeperA, strangerPk);
        vm.expectEmit(true, true, true, true, address(directory));
        emit IKeeperDirectory.KeyReleased(patient, stranger, keeperA, 3, T0, id, 1, T0);
        vm.prank(keeperA);
        directory.recordReleases(_one(release));
    }

    function test_setKeepers_StoresTheReEscrowBundle() public {
        vm.prank(patient);
        directory.setKeepers(_three(), 2, KEYS_CID);
        (,, bytes memory escrowCid) = directory.keepersOf(patient);
        assertEq(escrowCid, KEYS_CID);
    }

    function test_RevertWhen_AnEscrowComesWithNoKeepers() public {
        vm.expectRevert(IKeeperDirectory.KeeperDirectoryInvalidEscrow.selector);
        vm.prank(patient);
        directory.setKeepers(new address[](0), 0, KEYS_CID);
    }

    function test_RevertWhen_AnEscrowCidIsMalformed() public {
        bytes[] memory bad = _malformedCids();
        vm.startPrank(patient);
        directory.setKeepers(_three(), 2, KEYS_CID);
        // The empty one is no escrow at all, which a keeper set may have.
        for (uint256 i = 1; i < bad.length; ++i) {
            vm.expectRevert(_invalidCid(bad[i]));
            directory.setKeepers(_three(), 2, bad[i]);
        }
        vm.stopPrank();
        (,, bytes memory escrowCid) = directory.keepersOf(patient);
        assertEq(escrowCid, KEYS_CID);
    }

    function test_setKeepers_AcceptsADagPbEscrow() public {
        bytes memory cid = abi.encodePacked(hex"01701220", keccak256("a large re-escrow bundle"));
        vm.prank(patient);
        directory.setKeepers(_three(), 2, cid);
        (,, bytes memory escrowCid) = directory.keepersOf(patient);
        assertEq(escrowCid, cid);
    }

    function test_domainSeparatorIsTheKeyRequestDomain() public view {
        bytes32 expected = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("medvault keeper"),
                keccak256("1"),
                block.chainid,
                address(directory)
            )
        );
        assertEq(directory.DOMAIN_SEPARATOR(), expected);
    }

    function testFuzz_setKeepers_AcceptsExactlyValidThresholds(uint8 count, uint8 threshold) public {
        count = uint8(bound(count, 1, 16));
        address[] memory keepers = new address[](count);
        for (uint256 i; i < count; ++i) {
            keepers[i] = address(uint160(i + 1));
        }
        bool valid = threshold >= 1 && threshold <= count;
        if (!valid) {
            vm.expectRevert(
                abi.encodeWithSelector(IKeeperDirectory.KeeperDirectoryInvalidKeepers.selector, count, threshold)
            );
        }
        vm.prank(patient);
        directory.setKeepers(keepers, threshold, "");

        (address[] memory stored, uint8 storedThreshold,) = directory.keepersOf(patient);
        assertEq(stored.length, valid ? count : 0);
        assertEq(storedThreshold, valid ? threshold : 0);
    }
}
