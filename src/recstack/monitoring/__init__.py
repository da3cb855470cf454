"""Monitoring: drift between a reference and a current window, and the promotion gate."""
