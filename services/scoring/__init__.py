"""Scoring: classification of every lead (score, temperature, lifecycle stage) with its explanation."""
