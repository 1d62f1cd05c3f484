"""Settings: the one validated configuration of a run (pydantic v2)."""
