// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Categories} from "../../contracts/libraries/Categories.sol";
import {Base} from "../utils/Base.sol";

/// @notice The shared record categories against the documented six (Base writes them out).
contract CategoriesTest is Base {
    function test_constants_MatchTheSixCategories() public pure {
        assertEq(Categories.COUNT, CATEGORY_COUNT);
        assertEq(Categories.ALL, ALL);
        assertEq(NOTES, CATEGORY_COUNT - 1);
    }

    function testFuzz_isValid_BelowCount(uint8 category) public pure {
        assertEq(Categories.isValid(category), category < CATEGORY_COUNT);
    }

    function test_isValidScope_Bounds() public pure {
        assertFalse(Categories.isValidScope(0), "empty");
        assertTrue(Categories.isValidScope(uint8(1) << LABORATORY), "laboratory");
        assertTrue(Categories.isValidScope(uint8(1) << NOTES), "notes");
        assertTrue(Categories.isValidScope(ALL), "all");
        assertFalse(Categories.isValidScope(0x40), "bit 6");
        assertFalse(Categories.isValidScope(0x80 | ALL), "bit 7");
    }

    function testFuzz_isValidScope_NonEmptyAndOnlyDefinedBits(uint8 scopes) public pure {
        assertEq(Categories.isValidScope(scopes), scopes != 0 && scopes <= ALL);
    }

    function testFuzz_contains_IffBitSet(uint8 scopes, uint8 category) public pure {
        assertEq(Categories.contains(scopes, category), category < 8 && (scopes >> category) & 1 == 1);
    }
}
