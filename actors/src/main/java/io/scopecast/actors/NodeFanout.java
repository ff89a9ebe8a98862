package io.scopecast.actors;

import io.scopecast.actors.connection.ConnectionActor;
import io.scopecast.actors.connection.Outbound;
import io.scopecast.actors.scope.ScopeEntity;
import io.scopecast.actors.settings.ScopecastSettings;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;

/**
 * One per node: the last hop of every event. A {@link ScopeEntity} sends one message per node that
 * has subscribers, whatever their number; this actor hands the already-encoded frame straight to
 * the {@link Outbound} send buffer of each local connection subscribed to the scope, without a
 * message to the {@link ConnectionActor} (the buffer's cursor tells the actor when something needs
 * deciding). Its registry of local subscribers is written only by the entities' own messages
 * ({@link Attach}/{@link Detach}), so it always agrees with the order in which the entity
 * sequenced subscriptions and events; a registration remembers which incarnation of the scope
 * made it, so a late detach from an old owner cannot remove a live subscription.
 *
 * <p>It also knows every local connection, to close them all on shutdown (spread over the drain
 * period) and to let a kick reach them.
 */
public final class NodeFanout extends AbstractBehavior<NodeFanout.Command> {

  public sealed interface Command {}

  /** Messages that come from scope entities, possibly on other nodes. */
  public sealed interface Remote extends Command, CborSerializable {}

  /** Registers {@code conn} for the scope and forwards it the entity's answer to its subscribe. */
  public record Attach(ActorRef<ConnectionActor.Command> conn, ConnectionActor.Subscribed answer) implements Remote {
    public String scope() {
      return answer.scope();
    }

    public String epoch() {
      return answer.epoch();
    }

    public long offset() {
      return answer.offset();
    }

    public boolean recovered() {
      return answer.recovered();
    }

    public long requestId() {
      return answer.requestId();
    }
  }

  /** Unregisters {@code conn} from {@code scope} if {@code entity} (the incarnation that attached it) still holds it. */
  public record Detach(String scope, ActorRef<ConnectionActor.Command> conn, ActorRef<ScopeEntity.Command> entity)
      implements Remote {}

  /** A durable event for every local subscriber of the scope; {@code frame} is encoded once. */
  public record Deliver(String scope, String epoch, long offset, String frame, long ts) implements Remote {}

  /** Durable events of one scope, in offset order, sequenced together: one message per node for all of them. */
  public record DeliverAll(List<Deliver> events) implements Remote {}

  /** An ephemeral frame (client event, presence) for the local subscribers except {@code except}. */
  public record DeliverEphemeral(String scope, String frame, ActorRef<ConnectionActor.Command> except) implements Remote {}

  /** One presence frame and the connection that caused it (it does not get the frame; null: none); a leave is never shed. */
  public record PresenceFrame(String frame, ActorRef<ConnectionActor.Command> except, boolean leave) {}

  /** A batch of presence frames for the local subscribers of a scope. */
  public record DeliverPresence(String scope, List<PresenceFrame> frames) implements Remote {}

  /** A {@code presence} reply or snapshot for one connection, queued behind the scope's presence frames sent before it. */
  public record PresenceReply(String scope, ActorRef<ConnectionActor.Command> conn, String frame) implements Remote {}

  /**
   * A message from the scope for its local subscribers (a resync, the user's status, a kick),
   * forwarded as it is; to {@code only} when set.
   */
  public record ToSubscribers(String scope, ConnectionActor.FromScope message, ActorRef<ConnectionActor.Command> only)
      implements Remote {
    public ToSubscribers(String scope, ConnectionActor.FromScope message) {
      this(scope, message, null);
    }
  }

  /** A connection of this node starts, with its send buffer: known until it stops. */
  public record Register(ActorRef<ConnectionActor.Command> conn, Outbound outbound) implements Command {}

  /** Close every local connection with 1001, spread over {@code period}; answered when all are told. */
  public record DrainConnections(Duration period, ActorRef<Drained> replyTo) implements Command {}

  public record Drained(int connections) {}

  public record CountConnections(ActorRef<Integer> replyTo) implements Command {}

  private record ConnectionStopped(ActorRef<ConnectionActor.Command> conn) implements Command {}

  private enum DrainTick implements Command { INSTANCE }

  /** The fanout of a node configured by {@code settings}: a scope's history size bounds how far behind a connection may fall. */
  public static Behavior<Command> create(ScopecastSettings settings) {
    return create(scope -> {
      String type = scope.substring(0, Math.max(0, scope.indexOf(':')));
      return settings.knowsType(type) ? (long) settings.type(type).historySize() : Long.MAX_VALUE;
    });
  }

  /** @param historyLimit the history size of a scope (by scope name): how far behind a connection may fall */
  public static Behavior<Command> create(Function<String, Long> historyLimit) {
    return Behaviors.setup(ctx -> Behaviors.withTimers(timers -> new NodeFanout(ctx, timers, historyLimit)));
  }

  /** One local subscriber of a scope: its send buffer and the scope incarnation that attached it. */
  private record Registration(Outbound outbound, ActorRef<ScopeEntity.Command> entity) {}

  /** One local connection: its send buffer and the scopes it is attached to here. */
  private record Local(Outbound outbound, Set<String> scopes) {}

  private final TimerScheduler<Command> timers;
  private final Map<String, Map<ActorRef<ConnectionActor.Command>, Registration>> subscribers = new HashMap<>();
  private final Map<ActorRef<ConnectionActor.Command>, Local> connections = new HashMap<>();
  private final Function<String, Long> historyLimit;
  private List<ActorRef<ConnectionActor.Command>> drainQueue = List.of();
  private int drainPerTick;
  private boolean draining;
  private ActorRef<Drained> drainReplyTo;

  private static final Duration DRAIN_TICK = Duration.ofMillis(100);

  private NodeFanout(ActorContext<Command> ctx, TimerScheduler<Command> timers, Function<String, Long> historyLimit) {
    super(ctx);
    this.timers = timers;
    this.historyLimit = historyLimit;
  }

  @Override
  public Receive<Command> createReceive() {
    return newReceiveBuilder()
        .onMessage(Deliver.class, this::onDeliver)
        .onMessage(DeliverAll.class, all -> {
          all.events().forEach(this::onDeliver);
          return this;
        })
        .onMessage(DeliverEphemeral.class, this::onDeliverEphemeral)
        .onMessage(DeliverPresence.class, this::onDeliverPresence)
        .onMessage(PresenceReply.class, this::onPresenceReply)
        .onMessage(ToSubscribers.class, this::onToSubscribers)
        .onMessage(Attach.class, this::onAttach)
        .onMessage(Detach.class, this::onDetach)
        .onMessage(Register.class, this::onRegister)
        .onMessage(ConnectionStopped.class, this::onConnectionStopped)
        .onMessage(DrainConnections.class, this::onDrain)
        .onMessageEquals(DrainTick.INSTANCE, this::onDrainTick)
        .onMessage(CountConnections.class, m -> {
          m.replyTo().tell(connections.size());
          return this;
        })
        .build();
  }

  private Behavior<Command> onDeliver(Deliver d) {
    Map<ActorRef<ConnectionActor.Command>, Registration> regs = subscribers.get(d.scope());
    if (regs == null) return this;
    // a connection that no longer follows the scope is forgotten here (its unsubscribe may have
    // reached another owner than the one that registered it, e.g. during a hand-off)
    int bytes = Outbound.bytesOf(d.frame()); // once per event, for every subscriber
    regs.entrySet().removeIf(e -> {
      if (e.getValue().outbound().deliver(d.scope(), d.epoch(), d.offset(), d.frame(), bytes, d.ts())) return false;
      Local local = connections.get(e.getKey());
      if (local != null) local.scopes().remove(d.scope());
      return true;
    });
    if (regs.isEmpty()) subscribers.remove(d.scope());
    return this;
  }

  private Behavior<Command> onDeliverEphemeral(DeliverEphemeral d) {
    deliverEphemeral(d.scope(), d.frame(), d.except(), Outbound.Kind.EPHEMERAL);
    return this;
  }

  private Behavior<Command> onDeliverPresence(DeliverPresence d) {
    for (PresenceFrame f : d.frames()) {
      deliverEphemeral(d.scope(), f.frame(), f.except(), f.leave() ? Outbound.Kind.PRESENCE_LEAVE : Outbound.Kind.PRESENCE);
    }
    return this;
  }

  private void deliverEphemeral(String scope, String frame, ActorRef<ConnectionActor.Command> except, Outbound.Kind kind) {
    Map<ActorRef<ConnectionActor.Command>, Registration> regs = subscribers.get(scope);
    if (regs == null) return;
    int bytes = Outbound.bytesOf(frame);
    for (Map.Entry<ActorRef<ConnectionActor.Command>, Registration> e : regs.entrySet()) {
      if (!e.getKey().equals(except)) e.getValue().outbound().deliverEphemeral(scope, frame, bytes, kind);
    }
  }

  private Behavior<Command> onPresenceReply(PresenceReply r) {
    Local local = connections.get(r.conn());
    if (local != null) local.outbound().deliverPresenceReply(r.scope(), r.frame());
    return this;
  }

  private Behavior<Command> onToSubscribers(ToSubscribers t) {
    if (t.only() != null) {
      t.only().tell(t.message());
      return this;
    }
    Map<ActorRef<ConnectionActor.Command>, Registration> regs = subscribers.get(t.scope());
    if (regs != null) regs.keySet().forEach(c -> c.tell(t.message()));
    return this;
  }

  /**
   * Registers the connection for the scope (its send buffer starts judging the scope's live events
   * from the owner's position), then forwards it the owner's answer: every event sequenced after
   * the answer reaches the buffer after this.
   */
  private Behavior<Command> onAttach(Attach a) {
    Local local = connections.get(a.conn());
    if (local == null) return this; // the connection is gone; its entity hears of it by its watch
    local.scopes().add(a.scope());
    subscribers.computeIfAbsent(a.scope(), s -> new HashMap<>())
        .put(a.conn(), new Registration(local.outbound(), a.answer().entity()));
    local.outbound().attached(a.scope(), a.epoch(), a.offset(), historyLimit.apply(a.scope()));
    a.conn().tell(a.answer());
    return this;
  }

  private Behavior<Command> onDetach(Detach d) {
    Map<ActorRef<ConnectionActor.Command>, Registration> regs = subscribers.get(d.scope());
    Registration r = regs == null ? null : regs.get(d.conn());
    if (r == null || !r.entity().equals(d.entity())) return this; // a newer incarnation holds it now
    remove(d.scope(), d.conn());
    Local local = connections.get(d.conn());
    if (local != null) local.scopes().remove(d.scope());
    return this;
  }

  private Behavior<Command> onRegister(Register r) {
    if (!connections.containsKey(r.conn())) {
      getContext().watchWith(r.conn(), new ConnectionStopped(r.conn()));
      connections.put(r.conn(), new Local(r.outbound(), new HashSet<>(4)));
    }
    if (draining) r.conn().tell(ConnectionActor.Disconnect.goingAway());
    return this;
  }

  private Behavior<Command> onConnectionStopped(ConnectionStopped s) {
    Local local = connections.remove(s.conn());
    if (local != null) {
      for (String scope : local.scopes()) remove(scope, s.conn());
    }
    return this;
  }

  private void remove(String scope, ActorRef<ConnectionActor.Command> conn) {
    Map<ActorRef<ConnectionActor.Command>, Registration> regs = subscribers.get(scope);
    if (regs != null && regs.remove(conn) != null && regs.isEmpty()) subscribers.remove(scope);
  }

  private Behavior<Command> onDrain(DrainConnections d) {
    draining = true;
    drainReplyTo = d.replyTo();
    drainQueue = new ArrayList<>(connections.keySet());
    long ticks = Math.max(1, d.period().toMillis() / DRAIN_TICK.toMillis());
    drainPerTick = (int) Math.max(1, (drainQueue.size() + ticks - 1) / ticks);
    return onDrainTick();
  }

  private Behavior<Command> onDrainTick() {
    int n = Math.min(drainPerTick, drainQueue.size());
    List<ActorRef<ConnectionActor.Command>> batch = drainQueue.subList(drainQueue.size() - n, drainQueue.size());
    for (ActorRef<ConnectionActor.Command> c : batch) c.tell(ConnectionActor.Disconnect.goingAway());
    batch.clear();
    if (drainQueue.isEmpty()) {
      if (drainReplyTo != null) drainReplyTo.tell(new Drained(connections.size()));
      drainReplyTo = null;
    } else {
      timers.startSingleTimer(DrainTick.INSTANCE, DRAIN_TICK);
    }
    return this;
  }
}
