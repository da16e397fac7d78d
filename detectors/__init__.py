"""The detection core (Sigma rules, correlations, anomaly detectors) and its Flink shell.

Everything here except ``detectors.flink`` is plain Python with no pyflink import: time and
ids are arguments, state is plain dataclasses. ``detectors.flink`` only wires the core into
Flink operators.
"""
