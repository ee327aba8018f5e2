"""pytester for the plugin's own tests; the fake mesh lives in fake_mesh.py."""

# pytester is loaded for the whole project with ``-p pytester`` (pyproject addopts):
# pytest refuses ``pytest_plugins`` in a conftest below the rootdir.
