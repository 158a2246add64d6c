"""CLI: push commands (see the library module for the logic)."""
