"""meshchaos.mesh.local."""
