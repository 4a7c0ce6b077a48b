"""Local helper services (a real Neo4j server started with ``java``, no Docker)."""
