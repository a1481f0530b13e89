"""Families of `pvc` commands kept apart from pvc/cli.py, which adds their apps to its own."""
