"""Collectors, parsers, normalization to the event schema, asset enrichment and transport.

This package is the bottom layer of socflow: it imports only the standard library and its
own dependencies, never ``detectors`` or ``alerts``.
"""
