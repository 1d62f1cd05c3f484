"""Market data: the L2 book (pure), capture files and feeds (edge)."""
