"""CLI: pod commands (see the library module for the logic)."""
