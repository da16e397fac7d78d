package org.socflow.flink;

import java.nio.charset.StandardCharsets;
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
 *
 * <p>The record goes on as its UTF-8 bytes: Flink serializes a String for the {@code keyBy}'s
 * channel one character at a time ({@code StringValue}, most of the JVM side's samples in a
 * profile of the job) and reads it back the same way, and the interpreter gets a string by
 * decoding it; bytes are copied whole and decoded once, by the JSON decoder.
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
        return Row.of(key, record.getBytes(StandardCharsets.UTF_8));
    }
}
