// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title IEmergencyAccess
/// @notice What the record log asks the consent contract about break-glass access: a provider
/// inside a live emergency may append records to the patient's log, in the categories it holds.
interface IEmergencyAccess {
    /// @notice The categories of `provider`'s live emergency access to `patient`'s records:
    /// zero unless the access was taken under the patient's policy, its window holds now, it was
    /// not revoked or blocked, and `provider` is still an accredited provider.
    function emergencyScopes(address patient, address provider) external view returns (uint8 scopes);
}
