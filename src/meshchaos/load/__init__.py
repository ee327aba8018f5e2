"""meshchaos.load."""
