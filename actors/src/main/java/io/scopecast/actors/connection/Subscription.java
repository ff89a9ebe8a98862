package io.scopecast.actors.connection;

import com.fasterxml.jackson.databind.JsonNode;
import io.scopecast.actors.protocol.Position;
import io.scopecast.actors.protocol.ScopeId;
import io.scopecast.actors.scope.ScopeEntity;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.random.RandomGenerator;
import org.apache.pekko.actor.typed.ActorRef;

/**
 * One subscription of one connection, as its actor keeps it (§13.18): whether it is still being
 * authorized, waiting for its owner's answer (asked again with backoff until one comes) or
 * answered, and whether it is catching up from history. Its delivery position lives in the send
 * buffer's {@link DeliveryCursor}.
 */
public final class Subscription {

  public enum State { AUTHORIZING, REQUESTING, ANSWERED }

  /** Why the owner is being asked: the handshake, a subscribe frame, or the owner was lost or changed. */
  public enum Reason { HANDSHAKE, EXPLICIT, FAILOVER }

  /** Why a subscription reads history: a replay the client asked for (or a gap), or it fell behind live events. */
  public enum CatchUp { NONE, REPLAY, BEHIND }

  public final ScopeId scope;
  public final String name;
  public State state = State.AUTHORIZING;
  /** The outstanding authorization (matches its answer). */
  public long authorization;
  public String token;
  /** Ids of subscribe frames still to be answered. */
  public final List<JsonNode> replyIds = new ArrayList<>(1);
  /** The client was told the scope is pending: the answer is sent unsolicited. */
  public boolean toldPending;
  public ActorRef<ScopeEntity.Command> entity;
  /** The owner's last offset as last heard (answer or history page). */
  public long scopeOffset;
  public CatchUp catchUp = CatchUp.NONE;
  /** The outstanding history read (0: none), and whether a read waits for room in the send buffer. */
  public long pageRequest;
  public boolean waitingForRoom;
  public TokenBucket clientEvents;
  /** Answered during the handshake: where delivery starts once {@code connected} is out. */
  public AnswerRules.StartAt start;

  // ---- the outstanding request to the owner ----
  public Reason reason;
  public Position since;
  /** Answers to requests numbered from here on are accepted; 0: nothing asked. */
  private long firstRequest;
  private final RetryBackoff backoff = RetryBackoff.standard();

  public Subscription(ScopeId scope) {
    this.scope = scope;
    this.name = scope.toString();
  }

  /** Starts asking the owner; {@code requestId} numbers the first request. */
  public void ask(Reason why, Position from, long requestId) {
    reason = why;
    since = from;
    firstRequest = requestId;
    backoff.reset();
    if (state == State.AUTHORIZING) state = State.REQUESTING;
  }

  public boolean isAsking() {
    return firstRequest != 0;
  }

  /** An answer to request {@code requestId} belongs to the current question. */
  public boolean accepts(long requestId) {
    return firstRequest != 0 && requestId >= firstRequest;
  }

  /** The question is answered: later answers to it are ignored. */
  public void answered() {
    firstRequest = 0;
  }

  /** The delay before asking again, jittered ({@link RetryBackoff}: 250 ms to 2 s). */
  public Duration nextRetry(RandomGenerator random) {
    return backoff.next(random);
  }

  public boolean isAnswered() {
    return state == State.ANSWERED;
  }
}
