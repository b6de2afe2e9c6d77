"""Ingest's HTTP routes, one module per channel; each route is thin."""

from services.ingest.api import chatbots, forms, history, imports, keys, leads, sources

routers = [
    sources.router,
    leads.router,
    history.router,
    forms.router,
    chatbots.router,
    imports.router,
    keys.router,
]
