// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IConsentManager} from "./interfaces/IConsentManager.sol";

/// @title ConsentManager
/// @notice Patients' grants of read access; see {IConsentManager}.
contract ConsentManager is IConsentManager {
    mapping(address patient => mapping(address grantee => uint64 validUntil)) private _grants;

    /// @inheritdoc IConsentManager
    function grant(address grantee, uint64 validUntil, bytes calldata keysCid) external {
        if (grantee == address(0) || grantee == msg.sender) revert ConsentManagerInvalidGrantee(grantee);
        if (validUntil <= block.timestamp) revert ConsentManagerInvalidExpiry(validUntil, block.timestamp);
        _grants[msg.sender][grantee] = validUntil;
        emit AccessGranted(msg.sender, grantee, validUntil, keysCid);
    }

    /// @inheritdoc IConsentManager
    function revoke(address grantee) external {
        if (_grants[msg.sender][grantee] <= block.timestamp) {
            revert ConsentManagerNoActiveGrant(msg.sender, grantee);
        }
        delete _grants[msg.sender][grantee];
        emit AccessRevoked(msg.sender, grantee);
    }

    /// @inheritdoc IConsentManager
    function canRead(address patient, address grantee) external view returns (bool) {
        return patient == grantee || _grants[patient][grantee] > block.timestamp;
    }

    /// @inheritdoc IConsentManager
    function grantOf(address patient, address grantee) external view returns (uint64) {
        return _grants[patient][grantee];
    }
}
