"""The patient's care team: the providers it lets write records of chosen categories.

The chain keeps the team (``RecordRegistry.setWriter``); ``Records.add_record`` is refused for
a writer outside it or outside its categories.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eth_utils.address import to_checksum_address

from medvault.client.core import Core
from medvault.model import Category, categories_of, scope_mask

if TYPE_CHECKING:
    from medvault.accounts import Wallet
    from medvault.chain import TxResult

__all__ = ["CareTeam"]


class CareTeam(Core):
    def set_writer(self, patient: Wallet, writer: str, categories: frozenset[Category]) -> TxResult:
        """The patient lets ``writer`` (an accredited provider) add records of ``categories``."""
        fn = self.chain.records.functions.setWriter(to_checksum_address(writer), scope_mask(categories))
        return self.chain.transact(patient, fn, f"allow {writer} to write records of {patient.address}")

    def remove_writer(self, patient: Wallet, writer: str) -> TxResult:
        fn = self.chain.records.functions.removeWriter(to_checksum_address(writer))
        return self.chain.transact(patient, fn, f"stop {writer} writing records of {patient.address}")

    def writers(self, patient: str) -> dict[str, frozenset[Category]]:
        """The patient's care team as the chain holds it now: each writer and its categories."""
        patient = to_checksum_address(patient)
        named = dict.fromkeys(
            e["args"]["writer"] for e in self.chain.events("RecordRegistry", "WriterSet", patient=patient)
        )
        team: dict[str, frozenset[Category]] = {}
        for writer in named:
            scopes, _ = self.chain.call(self.chain.records.functions.writerOf(patient, writer), "writerOf")
            if scopes:
                team[writer] = categories_of(scopes)
        return team
