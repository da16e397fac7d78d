"""A small Flink job around the stateful stage, run as its own process by the integration test.

FileSource (keyed records, one per line, directory watched) -> add_stateful_stage -> FileSink
rolling on checkpoints. Run: ``python flink_stage_job.py IN OUT CHECKPOINTS [RESTORE_PATH]``.
Killing the process is the failure; a restart with RESTORE_PATH (a ``chk-N`` directory) is
the recovery.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import scenario  # noqa: E402
from pyflink.common import Configuration, Duration, Encoder, WatermarkStrategy  # noqa: E402
from pyflink.datastream import StreamExecutionEnvironment  # noqa: E402
from pyflink.datastream.connectors.file_system import (  # noqa: E402
    FileSink,
    FileSource,
    OutputFileConfig,
    RollingPolicy,
    StreamFormat,
)

from detectors.flink.stateful import add_stateful_stage  # noqa: E402


def main(source: str, sink: str, checkpoints: str, restore: str | None = None) -> None:
    config = Configuration()
    settings = {
        "python.execution-mode": "thread",
        "execution.checkpointing.interval": "1000 ms",
        "state.checkpoints.dir": f"file://{checkpoints}",
        "execution.checkpointing.dir": f"file://{checkpoints}",
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "execution.checkpointing.num-retained": "5",
        "parallelism.default": "2",
        "python.executable": sys.executable,
        "python.client.executable": sys.executable,
    }
    if restore:
        settings["execution.state-recovery.path"] = restore
    for key, value in settings.items():
        config.set_string(key, value)
    env = StreamExecutionEnvironment.get_execution_environment(config)
    env.set_parallelism(2)
    files = FileSource.for_record_stream_format(StreamFormat.text_line_format(), source).monitor_continuously(
        Duration.of_millis(500)
    )
    records = env.from_source(files.build(), WatermarkStrategy.no_watermarks(), "keyed-records").uid("keyed-records")
    detections = add_stateful_stage(records, scenario.build_plan())
    detections.sink_to(
        FileSink.for_row_format(sink, Encoder.simple_string_encoder())
        .with_rolling_policy(RollingPolicy.on_checkpoint_rolling_policy())
        .with_output_file_config(OutputFileConfig.builder().with_part_prefix("alerts").with_part_suffix(".jsonl").build())
        .build()
    ).name("alerts").uid("alerts")
    env.execute("stateful-stage-test")


if __name__ == "__main__":
    main(*sys.argv[1:])
