"""Training runs, reward models and evaluations (built on curated datasets)."""
