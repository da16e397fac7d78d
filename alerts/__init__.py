"""The alert side and the operator surface of socflow.

Alert model (ECS documents), the Elasticsearch indexer and templates, and the ``socflow``
command line. This is the outermost layer: it may import ``detectors`` and ``ingest``,
never the other way round.
"""
