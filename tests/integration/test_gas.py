"""Gas per operation against the committed snapshot and the budgets.

The figures are deterministic (fixed keys, times and pointers on a fresh anvil), so any change
that costs or saves gas fails here until `gas-snapshot.json` is updated with
`medvault bench gas --json > gas-snapshot.json`, which makes the change visible in review.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medvault.dev.gas import BUDGETS, measure_gas

pytestmark = pytest.mark.integration

SNAPSHOT = Path(__file__).resolve().parents[2] / "gas-snapshot.json"


@pytest.fixture(scope="module")
def gas() -> dict[str, int]:
    return measure_gas()


def test_gas_matches_the_committed_snapshot(gas: dict[str, int]) -> None:
    assert gas == json.loads(SNAPSHOT.read_text())


@pytest.mark.parametrize("case", [case for case, budget in BUDGETS.items() if budget])
def test_gas_is_within_budget(gas: dict[str, int], case: str) -> None:
    budget = BUDGETS[case]
    assert budget is not None
    assert gas[case] <= budget, f"{case} uses {gas[case]:,} gas, over its budget of {budget:,}"
