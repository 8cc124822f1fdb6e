"""Plots and reports over plain result files (Parquet, JSON); ``analysis/`` scripts are thin drivers."""
