// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IKeeperDirectory} from "./interfaces/IKeeperDirectory.sol";

/// @title KeeperDirectory
/// @notice Patients' keeper sets, keeper endpoints and key-release receipts; see {IKeeperDirectory}.
contract KeeperDirectory is IKeeperDirectory {
    /// Keeper sets stay small: each share is a wrap in every record's key bundle.
    uint256 public constant MAX_KEEPERS = 16;
    uint256 public constant MAX_URL_LENGTH = 256;

    struct KeeperSet {
        address[] keepers;
        uint8 threshold;
    }

    mapping(address patient => KeeperSet) private _sets;

    /// @inheritdoc IKeeperDirectory
    function setKeepers(address[] calldata keepers, uint8 threshold) external {
        uint256 count = keepers.length;
        if (count == 0 ? threshold != 0 : (count > MAX_KEEPERS || threshold == 0 || threshold > count)) {
            revert KeeperDirectoryInvalidKeepers(count, threshold);
        }
        for (uint256 i; i < count; ++i) {
            if (keepers[i] == address(0)) revert KeeperDirectoryInvalidKeepers(count, threshold);
            for (uint256 j; j < i; ++j) {
                if (keepers[i] == keepers[j]) revert KeeperDirectoryInvalidKeepers(count, threshold);
            }
        }
        _sets[msg.sender] = KeeperSet(keepers, threshold);
        emit KeepersChosen(msg.sender, keepers, threshold);
    }

    /// @inheritdoc IKeeperDirectory
    function announce(string calldata url) external {
        if (bytes(url).length == 0 || bytes(url).length > MAX_URL_LENGTH) revert KeeperDirectoryInvalidUrl();
        emit KeeperAnnounced(msg.sender, url);
    }

    /// @inheritdoc IKeeperDirectory
    function recordReleases(Release[] calldata releases) external {
        for (uint256 i; i < releases.length; ++i) {
            Release calldata r = releases[i];
            if (!_isKeeper(r.patient, msg.sender)) revert KeeperDirectoryNotAKeeper(msg.sender, r.patient);
            emit KeyReleased(r.patient, r.grantee, msg.sender, r.index, r.releasedAt, r.releaseId);
        }
    }

    /// @inheritdoc IKeeperDirectory
    function keepersOf(address patient) external view returns (address[] memory keepers, uint8 threshold) {
        KeeperSet storage set = _sets[patient];
        return (set.keepers, set.threshold);
    }

    function _isKeeper(address patient, address keeper) private view returns (bool) {
        address[] storage keepers = _sets[patient].keepers;
        for (uint256 i; i < keepers.length; ++i) {
            if (keepers[i] == keeper) return true;
        }
        return false;
    }
}
