"""``medvault verify --patient`` of a long log on a seeded node (``verify_200_s``)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from medvault.dev.bench.common import Say, quiet, summary
from medvault.verify import verify_patient

if TYPE_CHECKING:
    from medvault.client import Medvault


def measure_verify(mv: Medvault, patient: str, runs: int = 3, *, say: Say = quiet) -> dict[str, Any]:
    """Seconds of ``runs`` whole verifications of ``patient`` (chain, every object in IPFS,
    pins); every run must find nothing wrong, or the time is not the time of a verification."""
    seconds = []
    for run in range(runs):
        started = time.perf_counter()
        report = verify_patient(mv, patient)
        seconds.append(time.perf_counter() - started)
        if not report.ok:
            raise RuntimeError(f"verify found {report.tally()} on a freshly seeded patient")
        say(f"verify {run + 1} of {runs}: {report.count} records in {seconds[-1]:.2f} s")
    return {"records": report.count, "seconds": summary(seconds)}
