package io.scopecast.actors.connection;

/**
 * The delivery rules of one subscription of one connection (§5, §13.20), as a plain object: what
 * has been handed to the socket ({@code epoch}, {@code delivered}), the newest live offset seen,
 * and whether live events may go straight out. Every live event of the scope meets
 * {@link #live}, which says what to do with it; while the cursor is not live the connection reads
 * what is missing from history ({@link #replayed}) and then tries {@link #goLive}.
 *
 * <p>Not thread-safe: {@link Outbound} calls it under its lock.
 */
public final class DeliveryCursor {

  /** What to do with one live event. */
  public enum Verdict {
    /** The next offset: hand it to the socket, then call {@link #delivered}. */
    DELIVER,
    /** At or before what was delivered: drop it. */
    DUPLICATE,
    /** The cursor is catching up from history: the event will be read from there. */
    HOLD,
    /** Offsets are missing before it: read them from history (the cursor is no longer live). */
    GAP,
    /**
     * Another incarnation of the scope with another history: find out where we stand
     * (re-subscribe). Answered once per epoch until the cursor is positioned again; the epoch's
     * further events are {@link #HOLD held}, so an epoch costs the connection one message, not one per event.
     */
    NEW_EPOCH,
    /** Further behind than the scope's history can supply (§13.20): the client is too slow. */
    TOO_FAR_BEHIND
  }

  private final long historyLimit;
  private String epoch;
  private long delivered;
  private boolean live;
  /** {@link Verdict#TOO_FAR_BEHIND} was answered once since the cursor last moved on its own. */
  private boolean toldTooFar;
  /** The connection has positioned the cursor at least once: the scope's frames may reach the client. */
  private boolean positioned;
  /** A live event found no room since the cursor was last positioned. */
  private boolean behind;
  /** The newest live event seen, in {@link #seenEpoch} (null: none seen). */
  private String seenEpoch;
  private long seen;
  /** The other epoch {@link Verdict#NEW_EPOCH} was answered for since the cursor was last positioned (null: none). */
  private String announcedEpoch;

  /**
   * @param historyLimit how many events the scope's history holds at most; a cursor further behind
   *     than that cannot be caught up
   */
  public DeliveryCursor(String epoch, long delivered, long historyLimit) {
    this.epoch = epoch;
    this.delivered = delivered;
    this.historyLimit = historyLimit;
  }

  public Verdict live(String eventEpoch, long offset) {
    if (seenEpoch == null || !seenEpoch.equals(eventEpoch) || offset > seen) {
      seenEpoch = eventEpoch;
      seen = offset;
    }
    if (!eventEpoch.equals(epoch)) {
      live = false;
      if (eventEpoch.equals(announcedEpoch)) return Verdict.HOLD;
      announcedEpoch = eventEpoch;
      return Verdict.NEW_EPOCH;
    }
    if (offset <= delivered) return Verdict.DUPLICATE;
    if (!live) {
      if (toldTooFar || offset - delivered <= historyLimit) return Verdict.HOLD;
      toldTooFar = true;
      return Verdict.TOO_FAR_BEHIND;
    }
    if (offset == delivered + 1) return Verdict.DELIVER;
    live = false;
    return Verdict.GAP;
  }

  /** A live event was handed to the socket. */
  public void delivered(long offset) {
    delivered = offset;
  }

  /** The socket had no room for a live event: catch up from history instead of holding it. */
  public void fellBehind() {
    live = false;
    behind = true;
  }

  /** A live event found no room since the cursor was last positioned (the client is slow, not replaying). */
  public boolean hasFallenBehind() {
    return behind;
  }

  /**
   * A replayed event for this cursor's epoch: true when it is the next one (hand it to the socket),
   * false for a duplicate or one that would leave a gap.
   */
  public boolean replayed(long offset) {
    if (offset != delivered + 1) return false;
    delivered = offset;
    toldTooFar = false;
    return true;
  }

  /**
   * Goes live when nothing newer than {@code scopeOffset} (the owner's last offset when it last
   * answered) nor than any live event seen in this epoch is missing; false: more is to be read
   * from history first.
   */
  public boolean goLive(long scopeOffset) {
    if (delivered < scopeOffset) return false;
    if (seenEpoch != null && seenEpoch.equals(epoch) && seen > delivered) return false;
    live = true;
    return true;
  }

  /** Continues from another position (after a {@code resync} or the owner's answer): not live until {@link #goLive}. */
  public void reposition(String newEpoch, long offset) {
    epoch = newEpoch;
    delivered = offset;
    live = false;
    toldTooFar = false;
    positioned = true;
    behind = false;
    announcedEpoch = null;
  }

  /** Stops live delivery until the connection decides (e.g. while it re-subscribes). */
  public void pause() {
    live = false;
  }

  /** The offset to read history up to at least: the newest live offset seen in this epoch. */
  public long target() {
    return seenEpoch != null && seenEpoch.equals(epoch) ? Math.max(seen, delivered) : delivered;
  }

  public String epoch() {
    return epoch;
  }

  public long delivered() {
    return delivered;
  }

  public boolean isPositioned() {
    return positioned;
  }

  public boolean isLive() {
    return live;
  }

  /** The newest live event seen belongs to another epoch than the cursor's. */
  public boolean sawOtherEpoch() {
    return seenEpoch != null && !seenEpoch.equals(epoch);
  }
}
