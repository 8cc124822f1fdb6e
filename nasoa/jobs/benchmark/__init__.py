"""The benchmark job: regime quality, zoo efficiency, search efficiency and serving, side by side on one zoo."""
