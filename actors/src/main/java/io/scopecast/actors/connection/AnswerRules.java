package io.scopecast.actors.connection;

import io.scopecast.actors.connection.Subscription.CatchUp;
import io.scopecast.actors.connection.Subscription.Reason;
import io.scopecast.actors.auth.ScopeAuthorizer.Decision;
import io.scopecast.actors.protocol.ErrorCode;
import io.scopecast.actors.protocol.Position;
import io.scopecast.actors.protocol.ProtocolError;

/**
 * What a connection does with an authorization, its owner's answers and history pages (§4, §5,
 * §13.4, §13.8, §13.20): whether it may subscribe, where delivery starts, when the client is told
 * to resync, when a slow client is evicted. Pure functions: the connection actor applies the decisions.
 */
public final class AnswerRules {
  private AnswerRules() {}

  /**
   * Why an authorized subscription cannot be had, or null: the authorizer's denial (or no answer),
   * or {@code held} subscriptions already at {@code max}.
   */
  public static ProtocolError refusal(Decision d, String scope, long held, int max) {
    return switch (d) {
      case UNAVAILABLE -> ProtocolError.of(ErrorCode.UNAVAILABLE, "authorization for " + scope + " is unavailable, try again");
      case FORBIDDEN -> ProtocolError.of(ErrorCode.FORBIDDEN, "not allowed to subscribe to " + scope);
      case ALLOW -> held >= max ? ProtocolError.of(ErrorCode.LIMIT_EXCEEDED, "more than " + max + " subscriptions") : null;
    };
  }

  /** What to do after the owner's answer. */
  public sealed interface Next {}

  /** Deliver from {@code from} in {@code epoch} (what is missing up to the owner's offset is read from history). */
  public record StartAt(String epoch, long from) implements Next {}

  /** Tell the client to continue from {@code epoch}/{@code offset}, with {@code reason}. */
  public record Resync(String epoch, long offset, String reason) implements Next {}

  /**
   * The owner answered the subscription's first question.
   *
   * @param since the position the client asked for (null: none)
   */
  public static StartAt firstAnswer(Position since, String epoch, long offset, boolean recovered) {
    return new StartAt(epoch, since != null && recovered ? since.offset() : offset);
  }

  /** The {@code recovered} the client is told: true when it asked for no position. */
  public static boolean toldRecovered(Position since, boolean recovered) {
    return since == null || recovered;
  }

  /**
   * The owner answered again (a re-subscribe with {@code since}, or after the owner was lost). The
   * reply goes behind the frames already queued for the scope, and what follows it agrees with it:
   * from the owner's offset when it was told {@code recovered:false}, never an offset twice.
   *
   * @param epoch the epoch the connection delivers in, {@code delivered} the last offset it delivered
   */
  public static Next reanswer(Reason why, Position since, String epoch, long delivered, String ownerEpoch,
      long ownerOffset, boolean recovered) {
    if (!ownerEpoch.equals(epoch)) return new Resync(ownerEpoch, ownerOffset, "epoch_changed");
    if (why == Reason.FAILOVER && !recovered) return new Resync(ownerEpoch, ownerOffset, "owner_lost_history");
    // the client was told recovered:false at the owner's offset: it continues from there (§5)
    if (since != null && !recovered) return new StartAt(epoch, Math.max(delivered, ownerOffset));
    boolean ahead = why == Reason.EXPLICIT && since != null && recovered && since.offset() > delivered;
    return new StartAt(epoch, ahead ? since.offset() : delivered); // never deliver an offset twice
  }

  /** What a history page leaves to do. */
  public enum PageOutcome {
    /** Caught up: the scope is live again. */
    LIVE,
    /** Read the next page (when there is room). */
    MORE,
    /** The next event is in history but larger than the free room: read it again once the buffer is empty. */
    WAIT_FOR_EMPTY,
    /** History no longer holds what the client misses: {@code resync} with {@code history_lost}. */
    RESYNC,
    /** A client that fell behind live events history can no longer supply: 4008 (§13.20). */
    EVICT
  }

  /**
   * @param wentLive the cursor went live after taking the page
   * @param taken how many of the page's events it took
   * @param hasNext the page holds the offset after the last delivered one
   */
  public static PageOutcome afterPage(boolean wentLive, int taken, boolean hasNext, CatchUp why) {
    if (wentLive) return PageOutcome.LIVE;
    if (taken > 0) return PageOutcome.MORE;
    if (hasNext) return PageOutcome.WAIT_FOR_EMPTY;
    return why == CatchUp.BEHIND ? PageOutcome.EVICT : PageOutcome.RESYNC;
  }
}
