"""Exits at import, for the import error test: the process must not."""
import sys

sys.exit(2)
