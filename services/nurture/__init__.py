"""Nurture: everything outbound and over time — rep webhooks, sequences, SLA."""
