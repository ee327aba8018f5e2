"""meshchaos.istio."""
