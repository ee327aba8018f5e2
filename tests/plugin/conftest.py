"""pytester for the plugin's own tests; the fake mesh lives in fake_mesh.py."""

pytest_plugins = ["pytester"]
