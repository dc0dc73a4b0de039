"""The HTTP face: the read-only JSON API, Atom feeds per tag, the search page, /healthz and /metrics.

`newswatch serve` (worker.cli.serve) runs `app.create_app` on uvicorn.
"""
