"""Adapters that run the benchmark's simple skewed market maker inside each peer.

Each script runs in the peer's own venv (.bench/venv-*), never imported by mmbot.
"""
