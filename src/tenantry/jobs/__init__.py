"""Background jobs: outbox delivery (and, later, purge and audit sealing)."""
