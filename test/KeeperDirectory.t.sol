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

    function _release(uint64 index, bytes32 id) internal view returns (IKeeperDirectory.Release[] memory releases) {
        releases = new IKeeperDirectory.Release[](1);
        releases[0] = IKeeperDirectory.Release(patient, index, researcher, T0, id);
    }

    function test_setKeepers_StoresTheSetAndEmits() public {
        address[] memory keepers = _three();
        vm.expectEmit(true, false, false, true, address(directory));
        emit IKeeperDirectory.KeepersChosen(patient, keepers, 2);
        vm.prank(patient);
        directory.setKeepers(keepers, 2);

        (address[] memory stored, uint8 threshold) = directory.keepersOf(patient);
        assertEq(stored, keepers);
        assertEq(threshold, 2);
    }

    function test_setKeepers_EmptyListRemovesThem() public {
        vm.startPrank(patient);
        directory.setKeepers(_three(), 2);
        directory.setKeepers(new address[](0), 0);
        vm.stopPrank();

        (address[] memory stored, uint8 threshold) = directory.keepersOf(patient);
        assertEq(stored.length, 0);
        assertEq(threshold, 0);
    }

    function test_setKeepers_PatientAsItsOwnSingleKeeper() public {
        address[] memory keepers = new address[](1);
        keepers[0] = patient;
        vm.prank(patient);
        directory.setKeepers(keepers, 1);

        (address[] memory stored, uint8 threshold) = directory.keepersOf(patient);
        assertEq(stored[0], patient);
        assertEq(threshold, 1);
    }

    function test_RevertWhen_ThresholdAboveKeeperCount() public {
        vm.expectRevert(abi.encodeWithSelector(IKeeperDirectory.KeeperDirectoryInvalidKeepers.selector, 3, 4));
        vm.prank(patient);
        directory.setKeepers(_three(), 4);
    }

    function test_RevertWhen_ThresholdZero() public {
        vm.expectRevert(abi.encodeWithSelector(IKeeperDirectory.KeeperDirectoryInvalidKeepers.selector, 3, 0));
        vm.prank(patient);
        directory.setKeepers(_three(), 0);
    }

    function test_RevertWhen_DuplicateKeeper() public {
        address[] memory keepers = _three();
        keepers[2] = keeperA;
        vm.expectRevert(abi.encodeWithSelector(IKeeperDirectory.KeeperDirectoryInvalidKeepers.selector, 3, 2));
        vm.prank(patient);
        directory.setKeepers(keepers, 2);
    }

    function test_RevertWhen_ZeroAddressKeeper() public {
        address[] memory keepers = _three();
        keepers[1] = address(0);
        vm.expectRevert(abi.encodeWithSelector(IKeeperDirectory.KeeperDirectoryInvalidKeepers.selector, 3, 2));
        vm.prank(patient);
        directory.setKeepers(keepers, 2);
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
        vm.prank(patient);
        directory.setKeepers(_three(), 2);
        IKeeperDirectory.Release[] memory releases = new IKeeperDirectory.Release[](2);
        releases[0] = IKeeperDirectory.Release(patient, 0, researcher, T0, bytes32("one"));
        releases[1] = IKeeperDirectory.Release(patient, 1, researcher, T0 + 1, bytes32("two"));

        vm.expectEmit(true, true, true, true, address(directory));
        emit IKeeperDirectory.KeyReleased(patient, researcher, keeperB, 0, T0, bytes32("one"));
        vm.expectEmit(true, true, true, true, address(directory));
        emit IKeeperDirectory.KeyReleased(patient, researcher, keeperB, 1, T0 + 1, bytes32("two"));
        vm.prank(keeperB);
        directory.recordReleases(releases);
    }

    function test_RevertWhen_ANonKeeperPostsReceipts() public {
        vm.prank(patient);
        directory.setKeepers(_three(), 2);

        vm.expectRevert(abi.encodeWithSelector(IKeeperDirectory.KeeperDirectoryNotAKeeper.selector, stranger, patient));
        vm.prank(stranger);
        directory.recordReleases(_release(0, bytes32("x")));
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
        directory.setKeepers(keepers, threshold);

        (address[] memory stored, uint8 storedThreshold) = directory.keepersOf(patient);
        assertEq(stored.length, valid ? count : 0);
        assertEq(storedThreshold, valid ? threshold : 0);
    }
}
