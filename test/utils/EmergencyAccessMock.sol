// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IEmergencyAccess} from "../../contracts/interfaces/IEmergencyAccess.sol";

/// @notice A stand-in for the consent contract's break-glass answer: the test sets, per
/// (patient, provider), the categories of a live emergency access, or makes every ask revert.
contract EmergencyAccessMock is IEmergencyAccess {
    mapping(address patient => mapping(address provider => uint8 scopes)) public scopesOf;
    bool public broken;

    function setScopes(address patient, address provider, uint8 scopes) external {
        scopesOf[patient][provider] = scopes;
    }

    function setBroken(bool broken_) external {
        broken = broken_;
    }

    function emergencyScopes(address patient, address provider) external view returns (uint8) {
        require(!broken, "consent unavailable");
        return scopesOf[patient][provider];
    }
}
