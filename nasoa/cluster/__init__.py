"""The Ray adapters: the Ray session helper, the archive actor, the work queue, the Ray Train pool, the Serve app.

Only this package and :mod:`nasoa.jobs` import Ray; everything they run (training, evaluation, the regime
generator, the adaptation service) is plain code from the other packages, testable without a cluster.
"""
