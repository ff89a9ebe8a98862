package io.scopecast.actors.scope;

import io.scopecast.actors.history.HistoryEntry;
import io.scopecast.actors.history.IdempotencyRecord;
import io.scopecast.actors.history.MemoryHistory;
import io.scopecast.actors.protocol.Position;
import io.scopecast.actors.protocol.ServerFrames;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;

/**
 * The sequencing rules of one scope, without actors or I/O (§5): the epoch and offsets, the
 * memory history, the idempotency window, the recovery decision and new epochs. Time is passed in.
 *
 * <p>An event is {@link #sequence sequenced} (it gets the next offset and its frame, encoded once)
 * and later {@link #commit committed} (stored where it has to be: now in history, delivered,
 * acknowledged). Subscribers only ever see committed offsets.
 */
public final class Sequencer {

  /** An event that has its offset and frame, waiting to be committed. */
  public record Sequenced(long offset, String frame, long ts, String event, String idempotencyKey) {
    public HistoryEntry entry() {
      return new HistoryEntry(offset, ts, frame);
    }
  }

  /** Limits of one scope type. */
  public record Limits(int historySize, long historyTtlMillis, long idempotencyWindowMillis, int idempotencyMaxKeys) {}

  private final String scope;
  private final Limits limits;
  private final MemoryHistory history;
  private final LinkedHashMap<String, IdempotencyRecord> keys = new LinkedHashMap<>();
  private String epoch;
  private long offset;
  private long sequenced;

  public Sequencer(String scope, Limits limits, ScopeStart.State start, long now) {
    this.scope = scope;
    this.limits = limits;
    this.history = new MemoryHistory(limits.historySize(), limits.historyTtlMillis());
    this.epoch = start.epoch();
    this.offset = start.offset();
    this.sequenced = start.offset();
    for (HistoryEntry e : start.history()) history.append(e);
    history.expire(now);
    for (IdempotencyRecord r : start.keys()) keys.put(r.key(), r);
  }

  public String epoch() {
    return epoch;
  }

  /** The last committed offset: what subscribers see. */
  public long offset() {
    return offset;
  }

  /** True while sequenced events wait to be committed. */
  public boolean hasUncommitted() {
    return sequenced > offset;
  }

  /** The first publish's answer for {@code key} if it is still in the window, else null. */
  public IdempotencyRecord remembered(String key) {
    return key == null ? null : keys.get(key);
  }

  /** Forgets the keys that left the window (by age or by number); returns them. */
  public List<String> forgetOldKeys(long now) {
    List<String> forgotten = new ArrayList<>();
    Iterator<IdempotencyRecord> it = keys.values().iterator();
    while (it.hasNext()) {
      IdempotencyRecord r = it.next();
      if (now - r.at() <= limits.idempotencyWindowMillis() && keys.size() < limits.idempotencyMaxKeys()) break;
      forgotten.add(r.key());
      it.remove();
    }
    return forgotten;
  }

  /** Gives the event the next offset and its frame, and remembers its idempotency key. */
  public Sequenced sequence(String event, String payloadJson, String idempotencyKey, long now) {
    long next = ++sequenced;
    if (idempotencyKey != null) keys.put(idempotencyKey, new IdempotencyRecord(idempotencyKey, epoch, next, now));
    return new Sequenced(next, ServerFrames.event(scope, next, event, payloadJson, now), now, event, idempotencyKey);
  }

  public void commit(Sequenced s) {
    offset = s.offset();
    history.append(s.entry());
  }

  /** §5: same epoch, not beyond the current offset, and every later offset still in history. */
  public boolean canRecover(Position since, long now) {
    if (!since.epoch().equals(epoch) || since.offset() > offset) return false;
    history.expire(now);
    return history.holdsRange(since.offset(), offset);
  }

  /** True when memory answers a read after {@code after} (an older range can only be in the durable history). */
  public boolean inMemory(long after, long now) {
    history.expire(now);
    return after >= offset || (history.size() > 0 && after + 1 >= history.firstOffset());
  }

  /** Up to {@code limit} events after {@code after} from memory, within {@code maxChars} past the first. */
  public List<HistoryEntry> page(long after, int limit, long maxChars, long now) {
    history.expire(now);
    return bounded(history.readAfter(after, limit), maxChars);
  }

  /** The longest prefix within {@code maxChars} (at least one entry). */
  public static List<HistoryEntry> bounded(List<HistoryEntry> entries, long maxChars) {
    long chars = 0;
    for (int i = 0; i < entries.size(); i++) {
      chars += entries.get(i).frame().length();
      if (chars > maxChars && i > 0) return entries.subList(0, i);
    }
    return entries;
  }

  /** Everything sequenced is committed; the scope starts over in {@code newEpoch} at offset 0 with an empty history. */
  public void startEpoch(String newEpoch) {
    if (hasUncommitted()) throw new IllegalStateException("events of " + epoch + " are not committed");
    epoch = newEpoch;
    offset = 0;
    sequenced = 0;
    history.clear();
  }

  public void expire(long now) {
    history.expire(now);
  }

  /** The newest events within {@code maxChars} and the newest {@code maxKeys} idempotency keys, for the next owner. */
  public ScopeStart.State handOff(long now, int maxChars, int maxKeys, boolean durableBehind) {
    history.expire(now);
    List<HistoryEntry> all = history.all();
    int from = all.size();
    long chars = 0;
    while (from > 0 && chars + all.get(from - 1).frame().length() <= maxChars) chars += all.get(--from).frame().length();
    List<IdempotencyRecord> records = new ArrayList<>(keys.values());
    return new ScopeStart.State(epoch, offset, List.copyOf(all.subList(from, all.size())),
        List.copyOf(records.subList(Math.max(0, records.size() - maxKeys), records.size())), durableBehind);
  }
}
