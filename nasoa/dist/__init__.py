"""The thin Ray layer: actors that hold shared state and an evaluator that runs candidates on Ray Train.

Nothing outside this package (and ``launch/``) imports Ray, so the space, the search and the archive
are testable without a cluster.
"""
