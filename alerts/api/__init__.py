"""The console's JSON API and the process that serves it with the web pages (``app``)."""
