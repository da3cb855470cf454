"""Online experiments: configuration, sticky assignment, interleaving, analysis and off-policy evaluation."""
