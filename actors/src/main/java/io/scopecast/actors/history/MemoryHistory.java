package io.scopecast.actors.history;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

/**
 * The newest events of one scope in memory, bounded by count and age (§5). Offsets in it are
 * contiguous: it only ever loses its oldest entries.
 */
public final class MemoryHistory {
  private final ArrayDeque<HistoryEntry> entries = new ArrayDeque<>();
  private final int maxSize;
  private final long ttlMillis;

  public MemoryHistory(int maxSize, long ttlMillis) {
    this.maxSize = Math.max(0, maxSize);
    this.ttlMillis = ttlMillis;
  }

  public void append(HistoryEntry e) {
    HistoryEntry last = entries.peekLast();
    if (last != null && e.offset() != last.offset() + 1) {
      entries.clear(); // never keep a hole: the history restarts at this event
    }
    if (maxSize == 0) return;
    entries.addLast(e);
    while (entries.size() > maxSize) entries.removeFirst();
  }

  /** Drops the events older than the TTL (§13.6: the epoch stays). */
  public void expire(long nowMillis) {
    long cutoff = nowMillis - ttlMillis;
    while (!entries.isEmpty() && entries.peekFirst().ts() < cutoff) entries.removeFirst();
  }

  public void clear() {
    entries.clear();
  }

  /** The oldest offset still held, or -1 when empty. */
  public long firstOffset() {
    return entries.isEmpty() ? -1 : entries.peekFirst().offset();
  }

  public long lastOffset() {
    return entries.isEmpty() ? -1 : entries.peekLast().offset();
  }

  public int size() {
    return entries.size();
  }

  /** True when every offset after {@code after} up to {@code upTo} is held. */
  public boolean holdsRange(long after, long upTo) {
    if (after >= upTo) return true;
    return !entries.isEmpty() && firstOffset() <= after + 1 && lastOffset() >= upTo;
  }

  /** Up to {@code limit} events with offsets after {@code after}, ascending. */
  public List<HistoryEntry> readAfter(long after, int limit) {
    List<HistoryEntry> out = new ArrayList<>(Math.min(limit, entries.size()));
    long first = firstOffset();
    if (first < 0 || limit <= 0) return out;
    long skip = Math.max(0, after + 1 - first);
    if (skip >= entries.size()) return out;
    Iterator<HistoryEntry> it = entries.iterator();
    for (long i = 0; i < skip; i++) it.next();
    while (it.hasNext() && out.size() < limit) out.add(it.next());
    return out;
  }

  /** All held events, ascending (for handing history over). */
  public List<HistoryEntry> all() {
    return new ArrayList<>(entries);
  }
}
