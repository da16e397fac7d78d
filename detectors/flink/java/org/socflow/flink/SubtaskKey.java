package org.socflow.flink;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.functions.RichMapFunction;
import org.apache.flink.types.Row;

/**
 * Each spool or Kafka record as the row {@code (key, record)}, keyed by the index of the source
 * subtask that read it: the batch operator is keyed by it so that it keeps its rule set version
 * in keyed state (see {@code detectors/flink/job.py}, {@code SubtaskKey}).
 *
 * <p>The same map as the Python one, without its cost: a Python map holds every batch of events
 * as it crosses from the JVM into the interpreter and back before the key is even used, two
 * more copies of all the job's input through the one interpreter lock the job shares.
 */
public final class SubtaskKey extends RichMapFunction<String, Row> {

    private static final long serialVersionUID = 1L;

    private transient String key;

    @Override
    public void open(OpenContext openContext) {
        key = String.valueOf(getRuntimeContext().getTaskInfo().getIndexOfThisSubtask());
    }

    @Override
    public Row map(String record) {
        return Row.of(key, record);
    }
}
