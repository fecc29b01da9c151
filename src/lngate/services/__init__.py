"""Use cases: plain async functions with their collaborators passed in as keyword arguments."""
