package org.socflow.flink;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.Optional;
import java.util.PriorityQueue;

import org.apache.flink.connector.file.src.FileSourceSplit;
import org.apache.flink.connector.file.src.assigners.FileSplitAssigner;

/**
 * Hands out the spool's file splits oldest first: by modification time, then path, then offset.
 *
 * <p>Flink's default assigner (LocalityAwareSplitAssigner) keeps pending splits in a hash set
 * and hands them out in no particular order. With one new segment at a time that does not
 * matter, but a backlog (after a restore, or a job that fell behind) is then read out of
 * order: events of a later segment move event time on, and the earlier segment's events
 * become late and are dropped by the stateful stage. Segments are sealed in the order their
 * collector writes them, so their modification times order them, also across collectors; the
 * path (writer id, zero-padded sequence) breaks ties. Splits restored from a checkpoint and
 * splits found later are ordered the same way.
 */
public final class OrderedSplitAssigner implements FileSplitAssigner {

    private static final Comparator<FileSourceSplit> OLDEST_FIRST =
            Comparator.comparingLong(FileSourceSplit::fileModificationTime)
                    .thenComparing(split -> split.path().toString())
                    .thenComparingLong(FileSourceSplit::offset);

    private final PriorityQueue<FileSourceSplit> pending = new PriorityQueue<>(OLDEST_FIRST);

    public OrderedSplitAssigner(Collection<FileSourceSplit> splits) {
        pending.addAll(splits);
    }

    @Override
    public Optional<FileSourceSplit> getNext(String hostname) {
        return Optional.ofNullable(pending.poll());
    }

    @Override
    public void addSplits(Collection<FileSourceSplit> splits) {
        pending.addAll(splits);
    }

    @Override
    public Collection<FileSourceSplit> remainingSplits() {
        ArrayList<FileSourceSplit> remaining = new ArrayList<>(pending);
        remaining.sort(OLDEST_FIRST);
        return remaining;
    }

    /** The provider a {@code FileSource} builder takes (serializable: it travels in the job graph). */
    public static FileSplitAssigner.Provider provider() {
        return new Provider();
    }

    /** Creates an {@link OrderedSplitAssigner} for the source's split enumerator. */
    public static final class Provider implements FileSplitAssigner.Provider {
        private static final long serialVersionUID = 1L;

        @Override
        public FileSplitAssigner create(Collection<FileSourceSplit> initialSplits) {
            return new OrderedSplitAssigner(initialSplits);
        }
    }
}
