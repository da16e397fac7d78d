"""Smoke job: numbers 0..N-1 through a Python map at the cluster's parallelism into files.

``python -m deploy.jobs.smoke OUTPUT_DIR [COUNT]`` or ``flink run -py deploy/jobs/smoke.py ...``.
Each output line is ``<number>,<python worker pid>``, so a caller can check every number
arrived and that Python workers (not just the JVM) did the work. Batch mode makes the file
sink finalise its part files when the job ends.
"""

from __future__ import annotations

import os
import sys


def square_with_pid(value: int) -> str:
    return f"{value * value},{os.getpid()}"


def main(argv: list[str]) -> None:
    from pyflink.common import Encoder, Types
    from pyflink.datastream import RuntimeExecutionMode, StreamExecutionEnvironment
    from pyflink.datastream.connectors.file_system import FileSink

    output = argv[0]
    count = int(argv[1]) if len(argv) > 1 else 1000
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_runtime_mode(RuntimeExecutionMode.BATCH)
    numbers = env.from_collection(list(range(count)), type_info=Types.INT()).name("numbers")
    # Batch jobs let the adaptive scheduler shrink parallelism for tiny inputs; pin it so the
    # job really spreads over the cluster's TaskManagers.
    parallelism = env.get_parallelism()
    squares = (numbers.rebalance().map(square_with_pid, output_type=Types.STRING())
               .name("square_in_python").set_parallelism(parallelism))
    sink = FileSink.for_row_format(output, Encoder.simple_string_encoder()).build()
    squares.sink_to(sink).name("files").set_parallelism(parallelism)
    env.execute("socflow-smoke")


if __name__ == "__main__":
    main(sys.argv[1:])
