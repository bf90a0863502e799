"""Key release: one record key from keepers, t = 2 of 3, all up, on loopback (``release_ms``)."""

from __future__ import annotations

from typing import Any

from medvault.client.consent_sig import ConsentChange
from medvault.dev.bench.common import Say, bench_wallet, fresh_node, quiet, timed
from medvault.dev.node import free_port
from medvault.keeper import KeeperService
from medvault.model import ALL_CATEGORIES, Category, Purpose, Role

DAY = 86_400


def measure_release(runs: int = 20, *, say: Say = quiet) -> dict[str, Any]:
    """Milliseconds to obtain one record key from the keepers (signed requests to every keeper,
    their on-chain checks, unwrap and combine), and the whole read through them (chain check,
    fetch, verify, release, decrypt): each a ``summary`` of ``runs`` samples. The floor is about
    5-8 ms (one batched round trip per keeper, HPKE and Shamir), so no baseline is run."""
    names = ("patient", "provider", "reader", "keeper-1", "keeper-2", "keeper-3")
    wallets = {n: bench_wallet(f"release {n}") for n in names}
    with fresh_node(fund=tuple(w.address for w in wallets.values())) as node:
        keepers: list[KeeperService] = []
        try:
            mv = node.mv
            for name in names:
                mv.register(wallets[name])
            mv.accredit(bench_wallet("admin"), wallets["provider"].address, Role.PROVIDER)
            for name in names[3:]:
                port = free_port()
                url = f"http://127.0.0.1:{port}"
                keepers.append(
                    KeeperService(wallets[name], node.client(), node.home / name, port=port, announce=url).start()
                )
            patient, reader = wallets["patient"], wallets["reader"]
            mv.set_keepers(patient, [str(k.address) for k in keepers], 2)
            mv.set_writer(patient, wallets["provider"].address, frozenset(Category))
            pointer = mv.add_record(
                wallets["provider"], patient.address, b'{"resourceType":"Observation"}', Category.LABORATORY
            ).pointer
            # A grant that shares no keys: every key the reader gets comes from the keepers.
            now = mv.now()
            grant = {
                "patient": patient.address,
                "grantee": reader.address,
                "scopes": ALL_CATEGORIES,
                "purpose": int(Purpose.TREAT),
                "validFrom": now,
                "validUntil": now + DAY,
                "keysCid": b"",
            }
            mv.submit(patient, ConsentChange("Grant", grant))
            say(f"timing {runs} key releases and {runs} whole reads")
            mv.release_key(reader, pointer)  # the first opens the connections
            return {
                "runs": runs,
                "release_ms": timed(runs, lambda: mv.release_key(reader, pointer)),
                "read_ms": timed(runs, lambda: mv.read_record(reader, patient.address, pointer.index)),
            }
        finally:
            for keeper in keepers:
                keeper.stop()
