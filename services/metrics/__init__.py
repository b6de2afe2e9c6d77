"""Metrics: read models built from every topic — funnel, conversion, speed-to-lead, CAC, LTV."""
