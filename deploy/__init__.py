"""Scripts that fetch, start, health-check and stop the services socflow runs on.

Elasticsearch and Kafka come from Maven Central (pinned), Flink is PyFlink's bundled runtime.
Nothing here imports the detection code; the ``socflow stack`` command drives these.
"""
