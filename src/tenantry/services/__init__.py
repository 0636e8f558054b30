"""Domain rules, one module per domain. No HTTP, console or CLI imports in here."""
