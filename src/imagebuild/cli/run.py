"""CLI: run commands (see the library module for the logic)."""
