package org.socflow.flink;

import java.io.IOException;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.connector.file.src.FileSourceSplit;
import org.apache.flink.connector.file.src.impl.StreamFormatAdapter;
import org.apache.flink.connector.file.src.reader.BulkFormat;
import org.apache.flink.connector.file.src.reader.TextLineInputFormat;
import org.apache.flink.connector.file.src.util.CheckpointedPosition;
import org.apache.flink.connector.file.src.util.RecordAndPosition;
import org.apache.flink.connector.file.src.util.SingletonResultIterator;

/**
 * The spool's text lines, then one line {@code "#segment-end <file name>"} when a segment has
 * been read to its end.
 *
 * <p>The job routes that line to its consumed-segments stream, which commits with each
 * checkpoint; a segment named there lies wholly behind a completed checkpoint, so a restore
 * from that checkpoint or a later one never reads it again, and the spool can delete it. No
 * spool line starts with {@code '#'}: every one is a JSON array or object.
 *
 * <p>A restore from a checkpoint taken between the end line and the end of the split emits the
 * end line again (it carries the position of the segment's last line): deleting twice is harmless.
 */
public final class SegmentEndLines implements BulkFormat<String, FileSourceSplit> {

    private static final long serialVersionUID = 1L;

    public static final String MARKER = "#segment-end ";

    private final BulkFormat<String, FileSourceSplit> lines;

    private SegmentEndLines(BulkFormat<String, FileSourceSplit> lines) {
        this.lines = lines;
    }

    /** UTF-8 text lines, as {@code StreamFormat.textLineFormat()} reads them, plus the end line. */
    public static SegmentEndLines textLines() {
        return new SegmentEndLines(new StreamFormatAdapter<>(new TextLineInputFormat()));
    }

    @Override
    public BulkFormat.Reader<String> createReader(Configuration config, FileSourceSplit split) throws IOException {
        return new Reader(lines.createReader(config, split), split, split.offset(), 0L);
    }

    @Override
    public BulkFormat.Reader<String> restoreReader(Configuration config, FileSourceSplit split) throws IOException {
        CheckpointedPosition position = split.getReaderPosition().orElse(null);
        long offset = position == null ? split.offset() : position.getOffset();
        long skip = position == null ? 0L : position.getRecordsAfterOffset();
        return new Reader(lines.restoreReader(config, split), split, offset, skip);
    }

    @Override
    public boolean isSplittable() {
        return false; // one split per segment, so "the split ended" means "the segment was read"
    }

    @Override
    public TypeInformation<String> getProducedType() {
        return lines.getProducedType();
    }

    /** The inner reader's batches, remembering the last position, then the end line once. */
    private static final class Reader implements BulkFormat.Reader<String> {

        private final BulkFormat.Reader<String> inner;
        private final String endLine;
        private long lastOffset;
        private long lastSkip;
        private boolean ended;

        Reader(BulkFormat.Reader<String> inner, FileSourceSplit split, long offset, long skip) {
            this.inner = inner;
            this.endLine = MARKER + split.path().getName();
            this.lastOffset = offset;
            this.lastSkip = skip;
        }

        @Override
        public BulkFormat.RecordIterator<String> readBatch() throws IOException {
            if (ended) {
                return null;
            }
            BulkFormat.RecordIterator<String> batch = inner.readBatch();
            if (batch != null) {
                return new Tracking(batch);
            }
            ended = true;
            SingletonResultIterator<String> end = new SingletonResultIterator<>();
            end.set(endLine, lastOffset, lastSkip);
            return end;
        }

        @Override
        public void close() throws IOException {
            inner.close();
        }

        private final class Tracking implements BulkFormat.RecordIterator<String> {

            private final BulkFormat.RecordIterator<String> batch;

            Tracking(BulkFormat.RecordIterator<String> batch) {
                this.batch = batch;
            }

            @Override
            public RecordAndPosition<String> next() {
                RecordAndPosition<String> record = batch.next();
                if (record != null) {
                    lastOffset = record.getOffset();
                    lastSkip = record.getRecordSkipCount();
                }
                return record;
            }

            @Override
            public void releaseBatch() {
                batch.releaseBatch();
            }
        }
    }
}
