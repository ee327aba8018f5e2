"""meshchaos.mesh.kube."""
