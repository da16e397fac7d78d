"""One module per report section; each returns a dict with ``status`` and its ``source_queries``."""
