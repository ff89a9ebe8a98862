package io.scopecast.actors.connection;

import com.fasterxml.jackson.databind.JsonNode;
import io.scopecast.actors.CborSerializable;
import io.scopecast.actors.NodeFanout;
import io.scopecast.actors.auth.InvalidTokenException;
import io.scopecast.actors.auth.ScopeAuthorizer.Decision;
import io.scopecast.actors.auth.ScopeAuthorizer;
import io.scopecast.actors.auth.TokenVerifier;
import io.scopecast.actors.auth.UserClaims;
import io.scopecast.actors.connection.Subscription.CatchUp;
import io.scopecast.actors.connection.Subscription.Reason;
import io.scopecast.actors.metrics.ScopecastMetrics;
import io.scopecast.actors.protocol.ClientFrame;
import io.scopecast.actors.protocol.ClientFrameDecoder;
import io.scopecast.actors.protocol.ErrorCode;
import io.scopecast.actors.protocol.Position;
import io.scopecast.actors.protocol.ProtocolError;
import io.scopecast.actors.protocol.ScopeId;
import io.scopecast.actors.protocol.ServerFrames;
import io.scopecast.actors.scope.ScopeEntity;
import io.scopecast.actors.settings.ScopecastSettings;
import java.time.Clock;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Function;
import java.util.random.RandomGenerator;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.RecipientRef;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.BehaviorBuilder;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.StashBuffer;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.japi.Pair;

/**
 * One per WebSocket. Its lifecycle reads top to bottom: waiting for the socket's stream, then for
 * the {@code connect} frame, the handshake (§2), serving, and closing (§8). It owns the user's
 * subscriptions (§13.18: asked for again until the owner answers), heartbeats and limits.
 *
 * <p>Durable events do not pass through it: the node's {@link NodeFanout} hands them to the
 * connection's {@link Outbound} send buffer, whose per-scope {@link DeliveryCursor} lets the next
 * offset straight through and tells this actor only what needs deciding: a gap or no room (read
 * history, paced by the socket), a new epoch (subscribe again), a client too far behind (4008).
 */
public final class ConnectionActor {

  public sealed interface Command {}

  // ---- from the socket stream ----------------------------------------------------------------

  /** A frame read from the socket. */
  public sealed interface Incoming {}

  public record Text(String text) implements Incoming {}

  /** A frame over {@code max-frame-bytes} (its content is not kept). */
  public enum TooLarge implements Incoming { INSTANCE }

  /** A binary frame: the protocol is JSON text only. */
  public enum NotText implements Incoming { INSTANCE }

  public enum StreamAck { INSTANCE }

  /** The socket's outbound stream is running: its send buffer. Everything else waits for it. */
  public record OutboundReady(Outbound outbound) implements Command {}

  public record StreamStarted(ActorRef<StreamAck> ackTo) implements Command {}

  public record Received(ActorRef<StreamAck> ackTo, Incoming frame) implements Command {}

  public enum StreamEnded implements Command { INSTANCE }

  public record StreamFailed(Throwable cause) implements Command {}

  // ---- from the node's fanout ----------------------------------------------------------------

  /** What a scope entity (possibly on another node) sends a connection, forwarded as it is by the node's fanout. */
  public sealed interface FromScope extends Command, CborSerializable {}

  /** The scope entity's answer to a subscribe, forwarded by the fanout once the send buffer judges the scope's events. */
  public record Subscribed(String scope, ActorRef<ScopeEntity.Command> entity, String epoch, long offset,
      boolean recovered, long requestId) implements FromScope {}

  /**
   * The owner is starting and cannot hold the subscribe of request {@code requestId} yet: ask again
   * after the next backoff delay (from now, not from the request).
   */
  public record SubscribeNotYet(String scope, long requestId) implements FromScope {}

  /** The scope started a new epoch (after a Redis outage): continue from its position, after a resync frame. */
  public record ScopeResync(String scope, String epoch, long offset, String reason) implements FromScope {}

  /**
   * The user's status, from the user's own scope (shared by all their connections); {@code origin}
   * is the connection whose status frame set it (null: none), which presence scopes do not tell.
   */
  public record UserStatus(String status, String text, ActorRef<Command> origin) implements FromScope {}

  /** Close this connection with a {@code disconnect} frame (kick, shutdown). */
  public record Disconnect(CloseCode close) implements FromScope {
    public static Disconnect goingAway() {
      return new Disconnect(CloseCode.GOING_AWAY);
    }
  }

  // ---- internal ------------------------------------------------------------------------------

  /** From the send buffer: a live event needs a decision, there is room for a page, or presence frames were shed. */
  private record FromBuffer(Outbound.Notice notice) implements Command {}

  private record PageArrived(ScopeEntity.HistoryPage page) implements Command {}

  private record Authorized(String scope, long authorization, Decision decision) implements Command {}

  private record EntityStopped(String scope, ActorRef<ScopeEntity.Command> entity) implements Command {}

  private record RetrySubscribe(String scope) implements Command {}

  private record ReplyPending(String scope) implements Command {}

  private record PageTimedOut(String scope, long pageRequest) implements Command {}

  private record PresenceAnswer(JsonNode id, String scope, ScopeEntity.PresenceMembers members) implements Command {}

  private enum Timer implements Command { HANDSHAKE_TIMEOUT, HANDSHAKE_DEADLINE, SEND_PING, HEARTBEAT_CHECK, CLOSE_TIMEOUT }

  /** What every connection actor of a node shares. */
  public record Deps(
      ScopecastSettings settings,
      ScopecastMetrics metrics,
      String nodeId,
      Function<String, RecipientRef<ScopeEntity.Command>> scopes,
      ActorRef<NodeFanout.Command> fanout,
      TokenVerifier tokens,
      ScopeAuthorizer authorizer,
      ClientFrameDecoder decoder,
      Clock clock,
      RandomGenerator random) {

    /**
     * Rate limits timed by the system clock, the retry jitter drawn from {@link ThreadLocalRandom}
     * (tests pass their own).
     */
    public Deps(ScopecastSettings settings, ScopecastMetrics metrics, String nodeId,
        Function<String, RecipientRef<ScopeEntity.Command>> scopes, ActorRef<NodeFanout.Command> fanout,
        TokenVerifier tokens, ScopeAuthorizer authorizer, ClientFrameDecoder decoder) {
      this(settings, metrics, nodeId, scopes, fanout, tokens, authorizer, decoder, Clock.systemUTC(),
          () -> ThreadLocalRandom.current().nextLong());
    }
  }

  /** A replay page stays well under Artery's frame size when it crosses nodes (JSON characters). */
  private static final long MAX_PAGE_CHARS = 256 * 1024;

  /**
   * @param upgradeClaims the verified token of the upgrade request, or null when the token is to
   *     come in the connect frame
   * @param queryWorkspace {@code ?workspace=} of the upgrade request, or null
   */
  public static Behavior<Command> create(Deps deps, String connId, UserClaims upgradeClaims, String queryWorkspace) {
    return Behaviors.withStash(16, stash -> Behaviors.setup(ctx -> Behaviors.withTimers(timers -> {
      timers.startSingleTimer(Timer.HANDSHAKE_TIMEOUT, deps.settings().connection().handshakeTimeout());
      return Behaviors.receive(Command.class)
          .onMessage(OutboundReady.class, r -> stash.unstashAll(
              new ConnectionActor(ctx, timers, stash, deps, r.outbound(), connId, upgradeClaims, queryWorkspace).awaitingConnect()))
          .onMessageEquals(Timer.HANDSHAKE_TIMEOUT, Behaviors::stopped) // the socket's stream never started
          .onAnyMessage(m -> {
            stash.stash(m);
            return Behaviors.same();
          })
          .build();
    })));
  }

  private final ActorContext<Command> ctx;
  private final TimerScheduler<Command> timers;
  /** Frames that arrive during the handshake wait here (only a socket that ignores acknowledgements sends them). */
  private final StashBuffer<Command> stash;
  private final Deps deps;
  private final ScopecastSettings.Connection limits;
  private final ScopecastMetrics metrics;
  private final Outbound outbound;
  private final String connId;
  private final String queryWorkspace;
  private final FrameGuard guard;
  private final ActorRef<ScopeEntity.HistoryPage> pageAdapter;
  private final Map<String, Subscription> subs = new LinkedHashMap<>();
  private final Handshake handshake = new Handshake();

  private UserClaims claims;
  private String workspace;
  private long nextRequestId = 1;
  private boolean awaitingPong;
  /** The user's status as this connection knows it; sent with subscribes to presence scopes. */
  private String status = "online";
  private String statusText = "";
  /** The connect frame's acknowledgement, held until {@code connected} is out: the socket is not read meanwhile. */
  private ActorRef<StreamAck> connectAckTo;
  private boolean deadlinePassed;
  private final List<ScopeResync> resyncsDuringHandshake = new ArrayList<>(0);
  /** Set by {@link #close}: the handler that closed returns {@link #closing}. */
  private boolean closed;
  /** Set by a handler that moves the lifecycle on (connect frame taken, {@code connected} sent). */
  private Behavior<Command> next;

  private ConnectionActor(ActorContext<Command> ctx, TimerScheduler<Command> timers, StashBuffer<Command> stash, Deps deps,
      Outbound outbound, String connId, UserClaims upgradeClaims, String queryWorkspace) {
    this.ctx = ctx;
    this.timers = timers;
    this.stash = stash;
    this.deps = deps;
    this.limits = deps.settings().connection();
    this.metrics = deps.metrics();
    this.outbound = outbound;
    this.connId = connId;
    this.claims = upgradeClaims;
    this.queryWorkspace = queryWorkspace;
    this.guard = new FrameGuard(limits.flood(), deps.clock());
    this.pageAdapter = ctx.messageAdapter(ScopeEntity.HistoryPage.class, PageArrived::new);
    ActorRef<Command> self = ctx.getSelf();
    outbound.listen(notice -> self.tell(new FromBuffer(notice)));
    metrics.connectionsOpened.inc();
    metrics.connectionsActive.inc();
    deps.fanout().tell(new NodeFanout.Register(self, outbound));
  }

  // ---- lifecycle -----------------------------------------------------------------------------

  /** The socket is open; the first frame must be {@code connect} (§2). */
  private Behavior<Command> awaitingConnect() {
    return Behaviors.receive(Command.class)
        .onMessage(StreamStarted.class, s -> ack(s.ackTo()))
        .onMessage(Received.class, r -> then(() -> onFirstFrame(r)))
        .onMessageEquals(Timer.HANDSHAKE_TIMEOUT, () -> then(() -> close(CloseCode.NOT_AUTHENTICATED,
            "no connect frame within the handshake timeout")))
        .onMessage(Disconnect.class, d -> then(() -> close(d.close())))
        .onMessageEquals(StreamEnded.INSTANCE, Behaviors::stopped)
        .onMessage(StreamFailed.class, f -> Behaviors.stopped())
        .onSignal(PostStop.class, s -> onStop())
        .build();
  }

  /** The owners of the handshake's scopes are asked; {@code connected} goes out when all answer or at the deadline (§13.18). */
  private Behavior<Command> handshaking() {
    return subscriptionMessages(Behaviors.receive(Command.class))
        .onMessage(Authorized.class, a -> then(() -> onHandshakeAuthorized(a)))
        .onMessageEquals(Timer.HANDSHAKE_DEADLINE, () -> then(this::onHandshakeDeadline))
        .onMessage(FromBuffer.class, b -> Behaviors.same()) // no scope is positioned yet
        .onMessage(ScopeResync.class, r -> {
          resyncsDuringHandshake.add(r); // applied once connected is out
          return Behaviors.same();
        })
        .onMessage(Received.class, r -> {
          stash.stash(r);
          return Behaviors.same();
        })
        .onSignal(PostStop.class, s -> onStop())
        .build();
  }

  /** Serving: client frames, deliveries that need a decision, heartbeats. */
  private Behavior<Command> active() {
    return subscriptionMessages(Behaviors.receive(Command.class))
        .onMessage(Received.class, r -> then(() -> onReceived(r)))
        .onMessage(Authorized.class, a -> then(() -> onAuthorized(a)))
        .onMessage(FromBuffer.class, b -> then(() -> onNotice(b.notice())))
        .onMessage(PageArrived.class, p -> then(() -> onPage(p.page())))
        .onMessage(PageTimedOut.class, t -> then(() -> onPageTimedOut(t)))
        .onMessage(ReplyPending.class, p -> then(() -> onReplyPending(p)))
        .onMessage(ScopeResync.class, r -> then(() -> onScopeResync(r)))
        .onMessage(PresenceAnswer.class, a -> then(() -> onPresenceAnswer(a)))
        .onMessageEquals(Timer.SEND_PING, () -> then(this::onSendPing))
        .onMessageEquals(Timer.HEARTBEAT_CHECK, () -> then(() -> close(CloseCode.HEARTBEAT_TIMEOUT)))
        .onSignal(PostStop.class, s -> onStop())
        .build();
  }

  /** What the handshake and serving share: the owners' answers, retries, lost owners, status, kicks, the stream's end. */
  private BehaviorBuilder<Command> subscriptionMessages(BehaviorBuilder<Command> b) {
    return b
        .onMessage(Subscribed.class, s -> then(() -> onSubscribed(s)))
        .onMessage(RetrySubscribe.class, r -> then(() -> onRetry(r)))
        .onMessage(SubscribeNotYet.class, n -> then(() -> onNotYet(n)))
        .onMessage(EntityStopped.class, s -> then(() -> onEntityStopped(s)))
        .onMessage(UserStatus.class, u -> then(() -> onUserStatus(u)))
        .onMessage(Disconnect.class, d -> then(() -> close(d.close())))
        .onMessageEquals(StreamEnded.INSTANCE, Behaviors::stopped)
        .onMessage(StreamFailed.class, f -> Behaviors.stopped());
  }

  /** The disconnect frame is queued ahead of everything; the stream ends after it, or is cut after close-grace. */
  private Behavior<Command> closing() {
    return Behaviors.receive(Command.class)
        .onMessage(Received.class, r -> ack(r.ackTo()))
        .onMessage(StreamStarted.class, s -> ack(s.ackTo()))
        .onMessageEquals(Timer.CLOSE_TIMEOUT, () -> {
          outbound.abort(); // the client does not read: cut the socket
          return Behaviors.stopped();
        })
        .onMessageEquals(StreamEnded.INSTANCE, Behaviors::stopped)
        .onMessage(StreamFailed.class, f -> Behaviors.stopped())
        .onAnyMessage(m -> Behaviors.same())
        .onSignal(PostStop.class, s -> onStop())
        .build();
  }

  /** Runs a handler; the behaviour that follows is {@link #closing} if it closed the connection. */
  private Behavior<Command> then(Runnable handler) {
    handler.run();
    Behavior<Command> b = closed ? closing() : next != null ? next : Behaviors.same();
    next = null;
    return b;
  }

  private Behavior<Command> ack(ActorRef<StreamAck> ackTo) {
    ackTo.tell(StreamAck.INSTANCE);
    return Behaviors.same();
  }

  private Behavior<Command> onStop() {
    outbound.abort();
    metrics.connectionsClosed.inc();
    metrics.connectionsActive.dec();
    return Behaviors.same();
  }

  // ---- the handshake (§2) --------------------------------------------------------------------

  private void onFirstFrame(Received r) {
    if (guard.floods()) {
      flooded("too many frames");
    } else if (r.frame() == TooLarge.INSTANCE) {
      close(CloseCode.FRAME_TOO_LARGE, "frame larger than " + limits.maxFrameBytes() + " bytes");
    } else {
      ClientFrame frame = r.frame() instanceof Text t ? deps.decoder().decode(t.text()) : null;
      if (frame instanceof ClientFrame.Connect c) {
        connectAckTo = r.ackTo(); // the socket is read again once connected is out
        onConnect(c);
        return;
      }
      close(CloseCode.PROTOCOL_VIOLATION, frame instanceof ClientFrame.MalformedConnect m ? m.reason()
          : "the first frame must be connect");
    }
    ack(r.ackTo());
  }

  private void onConnect(ClientFrame.Connect c) {
    timers.cancel(Timer.HANDSHAKE_TIMEOUT);
    if (claims == null) {
      try {
        claims = deps.tokens().verifyUser(c.token());
      } catch (InvalidTokenException e) {
        close(CloseCode.NOT_AUTHENTICATED, "invalid or expired token");
        return;
      }
    }
    workspace = c.workspace() != null ? c.workspace() : queryWorkspace;
    if (workspace != null && !claims.grantsWorkspace(workspace)) {
      close(CloseCode.FORBIDDEN, "workspace " + workspace + " is not granted by the token");
      return;
    }
    next = handshaking();
    // the connected frame lists the automatic scopes, then the resumed ones, in the client's order
    subscribeInHandshake(ScopeId.user(claims.user()), null);
    if (workspace != null) subscribeInHandshake(ScopeId.workspace(workspace), null);
    for (ClientFrame.ResumeEntry e : c.resume()) {
      if (e.error() != null) {
        handshake.refused(null, ServerFrames.error(null, e.error(), e.scopeText()));
      } else if (subs.containsKey(e.scope().toString())) {
        subs.get(e.scope().toString()).resumeFrom(e.since()); // an automatic scope the client resumes
      } else {
        handshake.authorizing();
        authorize(subscribeInHandshake(e.scope(), e.since()), null);
      }
    }
    for (Subscription sub : subs.values()) {
      if (!sub.isAuthorizing() || isAutomatic(sub)) ask(sub, Reason.HANDSHAKE, sub.since());
    }
    timers.startSingleTimer(Timer.HANDSHAKE_DEADLINE, deps.settings().api().timeout());
    if (handshake.complete()) sendConnected();
  }

  private Subscription subscribeInHandshake(ScopeId scope, Position since) {
    Subscription sub = new Subscription(scope, since);
    subs.put(sub.name(), sub);
    handshake.expect(sub.name());
    return sub;
  }

  private boolean isAutomatic(Subscription sub) {
    return sub.scope().equals(ScopeId.user(claims.user())) || (workspace != null && sub.scope().equals(ScopeId.workspace(workspace)));
  }

  /** Asks the authorizer (claims, subscription token, hook); only the newest answer counts. */
  private void authorize(Subscription sub, String token) {
    String name = sub.name();
    long id = nextRequestId++;
    sub.authorizing(id);
    ctx.pipeToSelf(deps.authorizer().authorize(new ScopeAuthorizer.Request(claims, sub.scope(), token, workspace)),
        (d, err) -> new Authorized(name, id, err != null || d == null ? Decision.UNAVAILABLE : d));
  }

  private void onHandshakeAuthorized(Authorized a) {
    Subscription sub = authorizing(a);
    if (sub == null) return;
    handshake.authorized();
    ProtocolError refusal = refusal(sub, a.decision());
    if (refusal != null) {
      subs.remove(sub.name());
      handshake.refused(sub.name(), ServerFrames.error(null, refusal, sub.name()));
    } else {
      ask(sub, Reason.HANDSHAKE, sub.since());
    }
    if (handshake.complete() || (deadlinePassed && handshake.authorizationsDone())) sendConnected();
  }

  /** The subscription an authorization answers, if it is still waiting for it. */
  private Subscription authorizing(Authorized a) {
    Subscription sub = subs.get(a.scope());
    return sub != null && sub.awaitsAuthorization(a.authorization()) ? sub : null;
  }

  /** Why an authorized subscription cannot be had, or null: denied, or over max-subscriptions. */
  private ProtocolError refusal(Subscription sub, Decision d) {
    if (d != Decision.ALLOW) metrics.subscribeDenials.labelValues(sub.scope().type()).inc();
    long held = subs.values().stream().filter(s -> s != sub && !s.isAuthorizing()).count();
    return AnswerRules.refusal(d, sub.name(), held, limits.maxSubscriptions());
  }

  /** {@code api.timeout} passed: scopes whose owner has not answered are listed as pending (§13.18). */
  private void onHandshakeDeadline() {
    deadlinePassed = true;
    if (handshake.authorizationsDone()) sendConnected();
  }

  private void sendConnected() {
    timers.cancel(Timer.HANDSHAKE_DEADLINE);
    // the scopes are positioned before the client can see connected; their events wait until it is queued
    outbound.hold();
    timers.startTimerWithFixedDelay(Timer.SEND_PING, limits.heartbeatInterval());
    for (Subscription sub : List.copyOf(subs.values())) {
      if (sub.waitsForConnected()) {
        startDelivery(sub, sub.takeStart());
        if (sub.owner() == null) failover(sub); // its owner stopped during the handshake
      } else if (sub.isAsking()) {
        sub.toldPending();
        metrics.subscriptionsPending.inc();
      }
    }
    send(ServerFrames.connected(connId, claims.user(), deps.nodeId(), limits.heartbeatInterval().toMillis(),
        limits.heartbeatTimeout().toMillis(), handshake.entries()));
    handshake.errors().forEach(this::send);
    outbound.release();
    resyncsDuringHandshake.forEach(this::onScopeResync);
    resyncsDuringHandshake.clear();
    if (connectAckTo != null) ack(connectAckTo);
    connectAckTo = null;
    next = stash.unstashAll(active());
  }

  // ---- client frames -------------------------------------------------------------------------

  private void onReceived(Received r) {
    ack(r.ackTo());
    if (guard.floods()) {
      flooded("too many frames");
      return;
    }
    if (awaitingPong) {
      awaitingPong = false;
      timers.cancel(Timer.HEARTBEAT_CHECK);
    }
    if (r.frame() == TooLarge.INSTANCE) {
      close(CloseCode.FRAME_TOO_LARGE, "frame larger than " + limits.maxFrameBytes() + " bytes");
    } else if (r.frame() instanceof Text t) {
      onFrame(deps.decoder().decode(t.text()));
    } else {
      refuse(null, ProtocolError.badRequest("frames are JSON text"));
    }
  }

  private void onFrame(ClientFrame frame) {
    if (frame instanceof ClientFrame.Subscribe s) onSubscribeFrame(s);
    else if (frame instanceof ClientFrame.Unsubscribe u) onUnsubscribeFrame(u);
    else if (frame instanceof ClientFrame.Publish p) onClientPublish(p);
    else if (frame instanceof ClientFrame.PresenceQuery q) onPresenceQuery(q);
    else if (frame instanceof ClientFrame.Status s) onStatus(s);
    else if (frame instanceof ClientFrame.Ping p) send(ServerFrames.pong(p.id()));
    else if (frame instanceof ClientFrame.Refused r) refuse(r.id(), r.error());
    else if (frame instanceof ClientFrame.Connect || frame instanceof ClientFrame.MalformedConnect) {
      refuse(frame.id(), ProtocolError.badRequest("already connected"));
    }
    // a pong needs no answer: receiving it was the point
  }

  /** Answers a refused frame with an error frame; too many of them end the connection (4029). */
  private void refuse(JsonNode id, ProtocolError error) {
    send(ServerFrames.error(id, error));
    if (guard.tooManyErrors()) flooded("too many errors");
  }

  private void onSubscribeFrame(ClientFrame.Subscribe f) {
    Subscription sub = subs.get(f.scope().toString());
    if (sub == null) {
      sub = new Subscription(f.scope(), f.since());
      sub.awaitReply(f.id());
      subs.put(sub.name(), sub);
      authorize(sub, f.token());
    } else if (sub.isAsking() || sub.isAuthorizing()) {
      if (sub.wasToldPending()) {
        send(ServerFrames.subscribedPending(f.id(), sub.name()));
      } else {
        sub.awaitReply(f.id()); // answered with the owner's answer, or told pending at api.timeout
        if (sub.isAsking()) replyPendingLater(sub);
      }
    } else {
      Pair<String, Long> at = f.since() == null ? outbound.position(sub.name()) : null;
      if (at != null) {
        // subscribed already: a no-op (§4)
        send(ServerFrames.subscribed(f.id(), sub.name(), at.first(), Math.max(at.second(), sub.scopeOffset()), true));
      } else {
        sub.awaitReply(f.id()); // subscribed already: ask the owner, to answer recovered for this since (§13.4)
        askExplicitly(sub, f.since());
      }
    }
  }

  private void onAuthorized(Authorized a) {
    Subscription sub = authorizing(a);
    if (sub == null) return;
    ProtocolError refusal = refusal(sub, a.decision());
    if (refusal == null) {
      askExplicitly(sub, sub.since());
      return;
    }
    subs.remove(sub.name());
    for (JsonNode id : sub.waitingReplies()) refuse(id, refusal);
  }

  private void askExplicitly(Subscription sub, Position since) {
    ask(sub, Reason.EXPLICIT, since);
    replyPendingLater(sub);
  }

  private void replyPendingLater(Subscription sub) {
    String key = "pending:" + sub.name();
    if (!timers.isTimerActive(key)) timers.startSingleTimer(key, new ReplyPending(sub.name()), deps.settings().api().timeout());
  }

  /** The owner has not answered in time: subscribe frames waiting for it are told the scope is pending (§13.18). */
  private void onReplyPending(ReplyPending p) {
    Subscription sub = subs.get(p.scope());
    if (sub == null || !sub.isAsking() || sub.waitingReplies().isEmpty()) return;
    for (JsonNode id : sub.toldPending()) send(ServerFrames.subscribedPending(id, sub.name()));
    metrics.subscriptionsPending.inc();
  }

  private void onUnsubscribeFrame(ClientFrame.Unsubscribe f) {
    Subscription sub = subs.remove(f.scope().toString());
    if (sub != null) {
      for (String kind : List.of("sub:", "page:", "pending:")) timers.cancel(kind + sub.name());
      if (!sub.isAuthorizing()) deps.scopes().apply(sub.name()).tell(new ScopeEntity.Unsubscribe(ctx.getSelf()));
      if (sub.owner() != null) ctx.unwatch(sub.owner());
      outbound.remove(sub.name());
      for (JsonNode id : sub.waitingReplies()) {
        send(ServerFrames.error(id, ProtocolError.badRequest("unsubscribed before the subscription completed")));
      }
    }
    sendInOrder(f.scope().toString(), ServerFrames.unsubscribed(f.id(), f.scope().toString()));
  }

  // ---- asking the owner, until it answers (§13.18) -------------------------------------------

  private void ask(Subscription sub, Reason why, Position since) {
    long id = nextRequestId++;
    sub.ask(why, since, id);
    sendSubscribe(sub, id);
  }

  private void sendSubscribe(Subscription sub, long requestId) {
    deps.scopes().apply(sub.name()).tell(new ScopeEntity.Subscribe(ctx.getSelf(), deps.fanout(), claims.user(),
        sub.since(), requestId, status, statusText));
    timers.startSingleTimer("sub:" + sub.name(), new RetrySubscribe(sub.name()), sub.nextRetry(deps.random()));
  }

  private void onRetry(RetrySubscribe r) {
    Subscription sub = subs.get(r.scope());
    if (sub != null && sub.isAsking()) sendSubscribe(sub, nextRequestId++);
  }

  private void onNotYet(SubscribeNotYet n) {
    Subscription sub = subs.get(n.scope());
    if (sub == null || !sub.accepts(n.requestId())) return;
    timers.startSingleTimer("sub:" + sub.name(), new RetrySubscribe(sub.name()), sub.nextRetry(deps.random()));
  }

  private void onSubscribed(Subscribed ack) {
    Subscription sub = subs.get(ack.scope());
    if (sub == null) {
      // unsubscribed meanwhile: the owner registered a subscription nobody wants
      ack.entity().tell(new ScopeEntity.Unsubscribe(ctx.getSelf()));
      outbound.remove(ack.scope());
      return;
    }
    if (!sub.accepts(ack.requestId())) return; // an answer to a question already answered
    timers.cancel("sub:" + sub.name());
    timers.cancel("pending:" + sub.name());
    ActorRef<ScopeEntity.Command> before = sub.owner();
    Subscription.Answered answered = sub.answered(ack.offset());
    Reason why = answered.why();
    Position since = answered.since();
    if (sub.ownedBy(ack.entity())) {
      if (before != null) ctx.unwatch(before);
      ctx.watchWith(ack.entity(), new EntityStopped(sub.name(), ack.entity()));
    }
    if (since != null && why != Reason.FAILOVER) metrics.resume(ack.recovered());
    boolean recovered = AnswerRules.toldRecovered(since, ack.recovered());
    if (answered.first()) {
      metrics.subscribes.labelValues(sub.scope().type()).inc();
      AnswerRules.StartAt start = AnswerRules.firstAnswer(since, ack.epoch(), ack.offset(), ack.recovered());
      if (why == Reason.HANDSHAKE && !sub.wasToldPending()) { // delivery starts once connected is out
        handshake.answered(sub.name(), new ServerFrames.ScopeEntry(sub.name(), ack.epoch(), ack.offset(), recovered));
        sub.startOnConnected(start);
        if (handshake.complete()) sendConnected();
        return;
      }
      outbound.hold(); // positioned before the client sees subscribed; its events follow subscribed
      startDelivery(sub, start);
      replySubscribed(sub, ack, recovered, false);
      outbound.release();
      return;
    }
    // live events wait while the reply is queued and the position set again; the reply follows
    // what is queued of the scope, so everything after it agrees with it (§5)
    Pair<String, Long> at = outbound.pause(sub.name());
    replySubscribed(sub, ack, recovered, true);
    AnswerRules.Next next = at == null
        ? AnswerRules.firstAnswer(since, ack.epoch(), ack.offset(), ack.recovered())
        : AnswerRules.reanswer(why, since, at.first(), at.second(), ack.epoch(), ack.offset(), ack.recovered());
    if (next instanceof AnswerRules.Resync r) resync(sub, r.epoch(), r.offset(), r.reason());
    else startDelivery(sub, (AnswerRules.StartAt) next);
    // a new owner knows the members afresh (users only on a lost node are gone): §13.19's snapshot
    if (why == Reason.FAILOVER && deps.settings().type(sub.scope().type()).presence()) queryPresence(null, sub.name());
  }

  /**
   * @param inOrder behind the scope's queued frames (a re-answer: the client may hold events of the
   *     old position still to be written), else on the control lane (the first answer, while the
   *     scope's events are held behind it)
   */
  private void replySubscribed(Subscription sub, Subscribed ack, boolean recovered, boolean inOrder) {
    for (JsonNode id : sub.takeReplies()) {
      String frame = ServerFrames.subscribed(id, sub.name(), ack.epoch(), ack.offset(), recovered);
      if (inOrder) sendInOrder(sub.name(), frame);
      else send(frame);
    }
  }

  /** The owner is gone or changed: ask again from what was delivered (unless a question is out already). */
  private void failover(Subscription sub) {
    Pair<String, Long> at = outbound.pause(sub.name());
    cancelCatchUp(sub);
    if (sub.isAsking()) return;
    ask(sub, Reason.FAILOVER, at == null ? sub.since() : new Position(at.first(), at.second()));
  }

  private void onEntityStopped(EntityStopped s) {
    Subscription sub = subs.get(s.scope());
    if (sub == null || !sub.isOwnedBy(s.entity())) return;
    sub.ownerStopped();
    if (sub.isAnswered() && !sub.waitsForConnected()) failover(sub); // during the handshake: once connected is out
  }

  // ---- delivery: positions, catching up, resync (§5, §13.8, §13.20) --------------------------

  /** Positions the scope's cursor at what the client has; reads history first when anything is missing. */
  private void startDelivery(Subscription sub, AnswerRules.StartAt at) {
    cancelCatchUp(sub);
    switch (outbound.position(sub.name(), at.epoch(), at.from(), sub.scopeOffset(), historyLimit(sub))) {
      case OTHER_EPOCH -> failover(sub); // a newer incarnation delivered meanwhile
      case READ_HISTORY -> catchUp(sub, CatchUp.REPLAY);
      case LIVE -> { }
    }
  }

  private long historyLimit(Subscription sub) {
    return deps.settings().type(sub.scope().type()).historySize();
  }

  private void onNotice(Outbound.Notice notice) {
    if (notice instanceof Outbound.Attention a) onAttention(a);
    else if (notice == Outbound.Room.INSTANCE) onRoom();
    else if (notice instanceof Outbound.PresenceShed p) p.scopes().forEach(scope -> queryPresence(null, scope));
  }

  private void onAttention(Outbound.Attention a) {
    Subscription sub = subs.get(a.scope());
    if (sub == null || !sub.isAnswered()) return;
    switch (a.verdict()) {
      case GAP -> catchUp(sub, CatchUp.REPLAY);
      case DELIVER -> { // no room for a live event: read it from history later (unless repositioned since)
        if (outbound.fellBehind(sub.name())) catchUp(sub, CatchUp.BEHIND);
      }
      case NEW_EPOCH -> { // unless the cursor has been moved into that epoch since (a resync or an answer)
        if (outbound.sawOtherEpoch(sub.name())) failover(sub);
      }
      case TOO_FAR_BEHIND -> {
        if (sub.catchUp() == CatchUp.BEHIND) evict();
      }
      default -> { }
    }
  }

  private void catchUp(Subscription sub, CatchUp why) {
    if (sub.catchUpFor(why)) readPage(sub);
  }

  /** One page at a time, sized to the room in the send buffer: the socket paces the replay. */
  private void readPage(Subscription sub) {
    if (sub.owner() == null) {
      failover(sub);
      return;
    }
    Outbound.PageRoom room = outbound.nextPage(sub.name());
    if (room == null) return;
    if (!room.hasRoom()) { // the buffer tells once half of it is free
      sub.waitForRoom();
      return;
    }
    long request = nextRequestId++;
    sub.pageAsked(request);
    long chars = Math.max(1, Math.min(room.bytes(), MAX_PAGE_CHARS)); // a page's characters are at most its bytes
    int frames = Math.max(1, Math.min(limits.replayPage(), room.frames()));
    sub.owner().tell(new ScopeEntity.ReadHistory(room.delivered(), frames, chars, request, pageAdapter));
    timers.startSingleTimer("page:" + sub.name(), new PageTimedOut(sub.name(), request), deps.settings().api().timeout());
  }

  private void onRoom() {
    for (Subscription sub : List.copyOf(subs.values())) {
      if (sub.roomCame()) readPage(sub);
    }
  }

  private void onPage(ScopeEntity.HistoryPage page) {
    Subscription sub = subs.get(page.scope());
    if (sub == null || !sub.awaitsPage(page.request())) return;
    timers.cancel("page:" + sub.name());
    sub.pageArrived();
    sub.heardOffset(page.offset());
    Outbound.Replayed replayed = outbound.replay(sub.name(), page.epoch(), page.events(), sub.scopeOffset());
    if (replayed == null) return;
    if (!replayed.sameEpoch()) {
      failover(sub); // another incarnation answered: find out where we stand
      return;
    }
    long next = replayed.from() + 1;
    boolean hasNext = page.events().stream().anyMatch(e -> e.offset() == next);
    switch (AnswerRules.afterPage(replayed.live(), replayed.taken(), hasNext, sub.catchUp())) {
      case LIVE -> sub.caughtUp();
      case MORE -> readPage(sub);
      case WAIT_FOR_EMPTY -> {
        sub.waitForRoom();
        outbound.whenEmpty();
      }
      case RESYNC -> resync(sub, page.epoch(), Math.max(sub.scopeOffset(), outbound.target(sub.name())), "history_lost");
      case EVICT -> evict();
    }
  }

  private void onPageTimedOut(PageTimedOut t) {
    Subscription sub = subs.get(t.scope());
    if (sub != null && sub.awaitsPage(t.pageRequest())) failover(sub);
  }

  private void cancelCatchUp(Subscription sub) {
    if (sub.stopCatchingUp()) timers.cancel("page:" + sub.name());
  }

  /** The client continues from {@code epoch}/{@code offset}, told by a {@code resync} frame in order with the scope's events. */
  private void resync(Subscription sub, String epoch, long offset, String reason) {
    ctx.getLog().info("{} resyncs {} at {}/{} ({})", connId, sub.name(), epoch, offset, reason);
    metrics.resyncs.inc();
    cancelCatchUp(sub);
    sub.heardOffset(offset);
    if (outbound.resync(sub.name(), ServerFrames.resync(sub.name(), epoch, offset, reason), epoch, offset) == Outbound.Offer.FULL) {
      evict();
    } else if (!outbound.goLive(sub.name(), offset)) {
      catchUp(sub, CatchUp.REPLAY);
    }
  }

  private void onScopeResync(ScopeResync r) {
    Subscription sub = subs.get(r.scope());
    if (sub != null && sub.isReady()) resync(sub, r.epoch(), r.offset(), r.reason());
  }

  // ---- client events, presence, status (§6, §7) ----------------------------------------------

  /** The subscription a frame about {@code scope} needs, or null after refusing the frame. */
  private Subscription subscribed(JsonNode id, ScopeId scope) {
    Subscription sub = subs.get(scope.toString());
    if (sub == null) {
      refuse(id, ProtocolError.of(ErrorCode.NOT_SUBSCRIBED, "not subscribed to " + scope));
    } else if (!sub.isReady()) {
      refuse(id, ProtocolError.of(ErrorCode.UNAVAILABLE, "the subscription to " + scope + " is pending, try again"));
    } else {
      return sub;
    }
    return null;
  }

  private void onClientPublish(ClientFrame.Publish p) {
    Subscription sub = subscribed(p.id(), p.scope());
    if (sub == null) return;
    if (!deps.settings().type(p.scope().type()).clientEvents().contains(p.event())) {
      refuse(p.id(), ProtocolError.of(ErrorCode.FORBIDDEN,
          "client event '" + p.event() + "' is not allowed in " + p.scope().type() + " scopes"));
      return;
    }
    TokenBucket bucket = sub.clientEvents(() -> new TokenBucket(deps.settings().clientEvents().ratePerSecond(),
        deps.settings().clientEvents().burst(), deps.clock()));
    if (!bucket.tryTake()) {
      metrics.rateLimited.inc();
      refuse(p.id(), ProtocolError.of(ErrorCode.RATE_LIMITED, "too many client events in " + p.scope()));
      return;
    }
    sub.owner().tell(new ScopeEntity.ClientPublish(ctx.getSelf(), claims.user(), p.event(), p.payloadJson()));
    send(ServerFrames.ack(p.id()));
  }

  private void onPresenceQuery(ClientFrame.PresenceQuery q) {
    if (!deps.settings().type(q.scope().type()).presence()) {
      refuse(q.id(), ProtocolError.badRequest("scope type " + q.scope().type() + " has no presence"));
    } else if (subscribed(q.id(), q.scope()) != null) {
      queryPresence(q.id(), q.scope().toString());
    }
  }

  /**
   * Asks the owner for the members; {@code id} null: an unsolicited snapshot (§13.19 after an owner
   * change, §13.21 after presence frames were shed). The owner sends the reply frame through this
   * node's fanout, behind the presence frames it sent before, and confirms to the ask.
   */
  private void queryPresence(JsonNode id, String scope) {
    Subscription sub = subs.get(scope);
    if (sub == null || sub.owner() == null) return;
    String idJson = id == null ? null : id.toString();
    ctx.ask(ScopeEntity.PresenceMembers.class, sub.owner(), deps.settings().api().timeout(),
        replyTo -> new ScopeEntity.GetPresence(replyTo, new ScopeEntity.PresenceReplyTo(ctx.getSelf(), deps.fanout(), idJson)),
        (members, err) -> new PresenceAnswer(id, scope, err == null ? members : null));
  }

  private void onPresenceAnswer(PresenceAnswer a) {
    if (a.members() == null && a.id() != null) {
      send(ServerFrames.error(a.id(), ProtocolError.of(ErrorCode.UNAVAILABLE, "scope " + a.scope() + " did not answer, try again")));
    }
  }

  /** A status frame goes to the user's own scope, which tells every connection of the user (this one too). */
  private void onStatus(ClientFrame.Status s) {
    deps.scopes().apply(ScopeId.user(claims.user()).toString())
        .tell(new ScopeEntity.SetUserStatus(s.status(), s.text(), ctx.getSelf()));
    send(ServerFrames.ack(s.id()));
  }

  /** The user's status changed (through any of their connections): every presence scope of this connection hears it, with its origin. */
  private void onUserStatus(UserStatus u) {
    if (u.status().equals(status) && u.text().equals(statusText)) return;
    status = u.status();
    statusText = u.text();
    for (Subscription sub : subs.values()) {
      if (!sub.isAuthorizing() && deps.settings().type(sub.scope().type()).presence()) {
        deps.scopes().apply(sub.name()).tell(new ScopeEntity.UpdateStatus(ctx.getSelf(), status, statusText, u.origin()));
      }
    }
  }

  // ---- heartbeat (§8) ------------------------------------------------------------------------

  private void onSendPing() {
    send(ServerFrames.PING);
    if (!awaitingPong) {
      awaitingPong = true;
      timers.startSingleTimer(Timer.HEARTBEAT_CHECK, limits.heartbeatTimeout());
    }
  }

  // ---- sending and closing -------------------------------------------------------------------

  /** A reply or other control frame: it goes ahead of queued events. */
  private void send(String json) {
    if (outbound.offer(json) == Outbound.Offer.FULL) evict();
  }

  /** A frame that must follow what is queued of the scope (unsubscribed, presence replies). */
  private void sendInOrder(String scope, String json) {
    if (outbound.offer(scope, json, Outbound.Kind.ESSENTIAL) == Outbound.Offer.FULL) evict();
  }

  private void evict() {
    if (closed) return;
    metrics.slowConsumerEvictions.inc();
    close(CloseCode.SLOW_CONSUMER);
  }

  private void flooded(String reason) {
    metrics.floodDisconnects.inc();
    close(CloseCode.FLOOD, reason);
  }

  private void close(CloseCode code, String reason) {
    close(code.because(reason));
  }

  /** Sends {@code disconnect} ahead of anything queued, then the stream ends and the socket closes (§8). */
  private void close(CloseCode close) {
    if (closed) return;
    closed = true;
    timers.cancelAll();
    int dropped = outbound.finish(ServerFrames.disconnect(close.code(), close.reason(), close.reconnect()));
    if (dropped > 0) metrics.framesDropped.inc(dropped);
    if (connectAckTo != null) ack(connectAckTo);
    connectAckTo = null;
    timers.startSingleTimer(Timer.CLOSE_TIMEOUT, limits.closeGrace());
  }
}
