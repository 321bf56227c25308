"""``hpsearch``, the command line: one module per part (``main``: the service and the job
commands; ``datasets``, ``keys``: their sub-apps; ``status``; ``demo``), sharing ``common``
(consoles, the URL option, the API client), ``output`` (--json/--csv) and the renderings in
``console`` and ``trial_view``. Nothing here imports TensorFlow or the worker package."""

from api.cli.main import app

__all__ = ["app"]
