package org.socflow.flink;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.connector.source.Boundedness;
import org.apache.flink.api.connector.source.Source;
import org.apache.flink.api.connector.source.SourceEvent;
import org.apache.flink.api.connector.source.SourceReader;
import org.apache.flink.api.connector.source.SourceReaderContext;
import org.apache.flink.api.connector.source.SplitEnumerator;
import org.apache.flink.api.connector.source.SplitEnumeratorContext;
import org.apache.flink.api.java.typeutils.ResultTypeQueryable;
import org.apache.flink.connector.file.src.AbstractFileSource;
import org.apache.flink.connector.file.src.FileSourceSplit;
import org.apache.flink.connector.file.src.PendingSplitsCheckpoint;
import org.apache.flink.core.fs.Path;
import org.apache.flink.core.io.SimpleVersionedSerializer;

/**
 * Flink's file source, whose checkpoints forget the spool segments that no longer exist.
 *
 * <p>A continuously monitoring file source remembers every path it has read, so that it never
 * reads one twice, and writes that whole set into every checkpoint. The spool deletes segments
 * once they lie behind a checkpoint (ingest/spool_prune.py) and never makes a segment name
 * twice, so a deleted path cannot come back: leaving it out of the checkpoint changes nothing
 * the source would do, and keeps each checkpoint the size of the spool rather than of its
 * history. A job restored from such a checkpoint starts with the smaller set.
 */
public final class ForgetfulFileSource<T>
        implements Source<T, FileSourceSplit, PendingSplitsCheckpoint<FileSourceSplit>>, ResultTypeQueryable<T> {

    private static final long serialVersionUID = 1L;

    private final AbstractFileSource<T, FileSourceSplit> files;

    private ForgetfulFileSource(AbstractFileSource<T, FileSourceSplit> files) {
        this.files = files;
    }

    public static <T> ForgetfulFileSource<T> of(AbstractFileSource<T, FileSourceSplit> files) {
        return new ForgetfulFileSource<>(files);
    }

    @Override
    public Boundedness getBoundedness() {
        return files.getBoundedness();
    }

    @Override
    public SourceReader<T, FileSourceSplit> createReader(SourceReaderContext context) throws Exception {
        return files.createReader(context);
    }

    @Override
    public SplitEnumerator<FileSourceSplit, PendingSplitsCheckpoint<FileSourceSplit>> createEnumerator(
            SplitEnumeratorContext<FileSourceSplit> context) throws Exception {
        return new Enumerator(files.createEnumerator(context));
    }

    @Override
    public SplitEnumerator<FileSourceSplit, PendingSplitsCheckpoint<FileSourceSplit>> restoreEnumerator(
            SplitEnumeratorContext<FileSourceSplit> context, PendingSplitsCheckpoint<FileSourceSplit> checkpoint)
            throws Exception {
        Enumerator enumerator = new Enumerator(null);
        PendingSplitsCheckpoint<FileSourceSplit> smaller = enumerator.forget(checkpoint);
        enumerator.inner = files.restoreEnumerator(context, smaller);
        return enumerator;
    }

    @Override
    public SimpleVersionedSerializer<FileSourceSplit> getSplitSerializer() {
        return files.getSplitSerializer();
    }

    @Override
    public SimpleVersionedSerializer<PendingSplitsCheckpoint<FileSourceSplit>> getEnumeratorCheckpointSerializer() {
        return files.getEnumeratorCheckpointSerializer();
    }

    @Override
    public TypeInformation<T> getProducedType() {
        return files.getProducedType();
    }

    /** The file source's enumerator, its snapshots without the paths that are gone. */
    private static final class Enumerator
            implements SplitEnumerator<FileSourceSplit, PendingSplitsCheckpoint<FileSourceSplit>> {

        private SplitEnumerator<FileSourceSplit, PendingSplitsCheckpoint<FileSourceSplit>> inner;
        // Paths found missing once: a pruned segment never returns, so it is looked up once,
        // and each snapshot asks the file system only about the segments that still exist.
        private final Set<Path> gone = new HashSet<>();

        Enumerator(SplitEnumerator<FileSourceSplit, PendingSplitsCheckpoint<FileSourceSplit>> inner) {
            this.inner = inner;
        }

        PendingSplitsCheckpoint<FileSourceSplit> forget(PendingSplitsCheckpoint<FileSourceSplit> checkpoint)
                throws IOException {
            Collection<Path> processed = checkpoint.getAlreadyProcessedPaths();
            List<Path> kept = new ArrayList<>(processed.size());
            for (Path path : processed) {
                if (gone.contains(path)) {
                    continue;
                }
                if (path.getFileSystem().exists(path)) {
                    kept.add(path);
                } else {
                    gone.add(path);
                }
            }
            return PendingSplitsCheckpoint.fromCollectionSnapshot(checkpoint.getSplits(), kept);
        }

        @Override
        public void start() {
            inner.start();
        }

        @Override
        public void handleSplitRequest(int subtask, String hostname) {
            inner.handleSplitRequest(subtask, hostname);
        }

        @Override
        public void addSplitsBack(List<FileSourceSplit> splits, int subtask) {
            inner.addSplitsBack(splits, subtask);
        }

        @Override
        public void addReader(int subtask) {
            inner.addReader(subtask);
        }

        @Override
        public PendingSplitsCheckpoint<FileSourceSplit> snapshotState(long checkpointId) throws Exception {
            return forget(inner.snapshotState(checkpointId));
        }

        @Override
        public void close() throws IOException {
            inner.close();
        }

        @Override
        public void notifyCheckpointComplete(long checkpointId) throws Exception {
            inner.notifyCheckpointComplete(checkpointId);
        }

        @Override
        public void notifyCheckpointAborted(long checkpointId) throws Exception {
            inner.notifyCheckpointAborted(checkpointId);
        }

        @Override
        public void handleSourceEvent(int subtask, SourceEvent event) {
            inner.handleSourceEvent(subtask, event);
        }
    }
}
