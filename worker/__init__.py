"""Runs trials: the runner (one trial's process), the Celery app, and worker slots."""
