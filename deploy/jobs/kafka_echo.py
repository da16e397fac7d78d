"""Kafka check job: read a topic from the beginning to its current end, upper-case each value
in Python, write the lines to files.

``flink run -py deploy/jobs/kafka_echo.py BOOTSTRAP TOPIC OUTPUT_DIR`` with the Kafka connector
jar on ``pipeline.jars`` (``deploy.flink.submit_python_job(..., jars=kafka_connector_jars(s))``).
It proves the connector jar matches the cluster's Flink and that a bounded KafkaSource works.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> None:
    from pyflink.common import Encoder, Types, WatermarkStrategy
    from pyflink.common.serialization import SimpleStringSchema
    from pyflink.datastream import RuntimeExecutionMode, StreamExecutionEnvironment
    from pyflink.datastream.connectors.file_system import FileSink
    from pyflink.datastream.connectors.kafka import KafkaOffsetsInitializer, KafkaSource

    bootstrap, topic, output = argv[0], argv[1], argv[2]
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_runtime_mode(RuntimeExecutionMode.BATCH)
    source = (KafkaSource.builder()
              .set_bootstrap_servers(bootstrap)
              .set_topics(topic)
              .set_group_id(f"socflow-echo-{topic}")
              .set_starting_offsets(KafkaOffsetsInitializer.earliest())
              .set_bounded(KafkaOffsetsInitializer.latest())
              .set_value_only_deserializer(SimpleStringSchema())
              .build())
    records = env.from_source(source, WatermarkStrategy.no_watermarks(), "kafka")
    upper = records.map(lambda value: value.upper(), output_type=Types.STRING()).name("upper_in_python")
    upper.sink_to(FileSink.for_row_format(output, Encoder.simple_string_encoder()).build()).name("files")
    env.execute("socflow-kafka-echo")


if __name__ == "__main__":
    main(sys.argv[1:])
