// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Participant registry
/// @notice Every participant (patient, provider, researcher) publishes the public key that
/// record keys are wrapped to. Accreditors grant the provider and researcher roles.
/// @dev Only the key's hash is stored; the key itself travels in calldata and the
/// `ParticipantRegistered` event, where clients read it and check it against the hash.
interface IParticipantRegistry {
    /// @notice `account` published `encryptionKey` (HPKE public key, suite-tagged by the client).
    event ParticipantRegistered(address indexed account, bytes32 indexed keyHash, bytes encryptionKey);

    /// @notice The key is empty or longer than the largest supported HPKE public key.
    error ParticipantRegistryInvalidKey(uint256 length);

    /// @notice Publishes (or replaces) the caller's encryption public key.
    function register(bytes calldata encryptionKey) external;

    /// @notice keccak256 of the account's current encryption key, or zero if unregistered.
    function encryptionKeyHash(address account) external view returns (bytes32);

    /// @notice Whether `account` has published an encryption key.
    function isRegistered(address account) external view returns (bool);

    /// @notice Whether `account` is an accredited provider (may write records for patients).
    function isProvider(address account) external view returns (bool);

    /// @notice Whether `account` is an accredited researcher.
    function isResearcher(address account) external view returns (bool);
}
