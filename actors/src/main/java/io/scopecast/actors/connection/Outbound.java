package io.scopecast.actors.connection;

import io.scopecast.actors.history.HistoryEntry;
import io.scopecast.actors.metrics.ScopecastMetrics;
import io.scopecast.actors.protocol.Utf8;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;
import java.util.function.Function;
import org.apache.pekko.japi.Pair;
import org.apache.pekko.stream.javadsl.Source;
import org.apache.pekko.stream.stage.AsyncCallback;

/**
 * The send buffer of one connection, and the only one: a single stage the socket drains with
 * backpressure. The node's fanout hands it each event frame (encoded once per event) directly,
 * without a message to the connection actor; the {@link DeliveryCursor} of the subscription says
 * whether the frame goes out, and the {@link Notice} (the connection actor) hears only about what
 * needs deciding: a gap, a new epoch, no room, a client too far behind.
 *
 * <p>Lanes, in the order the socket takes them: the closing frame (it overtakes everything, ends
 * the stream and drops what was queued, §8, §13.8); control replies; then, in publish order,
 * durable events and ephemeral frames. Ephemeral frames are accepted only while the buffer is
 * less than half full and are shed first when a durable event needs room (§13.21); they never
 * make the buffer "full". Every lane is bounded by frames ({@code outbound-buffer}) and by UTF-8
 * bytes ({@code outbound-buffer-bytes}), the size the frame has on the wire: the event lane by
 * both; essential frames (replies in order, resyncs, presence leaves) may take it to twice both
 * bounds; control replies have a lane of their own with both bounds. What finds no room gets a
 * defined answer: a durable event makes its cursor fall behind (history feeds it later), an
 * ephemeral frame is dropped and counted, a presence leave or reply becomes a snapshot once the
 * buffer drains, and an essential or control frame is refused ({@link Offer#FULL}: the connection
 * evicts the client, 4008). A single frame larger than a bound still goes out when its lane is
 * empty. An event's size is counted once, by the fanout, for all its subscribers. Replay is
 * offered page by page as the socket frees room ({@link #whenRoom}), so it never overflows the
 * buffer (§13.20). The lanes and their rules are {@link SendLanes}; this class adds the cursors,
 * the lock, the listener and the stage's wake-ups.
 *
 * <p>Ownership. Three parties call it: the node's fanout (events, from its own thread), the
 * connection actor (positions, replay, replies) and the socket's stage (taking frames). Its lanes
 * and cursors belong to this object alone and are guarded by its lock, held only for a few field
 * updates; nothing outside this class ever runs under it. Each caller's decision is made in one
 * acquisition ({@link #position(String, String, long, long, long)}, {@link #nextPage},
 * {@link #replay}, {@link #pause}), so the actor never acts on a reading another thread has
 * changed since. What the actor must hear ({@link Notice}) is collected under the lock and told
 * after it is released, and the stage is woken the same way: no callback runs under the lock.
 */
public final class Outbound {

  /** What the connection actor hears from its send buffer; told from any of the three threads, never under the buffer's lock. */
  public sealed interface Notice {}

  /** A live event of {@code scope} met a verdict other than deliver, duplicate or hold (a gap, a new epoch, too far behind) or found no room. */
  public record Attention(String scope, DeliveryCursor.Verdict verdict) implements Notice {}

  /** After {@link #whenRoom}: at least half the buffer is free (after {@link #whenEmpty}: the event lane is empty). */
  public enum Room implements Notice { INSTANCE }

  /** The buffer drained after presence frames of these scopes were shed (§13.21: send snapshots). */
  public record PresenceShed(Set<String> scopes) implements Notice {}

  public enum Offer {
    ENQUEUED,
    FULL,
    CLOSED
  }

  /** The kinds of frame in the main lane. */
  public enum Kind {
    /** An event with an offset; never shed, counts toward "full". */
    DURABLE,
    /** Must not be lost and keeps its place in order (resync, unsubscribed, presence.leave), but never makes the client "slow". */
    ESSENTIAL,
    /**
     * A presence leave: never shed. If the client has read nothing for so long that even an
     * essential frame finds no room, the scope gets a presence snapshot once the buffer drains.
     */
    PRESENCE_LEAVE,
    /** A client event: shed first. */
    EPHEMERAL,
    /** A presence join/update/count: shed first, and the scope gets a snapshot once the buffer drains. */
    PRESENCE
  }

  /** The UTF-8 size of a frame, as {@link #deliver} and {@link #deliverEphemeral} take it. */
  public static int bytesOf(String json) {
    return (int) Math.min(Integer.MAX_VALUE, Utf8.encodedLength(json));
  }

  // ---- guarded by this ----
  private final SendLanes lanes;
  private final Map<String, DeliveryCursor> cursors = new HashMap<>(4);
  private volatile Consumer<Notice> listener;
  private String closing;
  private boolean finishing;
  private boolean aborted;
  /** The stage was pulled and found nothing: the next offer wakes it. */
  private boolean waiting;
  private AsyncCallback<Boolean> wakeUp;

  Outbound(int capacity, long maxBytes, ScopecastMetrics metrics) {
    this.lanes = new SendLanes(capacity, maxBytes, metrics.framesDropped::inc);
  }

  /**
   * The frames to write to one socket, each wrapped by {@code wrap} (the transport's message type).
   * Materializing it as part of the socket's stream yields the handle that the connection actor
   * and the fanout offer to; the source completes after the closing frame.
   */
  public static <T> Source<T, Outbound> source(int capacity, long maxBytes, ScopecastMetrics metrics,
      Function<String, T> wrap) {
    return Source.fromGraph(new OutboundStage<>(capacity, maxBytes, metrics, wrap));
  }

  public static Source<String, Outbound> source(int capacity, long maxBytes, ScopecastMetrics metrics) {
    return source(capacity, maxBytes, metrics, s -> s);
  }

  /** The connection actor listens from here on. */
  public void listen(Consumer<Notice> l) {
    this.listener = l;
  }


  // ---- control replies and ephemeral frames --------------------------------------------------

  /** A reply or other control frame; FULL when the unread replies reach either bound (one always fits). */
  public Offer offer(String json) {
    int bytes = bytesOf(json);
    boolean wake;
    synchronized (this) {
      if (finishing) return Offer.CLOSED;
      if (lanes.offerControl(json, bytes) == Offer.FULL) return Offer.FULL;
      wake = wakeIfWaiting();
    }
    if (wake) wakeUp.invoke(Boolean.TRUE);
    return Offer.ENQUEUED;
  }

  /**
   * A frame in the main lane, in order with the scope's events. Ephemeral and presence frames are
   * dropped (counted) when the buffer is half full or more; essential frames are refused (FULL)
   * only far beyond the bound, when the client has read nothing for a long while.
   */
  public Offer offer(String scope, String json, Kind kind) {
    int bytes = bytesOf(json);
    Offer result;
    boolean wake;
    synchronized (this) {
      result = offerLocked(scope, json, bytes, kind);
      wake = result == Offer.ENQUEUED && wakeIfWaiting();
    }
    if (wake) wakeUp.invoke(Boolean.TRUE);
    return result;
  }

  private Offer offerLocked(String scope, String json, int bytes, Kind kind) {
    return finishing ? Offer.CLOSED : lanes.offer(scope, json, bytes, kind);
  }

  // ---- live events, from the node's fanout ---------------------------------------------------

  /**
   * The fanout registered this connection for {@code scope} at the owner's position: from here on
   * live events of the scope are judged by a cursor (not live until the connection positions it).
   */
  public synchronized void attached(String scope, String epoch, long offset, long historyLimit) {
    if (!finishing && !cursors.containsKey(scope)) cursors.put(scope, new DeliveryCursor(epoch, offset, historyLimit));
  }

  /**
   * One live durable event; {@code frame} is shared by every subscriber, and so is its size
   * ({@link #bytesOf}), counted once per event.
   *
   * @return false when this connection no longer follows the scope (unsubscribed or closing): the fanout forgets it
   */
  public boolean deliver(String scope, String epoch, long offset, String frame, int frameBytes, long publishedAt) {
    boolean wake = false;
    DeliveryCursor.Verdict told = null;
    synchronized (this) {
      DeliveryCursor c = cursors.get(scope);
      if (c == null || finishing) return false;
      DeliveryCursor.Verdict v = c.live(epoch, offset);
      switch (v) {
        case DELIVER -> {
          if (lanes.offerEvent(scope, frame, frameBytes, publishedAt)) {
            c.delivered(offset);
            wake = wakeIfWaiting();
          } else {
            c.fellBehind();
            told = v;
          }
        }
        case DUPLICATE, HOLD -> { }
        default -> told = v;
      }
    }
    if (wake) wakeUp.invoke(Boolean.TRUE);
    Consumer<Notice> l = listener;
    if (told != null && l != null) l.accept(new Attention(scope, told));
    return true;
  }

  /** An ephemeral frame of a subscribed scope (client event or presence) of {@code frameBytes}, from the fanout. */
  public void deliverEphemeral(String scope, String frame, int frameBytes, Kind kind) {
    boolean wake;
    synchronized (this) { // checked and queued under one lock: nothing of the scope follows its removal
      DeliveryCursor c = cursors.get(scope);
      if (c == null || !c.isPositioned()) return; // not subscribed, or the client has not been told yet
      wake = offerLocked(scope, frame, frameBytes, kind) == Offer.ENQUEUED && wakeIfWaiting();
    }
    if (wake) wakeUp.invoke(Boolean.TRUE);
  }

  /**
   * A {@code presence} reply or snapshot from the scope's owner, through the fanout, so that it is
   * in order with the scope's presence frames (§13.19). If it finds no room as an essential frame
   * (a snapshot of many members can be large), the scope gets a snapshot once the buffer drains
   * instead, when it goes out alone.
   */
  public void deliverPresenceReply(String scope, String frame) {
    int bytes = bytesOf(frame);
    boolean wake;
    synchronized (this) {
      if (!cursors.containsKey(scope)) return; // unsubscribed meanwhile
      Offer result = offerLocked(scope, frame, bytes, Kind.ESSENTIAL);
      if (result == Offer.FULL) lanes.presenceLost(scope);
      wake = result == Offer.ENQUEUED && wakeIfWaiting();
    }
    if (wake) wakeUp.invoke(Boolean.TRUE);
  }

  // ---- positioning and replay, from the connection actor -------------------------------------

  /** Where a positioned cursor stands. */
  public enum Positioned {
    /** Nothing is missing: live events flow. */
    LIVE,
    /** Events up to the owner's offset are missing: read history first. */
    READ_HISTORY,
    /** A live event of another epoch arrived meanwhile: the owner changed, ask it again. */
    OTHER_EPOCH
  }

  /**
   * Positions the scope's cursor at what the client has ({@code epoch}, {@code delivered}) and goes
   * live when nothing up to {@code scopeOffset} is missing, in one step.
   */
  public synchronized Positioned position(String scope, String epoch, long delivered, long scopeOffset, long historyLimit) {
    if (finishing) return Positioned.READ_HISTORY;
    DeliveryCursor c = cursors.computeIfAbsent(scope, s -> new DeliveryCursor(epoch, delivered, historyLimit));
    c.reposition(epoch, delivered);
    boolean live = c.goLive(scopeOffset);
    if (c.sawOtherEpoch()) return Positioned.OTHER_EPOCH;
    return live ? Positioned.LIVE : Positioned.READ_HISTORY;
  }

  /** A {@code resync} frame in order with the scope's events, and the cursor continues from there. */
  public Offer resync(String scope, String json, String epoch, long offset) {
    int bytes = bytesOf(json);
    Offer result;
    boolean wake;
    synchronized (this) { // the frame is queued before any event of the new position can be
      result = offerLocked(scope, json, bytes, Kind.ESSENTIAL);
      DeliveryCursor c = cursors.get(scope);
      if (c != null && result == Offer.ENQUEUED) {
        c.reposition(epoch, offset);
        c.goLive(offset);
      }
      wake = result == Offer.ENQUEUED && wakeIfWaiting();
    }
    if (wake) wakeUp.invoke(Boolean.TRUE);
    return result;
  }

  /** A live event of the scope found no room since the connection last positioned it. */
  public synchronized boolean fellBehind(String scope) {
    DeliveryCursor c = cursors.get(scope);
    return c != null && c.hasFallenBehind();
  }

  /** The newest live event the scope's cursor saw belongs to another epoch than the cursor's. */
  public synchronized boolean sawOtherEpoch(String scope) {
    DeliveryCursor c = cursors.get(scope);
    return c != null && c.sawOtherEpoch();
  }

  /**
   * What a replayed page did: whether it was of the cursor's epoch, the offset the cursor stood at
   * before it, how many events it took, and whether the scope is live afterwards.
   */
  public record Replayed(boolean sameEpoch, long from, int taken, boolean live) {}

  /**
   * Replayed events of {@code epoch}, ascending; takes them while they continue the cursor and fit,
   * and goes live if nothing up to {@code scopeOffset} is missing then, in one step. Null when the
   * scope is not followed any more.
   */
  public Replayed replay(String scope, String epoch, List<HistoryEntry> page, long scopeOffset) {
    int taken = 0;
    boolean wake = false;
    Replayed result;
    synchronized (this) {
      DeliveryCursor c = cursors.get(scope);
      if (c == null || finishing) return null;
      long from = c.delivered();
      if (!c.epoch().equals(epoch)) return new Replayed(false, from, 0, false);
      for (HistoryEntry e : page) {
        if (e.offset() <= c.delivered()) continue;
        int bytes = bytesOf(e.frame());
        if (e.offset() != c.delivered() + 1 || !lanes.offerEvent(scope, e.frame(), bytes, 0)) break;
        c.replayed(e.offset());
        taken++;
      }
      if (taken > 0) wake = wakeIfWaiting();
      result = new Replayed(true, from, taken, c.goLive(scopeOffset));
    }
    if (wake) wakeUp.invoke(Boolean.TRUE);
    return result;
  }

  /** Live again if nothing is missing up to {@code scopeOffset} and every live event seen. */
  public synchronized boolean goLive(String scope, long scopeOffset) {
    DeliveryCursor c = cursors.get(scope);
    return c != null && !finishing && c.goLive(scopeOffset);
  }

  /**
   * Live events of the scope are held (judged, not sent) until the connection positions the cursor
   * again; returns the position they stopped at, {epoch, delivered} (null when not subscribed),
   * which stays so until then.
   */
  public synchronized Pair<String, Long> pause(String scope) {
    DeliveryCursor c = cursors.get(scope);
    if (c == null) return null;
    c.pause();
    return Pair.create(c.epoch(), c.delivered());
  }

  /** The scope's position on this connection: {epoch, delivered}, or null when not subscribed. */
  public synchronized Pair<String, Long> position(String scope) {
    DeliveryCursor c = cursors.get(scope);
    return c == null ? null : Pair.create(c.epoch(), c.delivered());
  }

  /** The newest offset the cursor knows must be delivered (live events seen, in its epoch). */
  public synchronized long target(String scope) {
    DeliveryCursor c = cursors.get(scope);
    return c == null ? 0 : c.target();
  }


  /** Nothing more of the scope goes out (unsubscribed). */
  public synchronized void remove(String scope) {
    cursors.remove(scope);
  }

  /** Bytes the buffer can still take for durable events ({@link #nextPage} gives frames and bytes together). */
  public synchronized long freeBytes() {
    return lanes.freeBytes();
  }

  /**
   * Where the scope's replay continues ({@code epoch}, after {@code delivered}) and how much the
   * next page may hold; {@code frames == 0}: less than half the buffer is free, and
   * {@link Room} follows once it is.
   */
  public record PageRoom(String epoch, long delivered, int frames, long bytes) {
    public boolean hasRoom() {
      return frames > 0;
    }
  }

  /** The next replay page's room, in one step; null when the scope is not followed. */
  public synchronized PageRoom nextPage(String scope) {
    DeliveryCursor c = cursors.get(scope);
    if (c == null) return null;
    if (lanes.hasRoom()) return new PageRoom(c.epoch(), c.delivered(), lanes.freeFrames(), lanes.freeBytes());
    lanes.wantRoom(); // told (outside the lock) by the stage's take that frees it
    return new PageRoom(c.epoch(), c.delivered(), 0, 0);
  }

  /** Frames waiting to be written. */
  public synchronized int size() {
    return lanes.size();
  }

  /** Calls {@link Room} once at least half the buffer is free (at once if it already is). */
  public void whenRoom() {
    synchronized (this) {
      if (!lanes.wantRoom()) return;
    }
    Consumer<Notice> l = listener;
    if (l != null) l.accept(Room.INSTANCE);
  }

  /**
   * Holds the main lane: control frames still go out, events wait. The connection holds it while
   * it positions cursors and queues the reply that must precede their events (connected, subscribed).
   */
  public synchronized void hold() {
    lanes.hold();
  }

  public void release() {
    boolean wake;
    synchronized (this) {
      wake = lanes.release() && wakeIfWaiting();
    }
    if (wake) wakeUp.invoke(Boolean.TRUE);
  }

  /** Calls {@link Room} once the main lane is empty (a frame too large for the free room fits then). */
  public void whenEmpty() {
    synchronized (this) {
      if (!lanes.wantEmpty()) return;
    }
    Consumer<Notice> l = listener;
    if (l != null) l.accept(Room.INSTANCE);
  }

  // ---- closing -------------------------------------------------------------------------------

  /**
   * Writes {@code json} ahead of everything still queued, then ends the stream (the socket is
   * closed after it). Queued frames are dropped; returns how many.
   */
  public int finish(String json) {
    int dropped;
    boolean wake;
    synchronized (this) {
      if (finishing) return 0;
      finishing = true;
      closing = json;
      dropped = lanes.clear();
      cursors.clear();
      wake = wakeIfWaiting();
    }
    if (wake) wakeUp.invoke(Boolean.TRUE);
    return dropped;
  }

  /** Ends the stream at once, without a closing frame (the socket is cut). */
  public void abort() {
    AsyncCallback<Boolean> cb;
    synchronized (this) {
      if (aborted) return;
      aborted = true;
      finishing = true;
      cursors.clear();
      cb = wakeUp;
    }
    if (cb != null) cb.invoke(Boolean.FALSE);
  }

  /** The failure the socket stream ends with when a connection is cut. */
  public static final class ConnectionAborted extends RuntimeException {
    ConnectionAborted() {
      super("connection closed by the server", null, false, false);
    }
  }

  // ---- internals (lock held) -----------------------------------------------------------------

  private boolean wakeIfWaiting() {
    if (!waiting || wakeUp == null) return false;
    waiting = false;
    return true;
  }

  // ---- for the stage ----------------------------------------------------------------------------

  /** The stage started: {@code cb} wakes it (true) or fails it (false). True if the buffer was aborted already. */
  synchronized boolean started(AsyncCallback<Boolean> cb) {
    wakeUp = cb;
    return aborted;
  }

  /** The stream ends once the closing frame has been taken. */
  synchronized boolean ended() {
    return finishing && closing != null && closing.isEmpty();
  }

  /** The next frame to write, or null (then the stage waits for a wake-up); then tells the actor what became due. */
  SendLanes.Frame next() {
    SendLanes.Frame f;
    boolean room;
    Set<String> snapshots;
    synchronized (this) {
      f = take();
      room = lanes.takeRoomDue();
      snapshots = lanes.takeSnapshotsDue();
    }
    Consumer<Notice> l = listener;
    if (l != null && room) l.accept(Room.INSTANCE);
    if (l != null && snapshots != null) l.accept(new PresenceShed(Set.copyOf(snapshots)));
    return f;
  }

  private SendLanes.Frame take() {
    if (closing != null) {
      String c = closing;
      closing = "";
      return c.isEmpty() ? null : new SendLanes.Frame(c, 0, 0, Kind.ESSENTIAL, null);
    }
    if (finishing) return null;
    SendLanes.Frame f = lanes.take();
    if (f == null) waiting = true;
    return f;
  }
}
