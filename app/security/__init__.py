"""Checks on what a study may make a worker run: environment names and working folders."""
