package io.scopecast.actors;

import com.fasterxml.jackson.databind.JsonNode;
import io.scopecast.actors.auth.InvalidTokenException;
import io.scopecast.actors.auth.ScopeAuthorizer;
import io.scopecast.actors.auth.ScopeAuthorizer.Decision;
import io.scopecast.actors.auth.TokenVerifier;
import io.scopecast.actors.auth.UserClaims;
import io.scopecast.actors.connection.ErrorWindow;
import io.scopecast.actors.connection.Outbound;
import io.scopecast.actors.connection.TokenBucket;
import io.scopecast.actors.history.HistoryEntry;
import io.scopecast.actors.metrics.ScopecastMetrics;
import io.scopecast.actors.protocol.ClientFrame;
import io.scopecast.actors.protocol.ClientFrameDecoder;
import io.scopecast.actors.protocol.ErrorCode;
import io.scopecast.actors.protocol.Position;
import io.scopecast.actors.protocol.ProtocolError;
import io.scopecast.actors.protocol.ScopeId;
import io.scopecast.actors.protocol.ServerFrames;
import io.scopecast.actors.settings.ScopecastSettings;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.RecipientRef;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;

/**
 * One per WebSocket. It owns everything about its connection: the handshake (§2), the user's
 * subscriptions and their positions, heartbeats (§8), limits, and the {@link Outbound} send
 * buffer. Inbound frames arrive from the socket stream one at a time (acknowledged, so the socket
 * is read no faster than this actor works); events arrive from the node's {@link NodeFanout}.
 *
 * <p>Per subscription it keeps the last offset it delivered, so that nothing reaches the client
 * twice or with a gap: live events that overtake a replay wait until it is done, a gap in live
 * events is filled from history, and the loss of a scope's owner (its entity stops) leads to a
 * re-subscribe with {@code since} = the last delivered position. Where history cannot fill a
 * gap, the client is told with {@code resync}.
 */
public final class ConnectionActor extends AbstractBehavior<ConnectionActor.Command> {

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

  /** The scope entity's answer to a subscribe, relayed by the fanout ahead of the scope's events. */
  public record Subscribed(String scope, ActorRef<ScopeEntity.Command> entity, String epoch, long offset,
      boolean recovered, long requestId) implements Command {}

  /** A durable event; {@code frame} is the encoded event frame shared by every subscriber. */
  public record Event(String scope, String epoch, long offset, String frame, long ts) implements Command {}

  /** An ephemeral frame (client event, presence change) for this connection. */
  public record Ephemeral(String scope, String frame) implements Command {}

  /** The scope started a new epoch (after a Redis outage): continue from its position, after a resync frame. */
  public record ScopeResync(String scope, String epoch, long offset, String reason) implements Command {}

  /** The user's status, from the user's own scope (shared by all their connections). */
  public record UserStatus(String status, String text) implements Command {}

  /** Close this connection with a {@code disconnect} frame (kick, shutdown). */
  public record Disconnect(int code, String reason, boolean reconnect) implements Command {
    public static Disconnect goingAway() {
      return new Disconnect(1001, "server shutting down", true);
    }
  }

  // ---- internal ------------------------------------------------------------------------------

  private record PageArrived(ScopeEntity.HistoryPage page) implements Command {}

  private record ReplayTaken(String scope, long pageRequest) implements Command {}

  private record Authorized(String scope, long requestId, Decision decision) implements Command {}

  private record EntityStopped(String scope, ActorRef<ScopeEntity.Command> entity) implements Command {}

  private record SubscribeTimedOut(String scope, long requestId) implements Command {}

  private record PageTimedOut(String scope, long pageRequest) implements Command {}

  private record PresenceAnswer(JsonNode id, String scope, ScopeEntity.PresenceMembers members) implements Command {}

  private enum Timer implements Command { HANDSHAKE_TIMEOUT, SEND_PING, HEARTBEAT_CHECK, CLOSE_TIMEOUT }

  /** What every connection actor of a node shares. */
  public record Deps(
      ScopecastSettings settings,
      ScopecastMetrics metrics,
      String nodeId,
      Function<String, RecipientRef<ScopeEntity.Command>> scopes,
      ActorRef<NodeFanout.Command> fanout,
      TokenVerifier tokens,
      ScopeAuthorizer authorizer,
      ClientFrameDecoder decoder) {}

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
              new ConnectionActor(ctx, timers, deps, r.outbound(), connId, upgradeClaims, queryWorkspace)))
          .onMessageEquals(Timer.HANDSHAKE_TIMEOUT, Behaviors::stopped) // the socket's stream never started
          .onAnyMessage(m -> {
            stash.stash(m);
            return Behaviors.same();
          })
          .build();
    })));
  }

  // ---- state ---------------------------------------------------------------------------------

  private enum Phase { AWAIT_CONNECT, HANDSHAKE, ACTIVE, CLOSING }

  /** Why a subscribe request was sent to a scope entity. */
  private enum Request { HANDSHAKE, EXPLICIT, FAILOVER }

  private enum Stage { AUTHORIZING, SUBSCRIBING, ACTIVE }

  /** One subscription and its delivery position. */
  private static final class Sub {
    final ScopeId scope;
    final String name;
    Stage stage = Stage.AUTHORIZING;
    /** The outstanding authorize or subscribe request (0: none) and why it was sent. */
    long requestId;
    Request request;
    Position since;
    String token;
    final List<JsonNode> replyIds = new ArrayList<>();
    ActorRef<ScopeEntity.Command> entity;
    String epoch;
    long lastDelivered;
    long replayTarget;
    boolean replaying;
    long pageRequest;
    final ArrayDeque<Event> buffered = new ArrayDeque<>();
    TokenBucket clientEvents;

    Sub(ScopeId scope) {
      this.scope = scope;
      this.name = scope.toString();
    }
  }

  private final TimerScheduler<Command> timers;
  private final Deps deps;
  private final ScopecastSettings.Connection limits;
  private final ScopecastMetrics metrics;
  private final Outbound outbound;
  private final String connId;
  private final String queryWorkspace;
  private final TokenBucket flood;
  private final ErrorWindow errors;
  private final ActorRef<ScopeEntity.HistoryPage> pageAdapter;

  private Phase phase = Phase.AWAIT_CONNECT;
  private UserClaims claims;
  private String workspace;
  private final Map<String, Sub> subs = new LinkedHashMap<>();
  private long nextRequestId = 1;
  private long unansweredPingSince;
  /** The user's status as this connection knows it; sent with subscribes to presence scopes. */
  private String status = "online";
  private String statusText = "";
  /** Handshake: the scopes of the connected frame in order, their entries once answered, and the error frames that follow it. */
  private final LinkedHashMap<String, ServerFrames.ScopeEntry> handshakeEntries = new LinkedHashMap<>();
  private final List<String> handshakeErrors = new ArrayList<>();
  private final Map<String, Decision> handshakeDecisions = new HashMap<>();
  private final List<ClientFrame.ResumeEntry> handshakeResume = new ArrayList<>();
  private int handshakeOutstanding;
  private ActorRef<StreamAck> connectAckTo;

  private ConnectionActor(ActorContext<Command> ctx, TimerScheduler<Command> timers, Deps deps, Outbound outbound,
      String connId, UserClaims upgradeClaims, String queryWorkspace) {
    super(ctx);
    this.timers = timers;
    this.deps = deps;
    this.limits = deps.settings().connection();
    this.metrics = deps.metrics();
    this.outbound = outbound;
    this.connId = connId;
    this.claims = upgradeClaims;
    this.queryWorkspace = queryWorkspace;
    this.flood = new TokenBucket(limits.flood().framesPerSecond(), limits.flood().burst());
    this.errors = new ErrorWindow(limits.flood().maxErrors(), limits.flood().errorWindow().toNanos());
    this.pageAdapter = ctx.messageAdapter(ScopeEntity.HistoryPage.class, PageArrived::new);
    metrics.connectionsOpened.inc();
    metrics.connectionsActive.inc();
    deps.fanout().tell(new NodeFanout.Register(ctx.getSelf()));
    timers.startSingleTimer(Timer.HANDSHAKE_TIMEOUT, limits.handshakeTimeout());
  }

  @Override
  public Receive<Command> createReceive() {
    return newReceiveBuilder()
        .onMessage(StreamStarted.class, s -> ack(s.ackTo()))
        .onMessage(Received.class, this::onReceived)
        .onMessageEquals(StreamEnded.INSTANCE, Behaviors::stopped)
        .onMessage(StreamFailed.class, f -> Behaviors.stopped())
        .onMessage(Subscribed.class, this::onSubscribed)
        .onMessage(Event.class, this::onEvent)
        .onMessage(Ephemeral.class, this::onEphemeral)
        .onMessage(PageArrived.class, this::onPage)
        .onMessage(ReplayTaken.class, this::onReplayTaken)
        .onMessage(Authorized.class, this::onAuthorized)
        .onMessage(EntityStopped.class, this::onEntityStopped)
        .onMessage(SubscribeTimedOut.class, this::onSubscribeTimedOut)
        .onMessage(PageTimedOut.class, this::onPageTimedOut)
        .onMessage(Disconnect.class, d -> close(d.code(), d.reason(), d.reconnect()))
        .onMessage(UserStatus.class, this::onUserStatus)
        .onMessage(ScopeResync.class, this::onScopeResync)
        .onMessage(PresenceAnswer.class, this::onPresenceAnswer)
        .onMessageEquals(Timer.HANDSHAKE_TIMEOUT, () -> close(4001, "no connect frame within the handshake timeout", false))
        .onMessageEquals(Timer.SEND_PING, this::onSendPing)
        .onMessageEquals(Timer.HEARTBEAT_CHECK, () -> close(4009, "heartbeat timeout", true))
        .onMessageEquals(Timer.CLOSE_TIMEOUT, this::onCloseTimeout)
        .onSignal(PostStop.class, s -> onStop())
        .build();
  }

  // ---- inbound frames ------------------------------------------------------------------------

  private Behavior<Command> ack(ActorRef<StreamAck> ackTo) {
    ackTo.tell(StreamAck.INSTANCE);
    return this;
  }

  private Behavior<Command> onReceived(Received r) {
    if (phase == Phase.CLOSING) return ack(r.ackTo());
    if (!flood.tryTake()) {
      metrics.floodDisconnects.inc();
      close(4029, "too many frames", true);
      return ack(r.ackTo());
    }
    if (unansweredPingSince != 0) {
      unansweredPingSince = 0;
      timers.cancel(Timer.HEARTBEAT_CHECK);
    }
    if (r.frame() == TooLarge.INSTANCE) {
      close(1009, "frame larger than " + limits.maxFrameBytes() + " bytes", false);
      return ack(r.ackTo());
    }
    if (phase == Phase.AWAIT_CONNECT) {
      ClientFrame frame = r.frame() instanceof Text t ? deps.decoder().decode(t.text()) : null;
      if (frame instanceof ClientFrame.Connect c) {
        connectAckTo = r.ackTo(); // the socket is read again once the handshake is done
        return onConnect(c);
      }
      close(4400, frame instanceof ClientFrame.MalformedConnect m ? m.reason() : "the first frame must be connect", false);
      return ack(r.ackTo());
    }
    if (r.frame() instanceof Text t) {
      onFrame(deps.decoder().decode(t.text()));
    } else {
      refuse(null, ProtocolError.badRequest("frames are JSON text"), null);
    }
    return ack(r.ackTo());
  }

  private void onFrame(ClientFrame frame) {
    if (frame instanceof ClientFrame.Subscribe s) onSubscribeFrame(s);
    else if (frame instanceof ClientFrame.Unsubscribe u) onUnsubscribeFrame(u);
    else if (frame instanceof ClientFrame.Publish p) onClientPublish(p);
    else if (frame instanceof ClientFrame.PresenceQuery q) onPresenceQuery(q);
    else if (frame instanceof ClientFrame.Status s) onStatus(s);
    else if (frame instanceof ClientFrame.Ping p) send(ServerFrames.pong(p.id()));
    else if (frame instanceof ClientFrame.Refused r) refuse(r.id(), r.error(), null);
    else if (frame instanceof ClientFrame.Connect || frame instanceof ClientFrame.MalformedConnect) {
      refuse(frame.id(), ProtocolError.badRequest("already connected"), null);
    }
    // a pong needs no answer: receiving it was the point
  }

  /** Answers a refused frame with an error frame; too many of them end the connection (4029). */
  private void refuse(JsonNode id, ProtocolError error, String scope) {
    send(ServerFrames.error(id, error, scope));
    if (errors.record(System.nanoTime())) {
      metrics.floodDisconnects.inc();
      close(4029, "too many errors", true);
    }
  }

  // ---- handshake (§2) ------------------------------------------------------------------------

  private Behavior<Command> onConnect(ClientFrame.Connect c) {
    timers.cancel(Timer.HANDSHAKE_TIMEOUT);
    if (claims == null) {
      try {
        claims = deps.tokens().verifyUser(c.token());
      } catch (InvalidTokenException e) {
        return close(4001, "invalid or expired token", false);
      }
    }
    workspace = c.workspace() != null ? c.workspace() : queryWorkspace;
    if (workspace != null && !claims.grantsWorkspace(workspace)) {
      return close(4003, "workspace " + workspace + " is not granted by the token", false);
    }
    phase = Phase.HANDSHAKE;
    List<ScopeId> automatic = new ArrayList<>();
    automatic.add(ScopeId.user(claims.user()));
    if (workspace != null) automatic.add(ScopeId.workspace(workspace));
    for (ScopeId scope : automatic) {
      handshakeEntries.put(scope.toString(), null);
      subs.put(scope.toString(), new Sub(scope));
    }
    for (ClientFrame.ResumeEntry e : c.resume()) {
      if (e.error() != null) {
        handshakeErrors.add(ServerFrames.error(null, e.error(), e.scopeText()));
      } else if (subs.containsKey(e.scope().toString())) {
        subs.get(e.scope().toString()).since = e.since();
      } else {
        handshakeResume.add(e);
      }
    }
    handshakeOutstanding = handshakeResume.size();
    if (handshakeOutstanding == 0) return subscribeHandshakeScopes();
    for (ClientFrame.ResumeEntry e : handshakeResume) {
      String name = e.scope().toString();
      getContext().pipeToSelf(
          deps.authorizer().authorize(new ScopeAuthorizer.Request(claims, e.scope(), null, workspace)),
          (d, err) -> new Authorized(name, 0, err != null || d == null ? Decision.UNAVAILABLE : d));
    }
    return this;
  }

  private Behavior<Command> onHandshakeAuthorized(Authorized a) {
    handshakeDecisions.put(a.scope(), a.decision());
    if (--handshakeOutstanding > 0) return this;
    for (ClientFrame.ResumeEntry e : handshakeResume) {
      String name = e.scope().toString();
      Decision d = handshakeDecisions.get(name);
      if (d != Decision.ALLOW) {
        metrics.subscribeDenials.labelValues(e.scope().type()).inc();
        handshakeErrors.add(ServerFrames.error(null, denial(d, name), name));
      } else if (subs.size() >= limits.maxSubscriptions()) {
        handshakeErrors.add(ServerFrames.error(null, ProtocolError.of(ErrorCode.LIMIT_EXCEEDED,
            "more than " + limits.maxSubscriptions() + " subscriptions"), name));
      } else {
        Sub sub = new Sub(e.scope());
        sub.since = e.since();
        subs.put(name, sub);
        handshakeEntries.put(name, null);
      }
    }
    return subscribeHandshakeScopes();
  }

  private Behavior<Command> subscribeHandshakeScopes() {
    handshakeOutstanding = subs.size();
    for (Sub sub : List.copyOf(subs.values())) sendSubscribe(sub, sub.since, Request.HANDSHAKE);
    return this;
  }

  private void handshakeAnswered(String scope, ServerFrames.ScopeEntry entry, String error) {
    if (entry != null) handshakeEntries.put(scope, entry);
    else {
      handshakeEntries.remove(scope);
      handshakeErrors.add(error);
    }
    if (--handshakeOutstanding > 0) return;
    send(ServerFrames.connected(connId, claims.user(), deps.nodeId(), limits.heartbeatInterval().toMillis(),
        limits.heartbeatTimeout().toMillis(), handshakeEntries.values()));
    handshakeErrors.forEach(this::send);
    handshakeEntries.clear();
    handshakeErrors.clear();
    handshakeDecisions.clear();
    handshakeResume.clear();
    phase = Phase.ACTIVE;
    timers.startTimerWithFixedDelay(Timer.SEND_PING, limits.heartbeatInterval());
    for (Sub sub : List.copyOf(subs.values())) {
      if (sub.stage == Stage.ACTIVE) continueDelivery(sub);
    }
    if (connectAckTo != null) ack(connectAckTo);
    connectAckTo = null;
  }

  // ---- subscribe / unsubscribe (§4, §9) ------------------------------------------------------

  private void onSubscribeFrame(ClientFrame.Subscribe f) {
    String name = f.scope().toString();
    Sub sub = subs.get(name);
    if (sub != null) {
      sub.replyIds.add(f.id());
      if (sub.requestId == 0) sendSubscribe(sub, f.since(), Request.EXPLICIT);
      return;
    }
    sub = new Sub(f.scope());
    sub.token = f.token();
    sub.since = f.since();
    sub.replyIds.add(f.id());
    sub.requestId = nextRequestId++;
    sub.request = Request.EXPLICIT;
    subs.put(name, sub);
    long requestId = sub.requestId;
    getContext().pipeToSelf(
        deps.authorizer().authorize(new ScopeAuthorizer.Request(claims, f.scope(), f.token(), workspace)),
        (d, err) -> new Authorized(name, requestId, err != null || d == null ? Decision.UNAVAILABLE : d));
  }

  private Behavior<Command> onAuthorized(Authorized a) {
    if (phase == Phase.CLOSING) return this;
    if (phase == Phase.HANDSHAKE && a.requestId() == 0) return onHandshakeAuthorized(a);
    Sub sub = subs.get(a.scope());
    if (sub == null || sub.stage != Stage.AUTHORIZING || sub.requestId != a.requestId()) return this;
    if (a.decision() != Decision.ALLOW) {
      subs.remove(a.scope());
      metrics.subscribeDenials.labelValues(sub.scope.type()).inc();
      for (JsonNode id : sub.replyIds) refuse(id, denial(a.decision(), a.scope()), null);
      return this;
    }
    long others = subs.values().stream().filter(s -> s != sub && s.stage != Stage.AUTHORIZING).count();
    if (others >= limits.maxSubscriptions()) {
      subs.remove(a.scope());
      ProtocolError e = ProtocolError.of(ErrorCode.LIMIT_EXCEEDED, "more than " + limits.maxSubscriptions() + " subscriptions");
      for (JsonNode id : sub.replyIds) refuse(id, e, null);
      return this;
    }
    sendSubscribe(sub, sub.since, Request.EXPLICIT);
    return this;
  }

  private static ProtocolError denial(Decision d, String scope) {
    return d == Decision.UNAVAILABLE
        ? ProtocolError.of(ErrorCode.UNAVAILABLE, "authorization for " + scope + " is unavailable, try again")
        : ProtocolError.of(ErrorCode.FORBIDDEN, "not allowed to subscribe to " + scope);
  }

  private void sendSubscribe(Sub sub, Position since, Request why) {
    sub.requestId = nextRequestId++;
    sub.request = why;
    sub.since = since;
    if (sub.stage == Stage.AUTHORIZING) sub.stage = Stage.SUBSCRIBING;
    deps.scopes().apply(sub.name).tell(
        new ScopeEntity.Subscribe(getContext().getSelf(), deps.fanout(), claims.user(), since, sub.requestId, status,
            statusText));
    timers.startSingleTimer(timerKey("sub", sub.name), new SubscribeTimedOut(sub.name, sub.requestId),
        deps.settings().api().timeout());
  }

  private Behavior<Command> onSubscribed(Subscribed ack) {
    Sub sub = subs.get(ack.scope());
    if (sub == null || sub.requestId != ack.requestId() || phase == Phase.CLOSING) return this;
    timers.cancel(timerKey("sub", sub.name));
    Request why = sub.request;
    Position since = sub.since;
    sub.requestId = 0;
    sub.request = null;
    sub.since = null;
    if (!ack.entity().equals(sub.entity)) {
      if (sub.entity != null) getContext().unwatch(sub.entity);
      sub.entity = ack.entity();
      getContext().watchWith(ack.entity(), new EntityStopped(sub.name, ack.entity()));
    }
    if (since != null && why != Request.FAILOVER) metrics.resume(ack.recovered());
    if (sub.stage != Stage.ACTIVE) {
      sub.stage = Stage.ACTIVE;
      metrics.subscribes.labelValues(sub.scope.type()).inc();
      sub.epoch = ack.epoch();
      boolean replay = since != null && ack.recovered();
      sub.lastDelivered = replay ? since.offset() : ack.offset();
      sub.replayTarget = ack.offset();
    } else if (!ack.epoch().equals(sub.epoch) || (why == Request.FAILOVER && !ack.recovered())) {
      resync(sub, ack.epoch(), ack.offset(), ack.epoch().equals(sub.epoch) ? "owner_lost_history" : "epoch_changed");
    } else {
      if (why == Request.EXPLICIT && since != null && ack.recovered() && since.offset() > sub.lastDelivered) {
        sub.lastDelivered = since.offset();
      }
      if (why == Request.FAILOVER || (since != null && ack.recovered())) {
        sub.replayTarget = Math.max(sub.replayTarget, ack.offset());
      }
      sub.replaying = false;
    }
    sub.buffered.removeIf(e -> !e.epoch().equals(sub.epoch));
    boolean recovered = since == null || ack.recovered();
    if (why == Request.HANDSHAKE) {
      handshakeAnswered(sub.name, new ServerFrames.ScopeEntry(sub.name, ack.epoch(), ack.offset(), recovered), null);
      return this;
    }
    for (JsonNode id : sub.replyIds) send(ServerFrames.subscribed(id, sub.name, ack.epoch(), ack.offset(), recovered));
    sub.replyIds.clear();
    if (phase == Phase.ACTIVE) continueDelivery(sub);
    return this;
  }

  private Behavior<Command> onSubscribeTimedOut(SubscribeTimedOut t) {
    Sub sub = subs.get(t.scope());
    if (sub == null || sub.requestId != t.requestId()) return this;
    Request why = sub.request;
    if (why == Request.FAILOVER) {
      sendSubscribe(sub, sub.since, Request.FAILOVER); // the scope's owner is moving: keep asking
      return this;
    }
    ProtocolError e = ProtocolError.of(ErrorCode.UNAVAILABLE, "scope " + sub.name + " did not answer, try again");
    sub.requestId = 0;
    sub.request = null;
    if (sub.stage != Stage.ACTIVE) {
      subs.remove(sub.name);
      deps.scopes().apply(sub.name).tell(new ScopeEntity.Unsubscribe(getContext().getSelf()));
    }
    if (why == Request.HANDSHAKE) {
      handshakeAnswered(sub.name, null, ServerFrames.error(null, e, sub.name));
      return this;
    }
    for (JsonNode id : sub.replyIds) send(ServerFrames.error(id, e, null));
    sub.replyIds.clear();
    return this;
  }

  private void onUnsubscribeFrame(ClientFrame.Unsubscribe f) {
    Sub sub = subs.remove(f.scope().toString());
    if (sub != null) {
      timers.cancel(timerKey("sub", sub.name));
      timers.cancel(timerKey("page", sub.name));
      if (sub.stage != Stage.AUTHORIZING) {
        deps.scopes().apply(sub.name).tell(new ScopeEntity.Unsubscribe(getContext().getSelf()));
      }
      if (sub.entity != null) getContext().unwatch(sub.entity);
      for (JsonNode id : sub.replyIds) {
        send(ServerFrames.error(id, ProtocolError.badRequest("unsubscribed before the subscription completed"), null));
      }
    }
    send(ServerFrames.unsubscribed(f.id(), f.scope().toString()));
  }

  // ---- client events, presence, status (§6, §7) ----------------------------------------------

  private void onClientPublish(ClientFrame.Publish p) {
    Sub sub = subs.get(p.scope().toString());
    if (sub == null || sub.stage != Stage.ACTIVE) {
      refuse(p.id(), ProtocolError.of(ErrorCode.NOT_SUBSCRIBED, "not subscribed to " + p.scope()), null);
      return;
    }
    if (!deps.settings().type(p.scope().type()).clientEvents().contains(p.event())) {
      refuse(p.id(), ProtocolError.of(ErrorCode.FORBIDDEN,
          "client event '" + p.event() + "' is not allowed in " + p.scope().type() + " scopes"), null);
      return;
    }
    if (sub.clientEvents == null) {
      sub.clientEvents = new TokenBucket(deps.settings().clientEvents().ratePerSecond(), deps.settings().clientEvents().burst());
    }
    if (!sub.clientEvents.tryTake()) {
      metrics.rateLimited.inc();
      refuse(p.id(), ProtocolError.of(ErrorCode.RATE_LIMITED, "too many client events in " + p.scope()), null);
      return;
    }
    deps.scopes().apply(sub.name).tell(
        new ScopeEntity.ClientPublish(getContext().getSelf(), claims.user(), p.event(), p.payloadJson()));
    send(ServerFrames.ack(p.id()));
  }

  private void onPresenceQuery(ClientFrame.PresenceQuery q) {
    if (!deps.settings().type(q.scope().type()).presence()) {
      refuse(q.id(), ProtocolError.badRequest("scope type " + q.scope().type() + " has no presence"), null);
      return;
    }
    Sub sub = subs.get(q.scope().toString());
    if (sub == null || sub.stage != Stage.ACTIVE) {
      refuse(q.id(), ProtocolError.of(ErrorCode.NOT_SUBSCRIBED, "not subscribed to " + q.scope()), null);
      return;
    }
    String scope = sub.name;
    RecipientRef<ScopeEntity.Command> owner = sub.entity != null ? sub.entity : deps.scopes().apply(scope);
    getContext().ask(ScopeEntity.PresenceMembers.class, owner, deps.settings().api().timeout(),
        ScopeEntity.GetPresence::new, (members, err) -> new PresenceAnswer(q.id(), scope, err == null ? members : null));
  }

  private Behavior<Command> onPresenceAnswer(PresenceAnswer a) {
    if (a.members() == null) {
      send(ServerFrames.error(a.id(), ProtocolError.of(ErrorCode.UNAVAILABLE, "scope " + a.scope() + " did not answer, try again")));
    } else {
      send(ServerFrames.presence(a.id(), a.scope(), a.members().members()));
    }
    return this;
  }

  /** A status frame goes to the user's own scope, which tells every connection of the user (this one too). */
  private void onStatus(ClientFrame.Status s) {
    deps.scopes().apply(ScopeId.user(claims.user()).toString()).tell(new ScopeEntity.SetUserStatus(s.status(), s.text()));
    send(ServerFrames.ack(s.id()));
  }

  private Behavior<Command> onUserStatus(UserStatus u) {
    if (u.status().equals(status) && u.text().equals(statusText)) return this;
    status = u.status();
    statusText = u.text();
    for (Sub sub : subs.values()) {
      if (sub.stage != Stage.AUTHORIZING && deps.settings().type(sub.scope.type()).presence()) {
        deps.scopes().apply(sub.name).tell(new ScopeEntity.UpdateStatus(getContext().getSelf(), status, statusText));
      }
    }
    return this;
  }

  // ---- delivery (§5) -------------------------------------------------------------------------

  private Behavior<Command> onEvent(Event e) {
    Sub sub = subs.get(e.scope());
    if (sub == null) return this;
    if (sub.buffered.isEmpty() && ready(sub) && e.epoch().equals(sub.epoch) && e.offset() == sub.lastDelivered + 1) {
      emit(sub, e.offset(), e.frame(), e.ts()); // the common case: the next event, nothing waiting
      return this;
    }
    if (sub.buffered.size() >= limits.outboundBuffer()) {
      evict();
      return this;
    }
    sub.buffered.addLast(e);
    if (ready(sub)) drain(sub);
    return this;
  }

  /** Live events can go out: connected, subscribed, not replaying, not re-subscribing after a failover. */
  private boolean ready(Sub sub) {
    return phase == Phase.ACTIVE && sub.stage == Stage.ACTIVE && !sub.replaying && sub.request != Request.FAILOVER;
  }

  /** Delivers waiting events in order: drops duplicates, fills a gap from history first. */
  private void drain(Sub sub) {
    while (!sub.buffered.isEmpty() && phase == Phase.ACTIVE) {
      Event e = sub.buffered.peekFirst();
      if (!e.epoch().equals(sub.epoch)) {
        failover(sub); // a new incarnation of the scope delivers: find out where we stand
        return;
      }
      if (e.offset() > sub.lastDelivered + 1) {
        sub.replayTarget = e.offset() - 1;
        startReplay(sub);
        return;
      }
      sub.buffered.pollFirst();
      if (e.offset() == sub.lastDelivered + 1) emit(sub, e.offset(), e.frame(), e.ts());
    }
  }

  private void emit(Sub sub, long offset, String frame, long ts) {
    sub.lastDelivered = offset;
    if (outbound.offer(new Outbound.Text(frame, ts)) == Outbound.Offer.FULL) evict();
  }

  /** Replays what is missing, or goes live and delivers what waited. */
  private void continueDelivery(Sub sub) {
    if (phase != Phase.ACTIVE) return;
    if (sub.lastDelivered < sub.replayTarget) {
      if (!sub.replaying) startReplay(sub);
      return;
    }
    sub.replaying = false;
    if (ready(sub)) drain(sub);
  }

  private void resync(Sub sub, String epoch, long offset, String reason) {
    getContext().getLog().info("{} resyncs {} at {}/{} ({}; had {}/{})", connId, sub.name, epoch, offset, reason, sub.epoch,
        sub.lastDelivered);
    sub.epoch = epoch;
    sub.lastDelivered = offset;
    sub.replayTarget = offset;
    sub.replaying = false;
    metrics.resyncs.inc();
    send(ServerFrames.resync(sub.name, epoch, offset, reason));
  }

  private Behavior<Command> onScopeResync(ScopeResync r) {
    Sub sub = subs.get(r.scope());
    if (sub == null || sub.stage != Stage.ACTIVE || phase == Phase.CLOSING) return this;
    resync(sub, r.epoch(), r.offset(), r.reason());
    sub.buffered.removeIf(e -> !e.epoch().equals(sub.epoch) || e.offset() <= sub.lastDelivered);
    if (ready(sub)) drain(sub);
    return this;
  }

  /** The scope's owner is gone or changed: subscribe again from the last delivered position. */
  private void failover(Sub sub) {
    if (sub.requestId != 0) return;
    sub.replaying = false;
    sendSubscribe(sub, new Position(sub.epoch, sub.lastDelivered), Request.FAILOVER);
  }

  private Behavior<Command> onEntityStopped(EntityStopped s) {
    Sub sub = subs.get(s.scope());
    if (sub != null && s.entity().equals(sub.entity)) {
      sub.entity = null;
      if (sub.stage == Stage.ACTIVE) failover(sub);
    }
    return this;
  }

  // ---- replay, paced by the client's reading (§13.8) -----------------------------------------

  private void startReplay(Sub sub) {
    sub.replaying = true;
    requestPage(sub);
  }

  private void requestPage(Sub sub) {
    if (sub.entity == null) {
      failover(sub);
      return;
    }
    sub.pageRequest = nextRequestId++;
    int limit = (int) Math.min(limits.replayPage(), sub.replayTarget - sub.lastDelivered);
    sub.entity.tell(new ScopeEntity.ReadHistory(sub.lastDelivered, limit, sub.pageRequest, pageAdapter));
    timers.startSingleTimer(timerKey("page", sub.name), new PageTimedOut(sub.name, sub.pageRequest),
        deps.settings().api().timeout());
  }

  private Behavior<Command> onPage(PageArrived p) {
    ScopeEntity.HistoryPage page = p.page();
    Sub sub = subs.get(page.scope());
    if (sub == null || !sub.replaying || phase != Phase.ACTIVE || page.request() != sub.pageRequest) return this;
    timers.cancel(timerKey("page", sub.name));
    if (!page.epoch().equals(sub.epoch)) {
      failover(sub);
      return this;
    }
    boolean progressed = false;
    for (HistoryEntry h : page.events()) {
      if (h.offset() <= sub.lastDelivered) continue;
      if (h.offset() != sub.lastDelivered + 1 || h.offset() > sub.replayTarget) break;
      emit(sub, h.offset(), h.frame(), 0);
      progressed = true;
    }
    if (phase != Phase.ACTIVE) return this;
    if (sub.lastDelivered >= sub.replayTarget) {
      continueDelivery(sub);
    } else if (!progressed) {
      resync(sub, sub.epoch, sub.replayTarget, "history_lost"); // the history no longer holds what is missing
      continueDelivery(sub);
    } else {
      String scope = sub.name;
      long request = sub.pageRequest;
      ActorRef<Command> self = getContext().getSelf();
      outbound.offer(new Outbound.Signal(() -> self.tell(new ReplayTaken(scope, request))));
    }
    return this;
  }

  private Behavior<Command> onReplayTaken(ReplayTaken t) {
    Sub sub = subs.get(t.scope());
    if (sub != null && sub.replaying && sub.pageRequest == t.pageRequest() && phase == Phase.ACTIVE) requestPage(sub);
    return this;
  }

  private Behavior<Command> onPageTimedOut(PageTimedOut t) {
    Sub sub = subs.get(t.scope());
    if (sub != null && sub.replaying && sub.pageRequest == t.pageRequest()) failover(sub);
    return this;
  }

  // ---- ephemeral frames ----------------------------------------------------------------------

  private Behavior<Command> onEphemeral(Ephemeral e) {
    Sub sub = subs.get(e.scope());
    if (sub == null || sub.stage != Stage.ACTIVE || phase != Phase.ACTIVE) return this;
    // Ephemeral frames never cost a durable event its place: they are shed once the buffer is half full.
    if (outbound.size() * 2 >= outbound.capacity() || outbound.offer(e.frame()) != Outbound.Offer.ENQUEUED) {
      metrics.framesDropped.inc();
    }
    return this;
  }

  // ---- heartbeat (§8) ------------------------------------------------------------------------

  private Behavior<Command> onSendPing() {
    send(ServerFrames.PING);
    if (unansweredPingSince == 0) {
      unansweredPingSince = System.nanoTime();
      timers.startSingleTimer(Timer.HEARTBEAT_CHECK, limits.heartbeatTimeout());
    }
    return this;
  }

  // ---- sending and closing -------------------------------------------------------------------

  private void send(String json) {
    if (phase == Phase.CLOSING) return;
    if (outbound.offer(json) == Outbound.Offer.FULL) evict();
  }

  private void evict() {
    if (phase == Phase.CLOSING) return;
    metrics.slowConsumerEvictions.inc();
    close(4008, "slow consumer: outbound buffer full", true);
  }

  /** Sends {@code disconnect} ahead of anything queued, then closes the socket (§8). */
  private Behavior<Command> close(int code, String reason, boolean reconnect) {
    if (phase == Phase.CLOSING) return this;
    phase = Phase.CLOSING;
    timers.cancelAll();
    int dropped = outbound.finish(ServerFrames.disconnect(code, reason, reconnect));
    if (dropped > 0) metrics.framesDropped.inc(dropped);
    if (connectAckTo != null) ack(connectAckTo);
    connectAckTo = null;
    timers.startSingleTimer(Timer.CLOSE_TIMEOUT, limits.closeGrace());
    return this;
  }

  private Behavior<Command> onCloseTimeout() {
    outbound.abort(); // the client does not read: cut the socket
    return Behaviors.stopped();
  }

  private Behavior<Command> onStop() {
    outbound.abort();
    metrics.connectionsClosed.inc();
    metrics.connectionsActive.dec();
    return this;
  }

  private static String timerKey(String kind, String scope) {
    return kind + ":" + scope;
  }
}
