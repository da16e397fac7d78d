package org.socflow.flink;

import java.nio.charset.StandardCharsets;
import org.apache.flink.api.common.TaskInfo;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.functions.RichMapFunction;
import org.apache.flink.runtime.state.KeyGroupRangeAssignment;
import org.apache.flink.types.Row;

/**
 * Each spool or Kafka record as the row {@code (key, record)}, keyed by the source subtask that
 * read it: the batch operator is keyed by it so that it keeps its rule set version in keyed state
 * (see {@code detectors/flink/job.py}, {@code SubtaskKey}).
 *
 * <p>The key is one whose key group this very subtask owns ({@link #ownKey}), so the stream is
 * already partitioned as a {@code keyBy} on it would partition it: the job reinterprets it as
 * keyed and the batch operator runs chained to its source, in the same thread, with no network
 * shuffle. (A {@code keyBy} sent every batch through Flink's serializers; measured against it,
 * about 3% less CPU for the job.)
 *
 * <p>The same map as the Python one, without its cost: a Python map holds every batch of events
 * as it crosses from the JVM into the interpreter and back before the key is even used. The
 * record goes on as its UTF-8 bytes, which the interpreter receives as a copy and the JSON
 * decoder reads directly: handing over the String measured 5% more CPU for the job (the
 * interpreter's conversion of a String costs more than this encoding).
 */
public final class SubtaskKey extends RichMapFunction<String, Row> {

    private static final long serialVersionUID = 1L;

    private transient String key;

    @Override
    public void open(OpenContext openContext) {
        TaskInfo task = getRuntimeContext().getTaskInfo();
        key = ownKey(task.getIndexOfThisSubtask(), task.getNumberOfParallelSubtasks(),
                task.getMaxNumberOfParallelSubtasks());
    }

    @Override
    public Row map(String record) {
        return Row.of(key, record.getBytes(StandardCharsets.UTF_8));
    }

    /**
     * The first of {@code "i"}, {@code "i-1"}, {@code "i-2"} ... that Flink assigns to subtask
     * {@code i} when keyed as the job keys it (a one-field row, PyFlink's KeyByKeySelector); one in
     * {@code parallelism} candidates is, so a few tries find it. Deterministic, so a restore with
     * the same parallelism finds each subtask's keyed state under the same key.
     */
    public static String ownKey(int index, int parallelism, int maxParallelism) {
        for (int attempt = 0; ; attempt++) {
            String candidate = attempt == 0 ? String.valueOf(index) : index + "-" + attempt;
            Row row = new Row(1);
            row.setField(0, candidate);
            if (KeyGroupRangeAssignment.assignKeyToParallelOperator(row, maxParallelism, parallelism) == index) {
                return candidate;
            }
        }
    }
}
