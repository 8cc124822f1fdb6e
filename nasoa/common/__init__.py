"""What several rooms share: typed settings, atomic Parquet / JSON-lines I/O, Pareto maths, the registry shape."""
