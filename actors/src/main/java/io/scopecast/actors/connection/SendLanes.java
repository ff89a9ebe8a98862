package io.scopecast.actors.connection;

import io.scopecast.actors.connection.Outbound.Kind;
import io.scopecast.actors.connection.Outbound.Offer;
import java.util.ArrayDeque;
import java.util.LinkedHashSet;
import java.util.Set;

/**
 * The lanes of one send buffer and their rules, without threads or streams: the control lane
 * (replies) and the main lane (events and frames in order with them), each bounded by frames and
 * by UTF-8 bytes; what may be shed, what may go beyond the bound, and what the socket takes next.
 * Not thread-safe: its {@link Outbound} calls it under its lock.
 */
final class SendLanes {

  /** A frame to write; {@code shed} frames stay in the main lane but are skipped. */
  static final class Frame {
    final String json;
    /** UTF-8 bytes of {@link #json}. */
    final int bytes;
    final long publishedAt;
    final Kind kind;
    final String scope;
    boolean shed;

    Frame(String json, int bytes, long publishedAt, Kind kind, String scope) {
      this.json = json;
      this.bytes = bytes;
      this.publishedAt = publishedAt;
      this.kind = kind;
      this.scope = scope;
    }

    boolean sheddable() {
      return kind == Kind.EPHEMERAL || kind == Kind.PRESENCE;
    }
  }

  private final int capacity;
  private final long maxBytes;
  /** Told of every frame shed or refused for want of room. */
  private final Runnable dropped;

  private final ArrayDeque<Frame> control = new ArrayDeque<>(4);
  private long controlBytes;
  private final ArrayDeque<Frame> main = new ArrayDeque<>(8);
  /** Frames in {@link #main} that are not shed, how many of them may be shed, and their bytes. */
  private int queued;
  private int sheddable;
  private long queuedBytes;
  /** Scopes whose presence frames were shed: each gets a snapshot once the main lane drains. */
  private Set<String> presenceShed;
  /** Events wait behind the control lane until {@link #release} (a reply is being put ahead of them). */
  private boolean held;
  private boolean roomWanted;
  private boolean emptyWanted;
  /** Due after the last {@link #take}: room (half free, or empty as asked), and presence snapshots. */
  private boolean roomDue;
  private Set<String> snapshotsDue;

  SendLanes(int capacity, long maxBytes, Runnable dropped) {
    this.capacity = Math.max(1, capacity);
    this.maxBytes = Math.max(1, maxBytes);
    this.dropped = dropped;
  }

  /** A reply or other control frame; FULL when the unread replies reach either bound (one always fits). */
  Offer offerControl(String json, int bytes) {
    if (control.size() >= capacity || (!control.isEmpty() && controlBytes + bytes > maxBytes)) return Offer.FULL;
    control.addLast(new Frame(json, bytes, 0, Kind.ESSENTIAL, null));
    controlBytes += bytes;
    return Offer.ENQUEUED;
  }

  /**
   * A frame in the main lane. Ephemeral and presence frames are refused (and counted as dropped)
   * from half full; essential frames and presence leaves may take the lane to twice both bounds;
   * a durable frame sheds ephemeral ones to make room and is refused only when that is not enough.
   */
  Offer offer(String scope, String json, int bytes, Kind kind) {
    switch (kind) {
      case EPHEMERAL, PRESENCE -> {
        if (queued * 2L >= capacity || queuedBytes * 2 >= maxBytes) {
          shedOne(scope, kind);
          return Offer.FULL;
        }
      }
      case ESSENTIAL, PRESENCE_LEAVE -> {
        if (queued >= 2L * capacity || (queued > 0 && queuedBytes + bytes > 2 * maxBytes)) {
          if (kind == Kind.PRESENCE_LEAVE) shedOne(scope, Kind.PRESENCE);
          return Offer.FULL;
        }
      }
      case DURABLE -> {
        if (!makeRoom(bytes)) return Offer.FULL;
      }
    }
    enqueue(new Frame(json, bytes, 0, kind, scope));
    return Offer.ENQUEUED;
  }

  /** A durable event, if there is room for it (shedding ephemeral frames if that makes room). */
  boolean offerEvent(String scope, String json, int bytes, long publishedAt) {
    if (!makeRoom(bytes)) return false;
    enqueue(new Frame(json, bytes, publishedAt, Kind.DURABLE, scope));
    return true;
  }

  /** A presence frame of the scope was lost: it gets a snapshot once the main lane drains. */
  void presenceLost(String scope) {
    shedOne(scope, Kind.PRESENCE);
  }

  /** At least half of both bounds is free. */
  boolean hasRoom() {
    return queued * 2L <= capacity && queuedBytes * 2 <= maxBytes;
  }

  int freeFrames() {
    return Math.max(0, capacity - queued);
  }

  long freeBytes() {
    return Math.max(0, maxBytes - queuedBytes);
  }

  int size() {
    return queued + control.size();
  }

  /** Asks for room: true if it is there already, else {@link #roomDue} follows once it is. */
  boolean wantRoom() {
    roomWanted = !hasRoom();
    return !roomWanted;
  }

  /** Asks for an empty main lane: true if it is empty already, else {@link #roomDue} follows once it is. */
  boolean wantEmpty() {
    emptyWanted = queued != 0;
    return !emptyWanted;
  }

  void hold() {
    held = true;
  }

  /** Events flow again; true if some wait. */
  boolean release() {
    held = false;
    return !main.isEmpty();
  }

  /** Drops everything queued; returns how many frames. */
  int clear() {
    int n = size();
    main.clear();
    control.clear();
    queued = sheddable = 0;
    queuedBytes = controlBytes = 0;
    return n;
  }

  /** The next frame for the socket (control first; events unless held), or null. */
  Frame take() {
    Frame ctl = control.pollFirst();
    if (ctl != null) {
      controlBytes -= ctl.bytes;
      return ctl;
    }
    if (held) return null;
    Frame f;
    while ((f = main.pollFirst()) != null && f.shed) { }
    if (f == null) return null;
    queued--;
    queuedBytes -= f.bytes;
    if (f.sheddable()) sheddable--;
    if (emptyWanted && queued == 0) {
      emptyWanted = false;
      roomDue = true;
    }
    if (roomWanted && hasRoom()) {
      roomWanted = false;
      roomDue = true;
    }
    if (queued == 0 && presenceShed != null) {
      snapshotsDue = presenceShed;
      presenceShed = null;
    }
    return f;
  }

  /** Whether room became due since last asked (and forgets it). */
  boolean takeRoomDue() {
    boolean due = roomDue;
    roomDue = false;
    return due;
  }

  /** The scopes whose snapshots became due since last asked (and forgets them), or null. */
  Set<String> takeSnapshotsDue() {
    Set<String> due = snapshotsDue;
    snapshotsDue = null;
    return due;
  }

  private boolean makeRoom(int bytes) {
    while (!fits(bytes) && sheddable > 0) shedOldest();
    return fits(bytes);
  }

  private boolean fits(int bytes) {
    return queued < capacity && (queuedBytes + bytes <= maxBytes || queued == 0);
  }

  private void enqueue(Frame f) {
    main.addLast(f);
    queued++;
    queuedBytes += f.bytes;
    if (f.sheddable()) sheddable++;
  }

  private void shedOldest() {
    for (Frame f : main) {
      if (!f.shed && f.sheddable()) {
        f.shed = true;
        queued--;
        sheddable--;
        queuedBytes -= f.bytes;
        shedOne(f.scope, f.kind);
        return;
      }
    }
  }

  private void shedOne(String scope, Kind kind) {
    dropped.run();
    if (kind == Kind.PRESENCE) {
      if (presenceShed == null) presenceShed = new LinkedHashSet<>();
      presenceShed.add(scope);
    }
  }
}
