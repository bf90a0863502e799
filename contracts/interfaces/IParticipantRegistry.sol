// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Participant registry
/// @notice Every participant (patient, provider, researcher) publishes the public key that
/// record keys are wrapped to. Accreditors grant the provider and researcher roles.
/// @dev Only the key's hash is stored; the key itself travels in calldata and the
/// `ParticipantRegistered` event, where clients read it and check it against the hash.
interface IParticipantRegistry {
    /// @notice `account` published `encryptionKey` (HPKE public key, suite-tagged by the client).
    /// @param account The participant.
    /// @param keyHash keccak256 of `encryptionKey`, what the registry stores.
    /// @param encryptionKey The key itself.
    event ParticipantRegistered(address indexed account, bytes32 indexed keyHash, bytes encryptionKey);

    /// @notice The key is empty: it has no suite tag.
    error ParticipantRegistryEmptyKey();
    /// @notice The key's first byte names no supported suite (1 X25519, 2 ML-KEM-768 + X25519).
    /// @param tag The key's first byte.
    error ParticipantRegistryUnknownSuite(uint8 tag);
    /// @notice The public key after the suite tag is not as long as the suite's keys.
    /// @param suite The key's suite tag.
    /// @param length The length after the tag, in bytes.
    /// @param expected The suite's public key length: 32 (X25519) or 1216 (ML-KEM-768 + X25519).
    error ParticipantRegistryInvalidKeyLength(uint8 suite, uint256 length, uint256 expected);

    /// @notice Publishes (or replaces) the caller's encryption public key.
    /// @param encryptionKey The suite-tagged HPKE public key: tag 1 and a 32-byte X25519 key, or
    /// tag 2 and a 1216-byte ML-KEM-768 + X25519 key.
    function register(bytes calldata encryptionKey) external;

    /// @notice keccak256 of the account's current encryption key, or zero if unregistered.
    /// @param account The participant.
    /// @return The key's hash.
    function encryptionKeyHash(address account) external view returns (bytes32);

    /// @notice Whether `account` has published an encryption key.
    /// @param account The account.
    /// @return True once it registered.
    function isRegistered(address account) external view returns (bool);

    /// @notice Whether `account` is an accredited provider (may write records for patients).
    /// @param account The account.
    /// @return True while it holds the provider role.
    function isProvider(address account) external view returns (bool);

    /// @notice Whether `account` is an accredited researcher.
    /// @param account The account.
    /// @return True while it holds the researcher role.
    function isResearcher(address account) external view returns (bool);
}
