"""Ingest's HTTP routes, one module per channel; each route is thin."""

from services.ingest.api import chatbots, forms, history, imports, keys, leads, preflights, sources

# Busiest first (matched in this order): every lead's POST, then the keys the consumers ask for.
routers = [
    leads.router,
    keys.router,
    sources.router,
    history.router,
    forms.router,
    chatbots.router,
    imports.router,
    preflights.router,
]
