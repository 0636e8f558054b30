"""Pure security helpers: no database, no HTTP."""
