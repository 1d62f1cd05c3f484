"""The ``mmbot`` command line: one module per command; what they share is in :mod:`mmbot.cli.common`."""
