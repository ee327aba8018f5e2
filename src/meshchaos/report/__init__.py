"""meshchaos.report."""
