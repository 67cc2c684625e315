"""Shim so Beam's --setup_file can ship imagesr to Dataflow workers (config is in pyproject.toml)."""
from setuptools import setup

setup()
