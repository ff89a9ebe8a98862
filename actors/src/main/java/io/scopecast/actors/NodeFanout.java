package io.scopecast.actors;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;

/**
 * One per node: the last hop of every event. A {@link ScopeEntity} sends one message per node that
 * has subscribers, whatever their number; this actor hands the already-encoded frame to each local
 * {@link ConnectionActor} subscribed to the scope. Its registry of local subscribers is written
 * only by the entities' own messages ({@link Attach}/{@link Detach}), so it always agrees with the
 * order in which the entity sequenced subscriptions and events.
 *
 * <p>It also knows every local connection, to close them all on shutdown (spread over the drain
 * period) and to let a kick reach them.
 */
public final class NodeFanout extends AbstractBehavior<NodeFanout.Command> {

  public sealed interface Command {}

  /** Messages that come from scope entities, possibly on other nodes. */
  public sealed interface Remote extends Command, CborSerializable {}

  /** Registers {@code conn} for {@code scope} and hands it the entity's answer to its subscribe. */
  public record Attach(String scope, ActorRef<ConnectionActor.Command> conn, ActorRef<ScopeEntity.Command> entity,
      String epoch, long offset, boolean recovered, long requestId) implements Remote {}

  public record Detach(String scope, ActorRef<ConnectionActor.Command> conn) implements Remote {}

  /** A durable event for every local subscriber of the scope; {@code frame} is encoded once. */
  public record Deliver(String scope, String epoch, long offset, String frame, long ts) implements Remote {}

  /** An ephemeral frame (client event, presence) for the local subscribers except {@code except}. */
  public record DeliverEphemeral(String scope, String frame, ActorRef<ConnectionActor.Command> except) implements Remote {}

  /** One presence frame and the connection that caused it (it does not get the frame; null: none). */
  public record PresenceFrame(String frame, ActorRef<ConnectionActor.Command> except) {}

  /** A batch of presence frames for the local subscribers of a scope. */
  public record DeliverPresence(String scope, List<PresenceFrame> frames) implements Remote {}

  /**
   * The user's status changed (sent by the user's own {@code user:} scope): for its local
   * subscribers, or only {@code only} when set.
   */
  public record UserStatus(String scope, String status, String text, ActorRef<ConnectionActor.Command> only)
      implements Remote {}

  /** The scope starts over in a new epoch (after a Redis outage): its subscribers resync. */
  public record Resync(String scope, String epoch, long offset, String reason) implements Remote {}

  /** Closes the local subscribers of a scope (POST /api/disconnect goes to the user's own scope). */
  public record DisconnectSubscribers(String scope, int code, String reason, boolean reconnect) implements Remote {}

  /** A connection of this node starts: known until it stops. */
  public record Register(ActorRef<ConnectionActor.Command> conn) implements Command {}

  /** Close every local connection with 1001, spread over {@code period}; answered when all are told. */
  public record DrainConnections(Duration period, ActorRef<Drained> replyTo) implements Command {}

  public record Drained(int connections) {}

  public record CountConnections(ActorRef<Integer> replyTo) implements Command {}

  private record ConnectionStopped(ActorRef<ConnectionActor.Command> conn) implements Command {}

  private enum DrainTick implements Command { INSTANCE }

  public static Behavior<Command> create() {
    return Behaviors.setup(ctx -> Behaviors.withTimers(timers -> new NodeFanout(ctx, timers)));
  }

  private final TimerScheduler<Command> timers;
  private final Map<String, Set<ActorRef<ConnectionActor.Command>>> subscribers = new HashMap<>();
  /** Every local connection and the scopes it is attached to here. */
  private final Map<ActorRef<ConnectionActor.Command>, Set<String>> connections = new HashMap<>();
  private List<ActorRef<ConnectionActor.Command>> drainQueue = List.of();
  private int drainPerTick;
  private boolean draining;
  private ActorRef<Drained> drainReplyTo;

  private static final Duration DRAIN_TICK = Duration.ofMillis(100);

  private NodeFanout(ActorContext<Command> ctx, TimerScheduler<Command> timers) {
    super(ctx);
    this.timers = timers;
  }

  @Override
  public Receive<Command> createReceive() {
    return newReceiveBuilder()
        .onMessage(Deliver.class, this::onDeliver)
        .onMessage(DeliverEphemeral.class, this::onDeliverEphemeral)
        .onMessage(DeliverPresence.class, this::onDeliverPresence)
        .onMessage(UserStatus.class, this::onUserStatus)
        .onMessage(Resync.class, r -> {
          Set<ActorRef<ConnectionActor.Command>> conns = subscribers.get(r.scope());
          if (conns != null) {
            ConnectionActor.ScopeResync msg = new ConnectionActor.ScopeResync(r.scope(), r.epoch(), r.offset(), r.reason());
            conns.forEach(c -> c.tell(msg));
          }
          return this;
        })
        .onMessage(Attach.class, this::onAttach)
        .onMessage(Detach.class, this::onDetach)
        .onMessage(DisconnectSubscribers.class, this::onDisconnectSubscribers)
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
    Set<ActorRef<ConnectionActor.Command>> conns = subscribers.get(d.scope());
    if (conns != null) {
      ConnectionActor.Event event = new ConnectionActor.Event(d.scope(), d.epoch(), d.offset(), d.frame(), d.ts());
      for (ActorRef<ConnectionActor.Command> c : conns) c.tell(event);
    }
    return this;
  }

  private Behavior<Command> onDeliverEphemeral(DeliverEphemeral d) {
    Set<ActorRef<ConnectionActor.Command>> conns = subscribers.get(d.scope());
    if (conns != null) {
      ConnectionActor.Ephemeral frame = new ConnectionActor.Ephemeral(d.scope(), d.frame());
      for (ActorRef<ConnectionActor.Command> c : conns) {
        if (!c.equals(d.except())) c.tell(frame);
      }
    }
    return this;
  }

  private Behavior<Command> onDeliverPresence(DeliverPresence d) {
    Set<ActorRef<ConnectionActor.Command>> conns = subscribers.get(d.scope());
    if (conns == null) return this;
    for (PresenceFrame f : d.frames()) {
      ConnectionActor.Ephemeral frame = new ConnectionActor.Ephemeral(d.scope(), f.frame());
      for (ActorRef<ConnectionActor.Command> c : conns) {
        if (!c.equals(f.except())) c.tell(frame);
      }
    }
    return this;
  }

  private Behavior<Command> onUserStatus(UserStatus u) {
    ConnectionActor.UserStatus msg = new ConnectionActor.UserStatus(u.status(), u.text());
    if (u.only() != null) {
      u.only().tell(msg);
      return this;
    }
    Set<ActorRef<ConnectionActor.Command>> conns = subscribers.get(u.scope());
    if (conns != null) conns.forEach(c -> c.tell(msg));
    return this;
  }

  private Behavior<Command> onAttach(Attach a) {
    track(a.conn()).add(a.scope());
    subscribers.computeIfAbsent(a.scope(), s -> new HashSet<>()).add(a.conn());
    a.conn().tell(new ConnectionActor.Subscribed(a.scope(), a.entity(), a.epoch(), a.offset(), a.recovered(), a.requestId()));
    return this;
  }

  private Behavior<Command> onDetach(Detach d) {
    remove(d.scope(), d.conn());
    Set<String> scopes = connections.get(d.conn());
    if (scopes != null) scopes.remove(d.scope());
    return this;
  }

  private Behavior<Command> onDisconnectSubscribers(DisconnectSubscribers d) {
    Set<ActorRef<ConnectionActor.Command>> conns = subscribers.get(d.scope());
    if (conns != null) {
      ConnectionActor.Disconnect msg = new ConnectionActor.Disconnect(d.code(), d.reason(), d.reconnect());
      for (ActorRef<ConnectionActor.Command> c : conns) c.tell(msg);
    }
    return this;
  }

  private Behavior<Command> onRegister(Register r) {
    track(r.conn());
    if (draining) r.conn().tell(ConnectionActor.Disconnect.goingAway());
    return this;
  }

  private Set<String> track(ActorRef<ConnectionActor.Command> conn) {
    return connections.computeIfAbsent(conn, c -> {
      getContext().watchWith(c, new ConnectionStopped(c));
      return new HashSet<>();
    });
  }

  private Behavior<Command> onConnectionStopped(ConnectionStopped s) {
    Set<String> scopes = connections.remove(s.conn());
    if (scopes != null) {
      for (String scope : scopes) remove(scope, s.conn());
    }
    return this;
  }

  private void remove(String scope, ActorRef<ConnectionActor.Command> conn) {
    Set<ActorRef<ConnectionActor.Command>> conns = subscribers.get(scope);
    if (conns != null && conns.remove(conn) && conns.isEmpty()) subscribers.remove(scope);
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
