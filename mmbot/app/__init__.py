"""Composition root: settings, wiring, runners, signals and the CLI."""
