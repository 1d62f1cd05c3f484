"""The runtime: one run lifecycle (:class:`~mmbot.runtime.node.Node`) for every mode, its ports and observers."""
