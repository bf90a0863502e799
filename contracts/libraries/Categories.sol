// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Categories
/// @notice The record categories, shared by {RecordRegistry} (a record's category) and
/// {ConsentManager} (a grant's scope). A category is a number below `COUNT`:
/// 0 laboratory, 1 imaging, 2 medications, 3 conditions, 4 immunizations, 5 notes.
/// A scope is a bitmask of categories: bit `c` set means category `c` is in scope.
library Categories {
    /// @notice The number of record categories.
    uint8 internal constant COUNT = 6;
    /// @notice The scope holding every category: bits 0 .. COUNT - 1.
    uint8 internal constant ALL = uint8((1 << COUNT) - 1);

    /// @notice Whether `category` is one of the defined categories.
    /// @param category A category number.
    /// @return True if `category` is below `COUNT`.
    function isValid(uint8 category) internal pure returns (bool) {
        return category < COUNT;
    }

    /// @notice Whether `scopes` names at least one category and only defined ones.
    /// @param scopes A bitmask of categories.
    /// @return True if `scopes` is not zero and has no bit outside `ALL`.
    function isValidScope(uint8 scopes) internal pure returns (bool) {
        return scopes != 0 && scopes & ~ALL == 0;
    }

    /// @notice Whether `scopes` includes `category`.
    /// @param scopes A bitmask of categories.
    /// @param category A category number; one of 8 or above is in no scope.
    /// @return True if bit `category` of `scopes` is set.
    function contains(uint8 scopes, uint8 category) internal pure returns (bool) {
        return (scopes >> category) & 1 == 1;
    }
}
