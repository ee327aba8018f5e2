"""meshchaos.oracle."""
