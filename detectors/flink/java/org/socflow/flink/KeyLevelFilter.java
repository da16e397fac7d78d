package org.socflow.flink;

import org.apache.flink.api.common.functions.FilterFunction;
import org.apache.flink.types.Row;

/**
 * Keeps the keyed records of one correlation chain level: rows {@code (key, record)} whose key
 * starts with {@code "<level>|"} (the key format of socflow's stateful stage).
 *
 * <p>The same test as a Python filter, without its cost: every keyed record visits every
 * level's filter, and in PyFlink each visit of a Python operator is a crossing between the JVM
 * and the interpreter, holding the one interpreter lock the whole job shares.
 */
public final class KeyLevelFilter implements FilterFunction<Row> {

    private static final long serialVersionUID = 1L;

    private final String prefix;

    public KeyLevelFilter(int level) {
        if (level < 0) {
            throw new IllegalArgumentException("level must be >= 0");
        }
        this.prefix = level + "|";
    }

    @Override
    public boolean filter(Row row) {
        Object key = row.getField(0);
        return key != null && key.toString().startsWith(prefix);
    }
}
