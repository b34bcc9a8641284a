"""The store: tables, migrations and the named queries everything else calls."""
