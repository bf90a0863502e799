// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {ParticipantRegistry} from "../contracts/ParticipantRegistry.sol";
import {IParticipantRegistry} from "../contracts/interfaces/IParticipantRegistry.sol";
import {Base} from "./utils/Base.sol";

contract ParticipantRegistryTest is Base {
    ParticipantRegistry internal registry;

    bytes32 internal PROVIDER_ROLE;
    bytes32 internal RESEARCHER_ROLE;
    bytes32 internal ACCREDITOR_ROLE;
    bytes32 internal DEFAULT_ADMIN_ROLE;

    // Suite tags and public key lengths after the tag (docs/FORMATS.md), written out.
    uint8 internal constant X25519 = 1;
    uint256 internal constant X25519_LENGTH = 32;
    uint8 internal constant MLKEM768_X25519 = 2;
    uint256 internal constant MLKEM768_X25519_LENGTH = 1216;

    bytes internal constant KEY = hex"01a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
    bytes internal constant OTHER_KEY = hex"015555555555555555555555555555555555555555555555555555555555555555";

    function setUp() public {
        registry = _deployParticipants();
        PROVIDER_ROLE = registry.PROVIDER_ROLE();
        RESEARCHER_ROLE = registry.RESEARCHER_ROLE();
        ACCREDITOR_ROLE = registry.ACCREDITOR_ROLE();
        DEFAULT_ADMIN_ROLE = registry.DEFAULT_ADMIN_ROLE();
    }

    // ---------------------------------------------------------------- constructor

    function test_constructor_RoleConstants() public view {
        assertEq(PROVIDER_ROLE, keccak256("PROVIDER"));
        assertEq(RESEARCHER_ROLE, keccak256("RESEARCHER"));
        assertEq(ACCREDITOR_ROLE, keccak256("ACCREDITOR"));
        assertEq(registry.SUITE_X25519(), X25519);
        assertEq(registry.X25519_KEY_LENGTH(), X25519_LENGTH);
        assertEq(registry.SUITE_MLKEM768_X25519(), MLKEM768_X25519);
        assertEq(registry.MLKEM768_X25519_KEY_LENGTH(), MLKEM768_X25519_LENGTH);
    }

    function test_constructor_AdminIsAdminAndAccreditor() public view {
        assertTrue(registry.hasRole(DEFAULT_ADMIN_ROLE, admin));
        assertTrue(registry.hasRole(ACCREDITOR_ROLE, admin));
        assertFalse(registry.isProvider(admin));
        assertFalse(registry.isResearcher(admin));
        assertFalse(registry.hasRole(DEFAULT_ADMIN_ROLE, stranger));
        assertFalse(registry.hasRole(ACCREDITOR_ROLE, stranger));
    }

    function test_constructor_RoleAdmins() public view {
        assertEq(registry.getRoleAdmin(PROVIDER_ROLE), ACCREDITOR_ROLE);
        assertEq(registry.getRoleAdmin(RESEARCHER_ROLE), ACCREDITOR_ROLE);
        assertEq(registry.getRoleAdmin(ACCREDITOR_ROLE), DEFAULT_ADMIN_ROLE);
    }

    // ---------------------------------------------------------------- register

    function test_register_StoresKeyHash() public {
        assertFalse(registry.isRegistered(patient));
        assertEq(registry.encryptionKeyHash(patient), bytes32(0));

        vm.prank(patient);
        registry.register(KEY);

        assertTrue(registry.isRegistered(patient));
        assertEq(registry.encryptionKeyHash(patient), keccak256(KEY));
        // Only the caller is registered.
        assertFalse(registry.isRegistered(stranger));
    }

    function test_register_EmitsParticipantRegisteredWithKey() public {
        vm.expectEmit(true, true, false, true, address(registry));
        emit IParticipantRegistry.ParticipantRegistered(patient, keccak256(KEY), KEY);
        vm.prank(patient);
        registry.register(KEY);
    }

    function test_register_ReRegisterReplacesKey() public {
        vm.prank(patient);
        registry.register(KEY);

        vm.expectEmit(true, true, false, true, address(registry));
        emit IParticipantRegistry.ParticipantRegistered(patient, keccak256(OTHER_KEY), OTHER_KEY);
        vm.prank(patient);
        registry.register(OTHER_KEY);

        assertTrue(registry.isRegistered(patient));
        assertEq(registry.encryptionKeyHash(patient), keccak256(OTHER_KEY));
        assertNotEq(registry.encryptionKeyHash(patient), keccak256(KEY));
    }

    function test_register_MlKemX25519Key() public {
        bytes memory key = _key(MLKEM768_X25519, MLKEM768_X25519_LENGTH, 0x42);
        vm.expectEmit(true, true, false, true, address(registry));
        emit IParticipantRegistry.ParticipantRegistered(patient, keccak256(key), key);
        vm.prank(patient);
        registry.register(key);
        assertEq(registry.encryptionKeyHash(patient), keccak256(key));
    }

    function test_RevertWhen_RegisterEmptyKey() public {
        vm.expectRevert(IParticipantRegistry.ParticipantRegistryEmptyKey.selector);
        vm.prank(patient);
        registry.register("");
        assertFalse(registry.isRegistered(patient));
    }

    function test_RevertWhen_RegisterUnknownSuite() public {
        uint8[4] memory tags = [0, 3, 0x20, 0xff];
        for (uint256 i; i < tags.length; ++i) {
            _expectUnknownSuite(tags[i]);
            vm.prank(patient);
            registry.register(_key(tags[i], X25519_LENGTH, 0x42));
        }
        assertFalse(registry.isRegistered(patient));
    }

    function test_RevertWhen_RegisterX25519KeyOfWrongLength() public {
        uint256[5] memory lengths = [uint256(0), 1, 31, 33, MLKEM768_X25519_LENGTH];
        for (uint256 i; i < lengths.length; ++i) {
            _expectWrongLength(X25519, lengths[i], X25519_LENGTH);
            vm.prank(patient);
            registry.register(_key(X25519, lengths[i], 0x42));
        }
        assertFalse(registry.isRegistered(patient));
    }

    function test_RevertWhen_RegisterMlKemX25519KeyOfWrongLength() public {
        uint256[5] memory lengths = [uint256(0), X25519_LENGTH, 1184, 1215, 1217];
        for (uint256 i; i < lengths.length; ++i) {
            _expectWrongLength(MLKEM768_X25519, lengths[i], MLKEM768_X25519_LENGTH);
            vm.prank(patient);
            registry.register(_key(MLKEM768_X25519, lengths[i], 0x42));
        }
        assertFalse(registry.isRegistered(patient));
    }

    function test_RevertWhen_ReRegisterWithInvalidKeyKeepsOldKey() public {
        vm.prank(patient);
        registry.register(KEY);

        _expectWrongLength(X25519, 31, X25519_LENGTH);
        vm.prank(patient);
        registry.register(_key(X25519, 31, 0x42));
        assertEq(registry.encryptionKeyHash(patient), keccak256(KEY));
    }

    /// Any tag and length: registered exactly when both are a suite's, else refused with the reason.
    function testFuzz_register_OnlyASuitesKeyLength(uint8 tag, uint256 length, uint8 fill) public {
        length = bound(length, 0, 1300);
        bytes memory key = _key(tag, length, bytes1(fill));
        bool valid =
            tag == X25519 && length == X25519_LENGTH || tag == MLKEM768_X25519 && length == MLKEM768_X25519_LENGTH;
        if (valid) {
            vm.expectEmit(true, true, false, true, address(registry));
            emit IParticipantRegistry.ParticipantRegistered(doctor, keccak256(key), key);
        } else if (tag == X25519) {
            _expectWrongLength(X25519, length, X25519_LENGTH);
        } else if (tag == MLKEM768_X25519) {
            _expectWrongLength(MLKEM768_X25519, length, MLKEM768_X25519_LENGTH);
        } else {
            _expectUnknownSuite(tag);
        }
        vm.prank(doctor);
        registry.register(key);
        assertEq(registry.isRegistered(doctor), valid);
    }

    // ---------------------------------------------------------------- accreditation

    function test_grantRole_AccreditorAccreditsProvider() public {
        assertFalse(registry.isProvider(provider));

        vm.expectEmit(true, true, true, true, address(registry));
        emit IAccessControl.RoleGranted(PROVIDER_ROLE, provider, admin);
        vm.prank(admin);
        registry.grantRole(PROVIDER_ROLE, provider);

        assertTrue(registry.isProvider(provider));
        assertFalse(registry.isResearcher(provider));
    }

    function test_grantRole_AccreditorAccreditsResearcher() public {
        vm.expectEmit(true, true, true, true, address(registry));
        emit IAccessControl.RoleGranted(RESEARCHER_ROLE, stranger, admin);
        vm.prank(admin);
        registry.grantRole(RESEARCHER_ROLE, stranger);

        assertTrue(registry.isResearcher(stranger));
        assertFalse(registry.isProvider(stranger));
    }

    function test_revokeRole_AccreditorWithdrawsProvider() public {
        vm.prank(admin);
        registry.grantRole(PROVIDER_ROLE, provider);

        vm.expectEmit(true, true, true, true, address(registry));
        emit IAccessControl.RoleRevoked(PROVIDER_ROLE, provider, admin);
        vm.prank(admin);
        registry.revokeRole(PROVIDER_ROLE, provider);

        assertFalse(registry.isProvider(provider));
    }

    function test_revokeRole_AccreditorWithdrawsResearcher() public {
        vm.prank(admin);
        registry.grantRole(RESEARCHER_ROLE, stranger);

        vm.expectEmit(true, true, true, true, address(registry));
        emit IAccessControl.RoleRevoked(RESEARCHER_ROLE, stranger, admin);
        vm.prank(admin);
        registry.revokeRole(RESEARCHER_ROLE, stranger);

        assertFalse(registry.isResearcher(stranger));
    }

    function test_grantRole_AdminAppointsAccreditorWhoAccredits() public {
        vm.expectEmit(true, true, true, true, address(registry));
        emit IAccessControl.RoleGranted(ACCREDITOR_ROLE, doctor, admin);
        vm.prank(admin);
        registry.grantRole(ACCREDITOR_ROLE, doctor);
        assertTrue(registry.hasRole(ACCREDITOR_ROLE, doctor));

        vm.expectEmit(true, true, true, true, address(registry));
        emit IAccessControl.RoleGranted(PROVIDER_ROLE, provider, doctor);
        vm.prank(doctor);
        registry.grantRole(PROVIDER_ROLE, provider);
        assertTrue(registry.isProvider(provider));
    }

    function test_RevertWhen_NonAccreditorGrantsProvider() public {
        _expectUnauthorized(stranger, ACCREDITOR_ROLE);
        vm.prank(stranger);
        registry.grantRole(PROVIDER_ROLE, stranger);
        assertFalse(registry.isProvider(stranger));
    }

    function test_RevertWhen_ProviderAccreditsProvider() public {
        vm.prank(admin);
        registry.grantRole(PROVIDER_ROLE, provider);

        _expectUnauthorized(provider, ACCREDITOR_ROLE);
        vm.prank(provider);
        registry.grantRole(PROVIDER_ROLE, doctor);
        assertFalse(registry.isProvider(doctor));
    }

    function test_RevertWhen_NonAccreditorRevokesProvider() public {
        vm.prank(admin);
        registry.grantRole(PROVIDER_ROLE, provider);

        _expectUnauthorized(stranger, ACCREDITOR_ROLE);
        vm.prank(stranger);
        registry.revokeRole(PROVIDER_ROLE, provider);
        assertTrue(registry.isProvider(provider));
    }

    function test_RevertWhen_NonAdminAppointsAccreditor() public {
        _expectUnauthorized(stranger, DEFAULT_ADMIN_ROLE);
        vm.prank(stranger);
        registry.grantRole(ACCREDITOR_ROLE, stranger);
        assertFalse(registry.hasRole(ACCREDITOR_ROLE, stranger));
    }

    function test_RevertWhen_RevokedAccreditorAccredits() public {
        vm.startPrank(admin);
        registry.grantRole(ACCREDITOR_ROLE, doctor);
        registry.revokeRole(ACCREDITOR_ROLE, doctor);
        vm.stopPrank();

        _expectUnauthorized(doctor, ACCREDITOR_ROLE);
        vm.prank(doctor);
        registry.grantRole(PROVIDER_ROLE, provider);
        assertFalse(registry.isProvider(provider));
    }

    function test_accreditation_IndependentOfRegistration() public {
        vm.prank(admin);
        registry.grantRole(PROVIDER_ROLE, provider);
        assertTrue(registry.isProvider(provider));
        assertFalse(registry.isRegistered(provider));

        vm.prank(patient);
        registry.register(KEY);
        assertTrue(registry.isRegistered(patient));
        assertFalse(registry.isProvider(patient));
    }

    // ---------------------------------------------------------------- helpers

    /// The next call reverts with AccessControlUnauthorizedAccount(account, role).
    function _expectUnauthorized(address account, bytes32 role) internal {
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, account, role)
        );
    }

    /// The next call reverts with ParticipantRegistryUnknownSuite(tag).
    function _expectUnknownSuite(uint8 tag) internal {
        vm.expectRevert(abi.encodeWithSelector(IParticipantRegistry.ParticipantRegistryUnknownSuite.selector, tag));
    }

    /// The next call reverts with ParticipantRegistryInvalidKeyLength(suite, length, expected).
    function _expectWrongLength(uint8 suite, uint256 length, uint256 expected) internal {
        vm.expectRevert(
            abi.encodeWithSelector(
                IParticipantRegistry.ParticipantRegistryInvalidKeyLength.selector, suite, length, expected
            )
        );
    }

    /// A key of suite `tag` with `length` bytes of `fill` after the tag.
    function _key(uint8 tag, uint256 length, bytes1 fill) internal pure returns (bytes memory key) {
        key = new bytes(length + 1);
        key[0] = bytes1(tag);
        for (uint256 i = 1; i <= length; ++i) {
            key[i] = fill;
        }
    }
}
