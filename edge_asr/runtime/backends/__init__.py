"""Backends run a model on feature batches behind one interface: `run(x) -> outputs`."""
