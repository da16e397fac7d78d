"""Rule-set tooling over the Sigma and correlation engines: test, lint, ATT&CK data, coverage.

Pure code (files in, reports out): ``alerts.commands.rules`` wraps it as ``socflow rules ...``
and the pytest suite calls the same functions, so a rule passes in CI exactly when it passes
for the admin at the terminal.
"""
