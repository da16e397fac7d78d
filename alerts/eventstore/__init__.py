"""The event store: every normalized event the collectors commit, durable and searchable in Elasticsearch.

- ``template``: the index templates of the daily event and dead-letter indices (core features only);
- ``documents``: a spool event as the document stored, guarded against hostile shapes (pure);
- ``position``: what the writer has acknowledged, and the consumed list spool pruning reads;
- ``writer``: the resumable writer behind ``socflow index events [--follow]``.
"""
