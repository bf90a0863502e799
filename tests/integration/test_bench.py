"""The benchmark code runs, on tiny sizes, against real anvil and Kubo: every measurement gives
its figures with their spread and baselines. Figures are printed by ``make bench``, never
asserted on here (the suite checks correctness, not time)."""

from __future__ import annotations

from typing import Any

import pytest

from medvault.dev.bench import (
    measure_fetch,
    measure_on_seeded_node,
    measure_queries,
    measure_release,
    measure_seeding,
)

pytestmark = pytest.mark.integration

SPREAD = {"n", "median", "min", "max", "p10", "p90"}


def _is_spread(s: dict[str, Any], n: int) -> bool:
    return set(s) == SPREAD and s["n"] == n and 0 < s["min"] <= s["median"] <= s["max"]


def test_release_gives_each_sample_of_a_release_and_of_a_read() -> None:
    figures = measure_release(runs=2)
    assert _is_spread(figures["release_ms"], 2)
    assert _is_spread(figures["read_ms"], 2)


def test_fetch_gives_the_read_and_its_data_floor_piece_by_piece() -> None:
    f = measure_fetch(size=4096, runs=2)
    assert _is_spread(f["read_ms"], 2)
    assert set(f["floor_pieces_ms"]) == {"cat", "cid", "sha256", "aes_gcm"}
    assert f["floor_ms"] == pytest.approx(sum(p["median"] for p in f["floor_pieces_ms"].values()), abs=0.01)
    assert f["seal_mb_s"] > 0
    assert f["raw_aes_gcm_mb_s"] > 0


def test_a_seeded_node_gives_index_sync_verify_and_read_growth() -> None:
    r = measure_on_seeded_node(3, 2, runs=2, long_log=5)
    sync = r["index_sync"]
    # 3 patients' and 1 long patient's records, registrations, grants...: all indexed, each run
    assert sync["events"] > 4
    assert _is_spread(sync["seconds"], 2)
    assert sync["events_per_s"] > 0
    assert r["verify"]["records"] == 5
    assert _is_spread(r["verify"]["seconds"], 2)
    reads = r["reads"]
    assert (reads["short"]["records"], reads["long"]["records"]) == (2, 5)
    assert _is_spread(reads["long"]["read_ms"], 20)
    assert reads["ratio"] > 0


def test_seeding_gives_the_seed_against_each_part_alone() -> None:
    r = measure_seeding(2, 2, runs=1)
    assert r["seed_2x2_s"] > 0
    assert set(r["baseline"]) == {"sealing", "ipfs", "chain"}
    medians = [b["median"] for b in r["baseline"].values()]
    # Every figure is printed rounded (to 0.01 s at most), which at this size moves the ratio by
    # more than a few percent: it must lie within what the rounded figures allow.
    seed, parts, half = r["seed_2x2_s"], sum(medians), 0.005
    assert (
        (seed - half) / (parts + 3 * half) - half
        <= r["seed_vs_parts_ratio"]
        <= (seed + half) / (parts - 3 * half) + half
    )
    assert r["seed_vs_largest_part_ratio"] >= r["seed_vs_parts_ratio"]


def test_queries_give_each_query_type_and_the_max_of_their_medians() -> None:
    r = measure_queries(5, 2)
    assert r["records"] == 10
    assert r["first_sync"]["events"] > 10
    queries = r["queries_ms"]
    assert set(queries) == {"records_of", "readable_by", "readers_of", "requests_approved", "history"}
    assert queries["records_of"]["rows"] == 2  # the patient with the longest history has its 2 records
    assert r["max_of_medians_ms"] == max(q["median"] for q in queries.values())
