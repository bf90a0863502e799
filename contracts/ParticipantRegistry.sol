// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IParticipantRegistry} from "./interfaces/IParticipantRegistry.sol";

/// @title ParticipantRegistry
/// @notice Encryption keys of all participants and the accreditation of providers and researchers.
/// Accreditation is plain OpenZeppelin AccessControl: `grantRole` / `revokeRole` by an account
/// holding `ACCREDITOR_ROLE`, which emits `RoleGranted` / `RoleRevoked`.
contract ParticipantRegistry is IParticipantRegistry, AccessControl {
    /// Accredited providers: may add records for any registered patient and take emergency access.
    bytes32 public constant PROVIDER_ROLE = keccak256("PROVIDER");
    /// Accredited researchers: may ask patients for access.
    bytes32 public constant RESEARCHER_ROLE = keccak256("RESEARCHER");
    /// Grants and revokes the provider and researcher roles.
    bytes32 public constant ACCREDITOR_ROLE = keccak256("ACCREDITOR");

    /// The suite tags of an encryption key (its first byte) and the length of the public key
    /// after the tag (docs/FORMATS.md, "Public keys and HPKE suites").
    uint8 public constant SUITE_X25519 = 1;
    uint256 public constant X25519_KEY_LENGTH = 32;
    uint8 public constant SUITE_MLKEM768_X25519 = 2;
    /// An ML-KEM-768 encapsulation key (1184 bytes), then an X25519 key.
    uint256 public constant MLKEM768_X25519_KEY_LENGTH = 1216;

    mapping(address account => bytes32 keyHash) private _keyHashes;

    /// @param admin Holds the admin role (manages accreditors) and is the first accreditor.
    constructor(address admin) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(ACCREDITOR_ROLE, admin);
        _setRoleAdmin(PROVIDER_ROLE, ACCREDITOR_ROLE);
        _setRoleAdmin(RESEARCHER_ROLE, ACCREDITOR_ROLE);
    }

    /// @inheritdoc IParticipantRegistry
    function register(bytes calldata encryptionKey) external {
        if (encryptionKey.length == 0) revert ParticipantRegistryEmptyKey();
        uint8 suite = uint8(encryptionKey[0]);
        if (suite != SUITE_X25519 && suite != SUITE_MLKEM768_X25519) revert ParticipantRegistryUnknownSuite(suite);
        uint256 expected = suite == SUITE_X25519 ? X25519_KEY_LENGTH : MLKEM768_X25519_KEY_LENGTH;
        // A key of the wrong length would make every wrap for this participant fail, and with it
        // every record write that includes them as a reader.
        uint256 length = encryptionKey.length - 1;
        if (length != expected) revert ParticipantRegistryInvalidKeyLength(suite, length, expected);
        bytes32 keyHash = keccak256(encryptionKey);
        _keyHashes[msg.sender] = keyHash;
        emit ParticipantRegistered(msg.sender, keyHash, encryptionKey);
    }

    /// @inheritdoc IParticipantRegistry
    function encryptionKeyHash(address account) external view returns (bytes32) {
        return _keyHashes[account];
    }

    /// @inheritdoc IParticipantRegistry
    function isRegistered(address account) external view returns (bool) {
        return _keyHashes[account] != bytes32(0);
    }

    /// @inheritdoc IParticipantRegistry
    function isProvider(address account) external view returns (bool) {
        return hasRole(PROVIDER_ROLE, account);
    }

    /// @inheritdoc IParticipantRegistry
    function isResearcher(address account) external view returns (bool) {
        return hasRole(RESEARCHER_ROLE, account);
    }
}
