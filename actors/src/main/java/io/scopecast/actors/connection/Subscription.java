package io.scopecast.actors.connection;

import com.fasterxml.jackson.databind.JsonNode;
import io.scopecast.actors.protocol.Position;
import io.scopecast.actors.protocol.ScopeId;
import io.scopecast.actors.scope.ScopeEntity;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;
import java.util.random.RandomGenerator;
import org.apache.pekko.actor.typed.ActorRef;

/**
 * One subscription of one connection, as its actor keeps it (§13.18): whether it is still being
 * authorized, waiting for its owner's answer (asked again with backoff until one comes) or
 * answered, and whether it is catching up from history. Its delivery position lives in the send
 * buffer's {@link DeliveryCursor}. Only its connection actor touches it.
 */
public final class Subscription {

  /** Why the owner is being asked: the handshake, a subscribe frame, or the owner was lost or changed. */
  public enum Reason { HANDSHAKE, EXPLICIT, FAILOVER }

  /** Why a subscription reads history: a replay the client asked for (or a gap), or it fell behind live events. */
  public enum CatchUp { NONE, REPLAY, BEHIND }

  private enum State { AUTHORIZING, REQUESTING, ANSWERED }

  /** The question an answer closed: why it was asked, and from where. */
  public record Answered(Reason why, Position since, boolean first) {}

  private final ScopeId scope;
  private final String name;
  private State state = State.AUTHORIZING;
  /** The outstanding authorization (matches its answer). */
  private long authorization;
  /** Ids of subscribe frames still to be answered. */
  private final List<JsonNode> replyIds = new ArrayList<>(1);
  /** The client was told the scope is pending: the answer is sent unsolicited. */
  private boolean toldPending;
  private ActorRef<ScopeEntity.Command> owner;
  /** The owner's last offset as last heard (answer or history page). */
  private long scopeOffset;
  private CatchUp catchUp = CatchUp.NONE;
  /** The outstanding history read (0: none), and whether a read waits for room in the send buffer. */
  private long pageRequest;
  private boolean waitingForRoom;
  private TokenBucket clientEvents;
  /** Answered during the handshake: where delivery starts once {@code connected} is out. */
  private AnswerRules.StartAt start;

  // ---- the outstanding request to the owner ----
  private Reason reason;
  private Position since;
  /** Answers to requests numbered from here on are accepted; 0: nothing asked. */
  private long firstRequest;
  private final RetryBackoff backoff = RetryBackoff.standard();

  public Subscription(ScopeId scope, Position since) {
    this.scope = scope;
    this.name = scope.toString();
    this.since = since;
  }

  public ScopeId scope() {
    return scope;
  }

  public String name() {
    return name;
  }

  /** Where the client resumes (or null), until the owner is asked from somewhere else. */
  public Position since() {
    return since;
  }

  /** An automatic scope that the client also resumes: it is asked from there. */
  public void resumeFrom(Position from) {
    since = from;
  }

  // ---- authorization ----

  /** The authorization numbered {@code requestId} is outstanding. */
  public void authorizing(long requestId) {
    authorization = requestId;
  }

  public boolean isAuthorizing() {
    return state == State.AUTHORIZING;
  }

  /** The answer to authorization {@code requestId} is the one this subscription waits for. */
  public boolean awaitsAuthorization(long requestId) {
    return state == State.AUTHORIZING && authorization == requestId;
  }

  // ---- asking the owner ----

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

  /** The delay before asking again, jittered ({@link RetryBackoff}: 250 ms to 2 s). */
  public Duration nextRetry(RandomGenerator random) {
    return backoff.next(random);
  }

  /**
   * The owner answered at {@code ownerOffset}: later answers to the question are ignored. Returns
   * the question, and whether this is the subscription's first answer.
   */
  public Answered answered(long ownerOffset) {
    Answered a = new Answered(reason, since, state != State.ANSWERED);
    firstRequest = 0;
    state = State.ANSWERED;
    scopeOffset = ownerOffset;
    return a;
  }

  public boolean isAnswered() {
    return state == State.ANSWERED;
  }

  /** Answered and not asking again: frames about the scope can be served. */
  public boolean isReady() {
    return state == State.ANSWERED && firstRequest == 0;
  }

  // ---- the owner ----

  /** The owner that answered last, or null once it stopped. */
  public ActorRef<ScopeEntity.Command> owner() {
    return owner;
  }

  /** Whether {@code answeredBy} is another owner than the known one (which it then becomes). */
  public boolean ownedBy(ActorRef<ScopeEntity.Command> answeredBy) {
    if (answeredBy.equals(owner)) return false;
    owner = answeredBy;
    return true;
  }

  public boolean isOwnedBy(ActorRef<ScopeEntity.Command> entity) {
    return entity.equals(owner);
  }

  public void ownerStopped() {
    owner = null;
  }

  /** The owner's offset as last heard. */
  public long scopeOffset() {
    return scopeOffset;
  }

  /** The owner was heard at {@code offset} (a history page, a resync). */
  public void heardOffset(long offset) {
    scopeOffset = Math.max(scopeOffset, offset);
  }

  // ---- replies to subscribe frames ----

  /** A subscribe frame waits for the owner's answer. */
  public void awaitReply(JsonNode id) {
    replyIds.add(id);
  }

  /** Subscribe frames still to be answered. */
  public List<JsonNode> waitingReplies() {
    return List.copyOf(replyIds);
  }

  public boolean wasToldPending() {
    return toldPending;
  }

  /** The client is told the scope is pending: returns the frames that are answered so, now. */
  public List<JsonNode> toldPending() {
    List<JsonNode> ids = List.copyOf(replyIds);
    replyIds.clear();
    toldPending = true;
    return ids;
  }

  /**
   * The ids to answer {@code subscribed} to; a null id stands for the unsolicited answer a client
   * told "pending" gets (§13.18).
   */
  public List<JsonNode> takeReplies() {
    List<JsonNode> ids = new ArrayList<>(replyIds);
    if (toldPending && ids.isEmpty()) ids.add(null);
    replyIds.clear();
    toldPending = false;
    return ids;
  }

  // ---- the handshake ----

  /** Answered during the handshake: delivery starts at {@code at} once {@code connected} is out. */
  public void startOnConnected(AnswerRules.StartAt at) {
    start = at;
  }

  public boolean waitsForConnected() {
    return start != null;
  }

  /** Where delivery starts, now that {@code connected} is out (null if not answered yet). */
  public AnswerRules.StartAt takeStart() {
    AnswerRules.StartAt at = start;
    start = null;
    return at;
  }

  // ---- catching up from history ----

  public CatchUp catchUp() {
    return catchUp;
  }

  /**
   * Catches up for {@code why} (falling behind is never downgraded to a replay); true when a page
   * should be read now (none is out, none waits for room).
   */
  public boolean catchUpFor(CatchUp why) {
    if (catchUp != CatchUp.BEHIND) catchUp = why;
    return pageRequest == 0 && !waitingForRoom;
  }

  public void pageAsked(long requestId) {
    pageRequest = requestId;
  }

  public long pageRequest() {
    return pageRequest;
  }

  /** The page numbered {@code requestId} is the one this subscription waits for. */
  public boolean awaitsPage(long requestId) {
    return pageRequest != 0 && pageRequest == requestId;
  }

  public void pageArrived() {
    pageRequest = 0;
  }

  /** The next page waits until the send buffer has room. */
  public void waitForRoom() {
    waitingForRoom = true;
  }

  /** The send buffer has room: true if this subscription was waiting for it. */
  public boolean roomCame() {
    boolean was = waitingForRoom;
    waitingForRoom = false;
    return was;
  }

  public void caughtUp() {
    catchUp = CatchUp.NONE;
  }

  /** Stops catching up; true if a page was out (its timer is to be cancelled). */
  public boolean stopCatchingUp() {
    boolean out = pageRequest != 0;
    pageRequest = 0;
    waitingForRoom = false;
    catchUp = CatchUp.NONE;
    return out;
  }

  // ---- client events ----

  /** The scope's bucket for client events, made on first use. */
  public TokenBucket clientEvents(Supplier<TokenBucket> create) {
    if (clientEvents == null) clientEvents = create.get();
    return clientEvents;
  }
}
