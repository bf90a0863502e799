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

    /// Room for the largest HPKE suite we support: ML-KEM-768 + X25519 (1216 bytes) plus a tag.
    uint256 public constant MAX_KEY_LENGTH = 1280;

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
        if (encryptionKey.length == 0 || encryptionKey.length > MAX_KEY_LENGTH) {
            revert ParticipantRegistryInvalidKey(encryptionKey.length);
        }
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
