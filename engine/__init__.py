"""The data engine's domain: ORM models and the functions that change them (the write path)."""
