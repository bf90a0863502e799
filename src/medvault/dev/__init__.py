"""Development tooling, not library API: local nodes, anvil helpers, synthetic FHIR data,
seeding, benchmarks and the demo. The library never imports this package; the CLI does, lazily.
"""
