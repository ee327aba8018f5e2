"""Loads the suite's fixtures; the plugin itself (options, markers) is meshchaos.pytest_plugin."""

pytest_plugins = ["fixtures.mesh", "fixtures.policy", "fixtures.load", "fixtures.record"]
