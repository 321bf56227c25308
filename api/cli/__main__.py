"""``python -m api.cli``: the ``hpsearch`` command (the demo starts its children so)."""

from api.cli.main import app

app()
