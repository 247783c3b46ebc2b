"""Event stores behind one port: SQLite (embedded) and Elasticsearch; the shared query model."""
