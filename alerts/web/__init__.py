"""The analysts' web console: Jinja2 templates, static files and the page routes."""
