"""meshchaos.stats."""
