"""Seeding a development deployment with synthetic patients, providers, researchers and consent.

``medvault seed --patients N --records-per-patient R --seed S`` (and ``ape run seed``) fills a
deployment on a local anvil with realistic, entirely synthetic data:

* Accounts, derived from the seed value and held in memory only (never written to disk): the
  private key of the i-th account of a role is keccak256("medvault seed <seed> <role> <i>").
  ``N // 50 + 1`` providers, ``N // 200 + 1`` researchers and N patients. Their encryption
  keys are derived from that (public) key (``medvault.dev.wallets``: dev only, so a resumed
  run wraps for the key it registered; real accounts get random keys). Every account is
  funded with ``anvil_setBalance`` and registers its encryption key; providers and researchers
  are accredited by the deployment's admin (impersonated on anvil unless an admin wallet is
  given).
* Per patient, R FHIR R4 records validated with ``fhir.resources``: record 0 is the Patient
  resource, the others come from ``medvault.dev.synthetic.synthetic_records`` (Observations with LOINC
  codes, DiagnosticReports, Conditions, MedicationRequests, Immunizations,
  AllergyIntolerances). Each patient is assigned one provider, puts it on its care team
  (``setWriter``, every category, sent in the same pipeline as the grants), and that provider
  authors all their records in a single ``addRecords`` transaction. Each record is sealed as
  ``Medvault.add_record`` seals it (AES-256-GCM bound to the patient, its author and the
  author's sequence number); its key is wrapped for the patient, the author and every grantee
  whose planned grant covers its category. The wraps of one patient's batch share one key
  bundle (each wrap names its record by author and sequence number), so a batch costs R + 1
  IPFS objects.
* Consent, in fixed proportions: round(30 %) of the patients grant one provider (TREAT, one
  year) access to two to five categories; round(10 %) of the patients (at least one) get a
  research request (HRESCH, 180 days, laboratory / conditions / medications) from one of the
  researchers; of those requests, round(70 %) are approved, round(15 %) denied and the rest left
  pending. Which patients, providers, researchers and scopes is drawn from the seed.

Grants and decisions are made before the records are written, so records are wrapped for the
grantees directly and no key-sharing bundles are needed.

The whole plan is a function of (seed, N, R). Each phase first reads what the chain already
holds (registered? accredited? grant present? request made or decided? how many records?) and
does only what is missing, so a run killed at any point (SIGKILL included) and started again
completes with no duplicate records, grants or requests and nothing lost. A patient's records
land all at once (one transaction); if a log holds some but not all, seeding continues from its
count. Objects added to IPFS by a killed run and never referenced on chain stay pinned until
``medvault gc --unpin`` (``medvault.orphans``) unpins them.

Speed: reads and transactions go through ``medvault.chain.pipeline``: calldata encoded from
the ABI once per function, transactions signed locally with explicit nonces and a fixed gas
limit per kind, sent as JSON-RPC batches with at most ``MAX_IN_FLIGHT`` unmined (anvil's
automine strands ready transactions when many more wait; an ``evm_mine`` nudges it when
nothing is mined), and their receipts read block by block (every status is checked; a
failure stops the run with the action and transaction named, ``SeedError``). The records are
sealed on worker processes from the start of the run, while the accounts and consent go out
(``medvault.dev.seed.seal``), and the files of ``CHUNK_PATIENTS`` patients go to IPFS in one
request as soon as they are sealed, wrapped in one directory that one recursive pin keeps
(``IpfsClient.add_wrapped``: a pin per file costs ten times the add).
"""

from medvault.dev.seed.plan import PatientPlan, SeedPlan, plan_seed
from medvault.dev.seed.run import (
    GAS,
    Progress,
    SealedChunks,
    SeedReport,
    chunk_files,
    record_feed,
    run_seed,
    seal_job,
)
from medvault.dev.seed.state import seed_state
from medvault.errors import SeedError

__all__ = [
    "GAS",
    "PatientPlan",
    "Progress",
    "SealedChunks",
    "SeedError",
    "SeedPlan",
    "SeedReport",
    "chunk_files",
    "plan_seed",
    "record_feed",
    "run_seed",
    "seal_job",
    "seed_state",
]
