package org.socflow.flink;

import org.apache.flink.api.common.eventtime.Watermark;
import org.apache.flink.api.common.eventtime.WatermarkGenerator;
import org.apache.flink.api.common.eventtime.WatermarkOutput;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;

/**
 * Bounded out-of-orderness watermarks emitted with the record that moves them, not later.
 *
 * <p>Flink's own bounded out-of-orderness generator emits only periodically (every 200 ms by
 * default), so a checkpoint barrier can pass between a batch's records and the watermark they
 * imply. Watermarks are not part of a checkpoint: a job killed after that checkpoint and
 * restored from it has consumed the records yet never sees their watermark, and the event-time
 * timers it would have fired (a correlation completed by the batch, say) wait until new
 * input arrives, which on a quiet stream may be never. Emitted at once, the watermark is
 * ahead of any barrier that follows the record, so the timers it fires, and their alerts,
 * belong to the same checkpoint as the records.
 *
 * <p>To keep watermark traffic small, a new one goes out only when it crosses into a later
 * {@code stepMs} slot. socflow's event-time timers sit on multiples of the step (the timer
 * resolution), so a watermark anywhere in a slot fires exactly the timers the slot's first one
 * does; the periodic emit still sends the exact value.
 */
public final class EagerWatermarks<T> implements WatermarkGenerator<T> {

    private final long outOfOrdernessMs;
    private final long stepMs;
    private long maxTimestamp;
    private long emittedSlot = Long.MIN_VALUE;

    public EagerWatermarks(long outOfOrdernessMs, long stepMs) {
        if (outOfOrdernessMs < 0 || stepMs < 1) {
            throw new IllegalArgumentException("out-of-orderness must be >= 0 and step >= 1 ms");
        }
        this.outOfOrdernessMs = outOfOrdernessMs;
        this.stepMs = stepMs;
        // Same start as Flink's BoundedOutOfOrdernessWatermarks: the first watermark is MIN_VALUE.
        this.maxTimestamp = Long.MIN_VALUE + outOfOrdernessMs + 1;
    }

    /** The strategy for {@code assignTimestampsAndWatermarks} (PyFlink wraps it; idleness is added there). */
    public static <T> WatermarkStrategy<T> strategy(long outOfOrdernessMs, long stepMs) {
        return WatermarkStrategy.forGenerator(context -> new EagerWatermarks<>(outOfOrdernessMs, stepMs));
    }

    private long watermark() {
        return maxTimestamp - outOfOrdernessMs - 1;
    }

    @Override
    public void onEvent(T event, long eventTimestamp, WatermarkOutput output) {
        if (eventTimestamp <= maxTimestamp) {
            return;
        }
        maxTimestamp = eventTimestamp;
        long slot = Math.floorDiv(watermark(), stepMs);
        if (slot > emittedSlot) {
            emittedSlot = slot;
            output.emitWatermark(new Watermark(watermark()));
        }
    }

    @Override
    public void onPeriodicEmit(WatermarkOutput output) {
        output.emitWatermark(new Watermark(watermark()));
    }
}
