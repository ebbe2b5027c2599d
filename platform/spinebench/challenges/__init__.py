"""Challenges, phases and registrations; YAML bundles that set a challenge up."""
