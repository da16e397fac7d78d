"""The Flink shell around the detection core: the only place that imports pyflink."""
