"""Submissions, evaluations, the status state machine and the scoring tasks."""
