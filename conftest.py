"""Loads this repository's catalogue fixtures; the suite's own come from the meshchaos plugin."""

pytest_plugins = ["fixtures.catalogue"]
