"""Fails at import, for the import error test."""
raise RuntimeError("broken at import")
