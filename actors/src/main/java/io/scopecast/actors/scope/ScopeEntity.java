package io.scopecast.actors.scope;

import com.fasterxml.jackson.core.JsonProcessingException;
import io.scopecast.actors.CborSerializable;
import io.scopecast.actors.NodeFanout;
import io.scopecast.actors.connection.CloseCode;
import io.scopecast.actors.connection.ConnectionActor;
import io.scopecast.actors.history.DurableHistory;
import io.scopecast.actors.history.Epochs;
import io.scopecast.actors.history.HistoryEntry;
import io.scopecast.actors.history.IdempotencyRecord;
import io.scopecast.actors.metrics.ScopecastMetrics;
import io.scopecast.actors.presence.PresenceTracker;
import io.scopecast.actors.protocol.Json;
import io.scopecast.actors.protocol.Position;
import io.scopecast.actors.protocol.ScopeId;
import io.scopecast.actors.protocol.ServerFrames;
import io.scopecast.actors.protocol.Utf8;
import io.scopecast.actors.settings.ScopecastSettings;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.BehaviorBuilder;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.StashBuffer;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.cluster.sharding.typed.ShardingEnvelope;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.Entity;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;

/**
 * The single sequencer of one scope, sharded by scope id across the cluster. Its life:
 *
 * <ol>
 *   <li><b>starting</b>: finds where the scope stands ({@link ScopeStart}: a hand-off, else the
 *       durable history, else a new epoch), holding messages in a bounded buffer meanwhile;
 *   <li><b>serving</b>: sequences publishes ({@link Sequencer}), answers subscribes and reads,
 *       keeps presence; with durable history a batch of publishes is written before anything of
 *       it is acknowledged or delivered, and the scope is then
 *   <li><b>writing</b>: further publishes wait and go out together in the next batch; every
 *       publish is answered within {@code scopecast.redis.timeout}, from memory if Redis did not
 *       answer in time (the scope then starts a new epoch there once it is back, §13.9);
 *   <li><b>handing off</b>: sharding moves the scope; its state goes to the next owner and every
 *       message that reaches it meanwhile is forwarded there.
 * </ol>
 *
 * Subscribers on every node get one message per node ({@link Subscribers}); the node's
 * {@link NodeFanout} hands the frame, encoded once, to each local connection. The entity watches
 * its subscribers, so a connection that stops, on any node, leaves without a message of its own.
 *
 * <p>It passivates itself, and only when it has no subscribers and has been idle: sharding's own
 * idle passivation counts only messages sent through sharding and would stop a scope that still
 * has subscribers.
 */
public final class ScopeEntity {

  public static final EntityTypeKey<Command> TYPE_KEY = EntityTypeKey.create(Command.class, "scope");

  public sealed interface Command extends CborSerializable {}

  /**
   * Subscribes {@code conn} (on the node of {@code fanout}); answered through the fanout with a
   * {@link ConnectionActor.Subscribed} carrying the current position and whether {@code since}
   * (null: none) can be recovered from history. {@code status}: the user's status as the
   * connection knows it (so a new owner learns it from the re-subscribe).
   */
  public record Subscribe(ActorRef<ConnectionActor.Command> conn, ActorRef<NodeFanout.Command> fanout, String user,
      Position since, long requestId, String status, String statusText) implements Command {
    public Subscribe(ActorRef<ConnectionActor.Command> conn, ActorRef<NodeFanout.Command> fanout, String user,
        Position since, long requestId) {
      this(conn, fanout, user, since, requestId, null, null);
    }
  }

  public record Unsubscribe(ActorRef<ConnectionActor.Command> conn) implements Command {}

  /**
   * A durable event from the server API; {@code payload} is JSON text. The answer carries
   * {@code request}, so that one actor per node can take the answers to all its publishes.
   */
  public record Publish(String event, String payload, String idempotencyKey, ActorRef<PublishResult> replyTo, long request)
      implements Command {
    public Publish(String event, String payload, String idempotencyKey, ActorRef<PublishResult> replyTo) {
      this(event, payload, idempotencyKey, replyTo, 0);
    }

    void answer(String epoch, long offset, boolean duplicate) {
      replyTo.tell(new Published(epoch, offset, duplicate, request));
    }

    void refuse(String reason) {
      replyTo.tell(new Refused(reason, request));
    }
  }

  /**
   * Publishes to this scope that arrived together (one {@code POST /api/batch}): sequenced in
   * their order in one batch, each answered as a {@link Publish} is, and delivered to each node
   * with subscribers in one message.
   */
  public record PublishBatch(List<Publish> publishes) implements Command {}

  public sealed interface PublishResult extends CborSerializable {
    /** The {@link Publish#request} this answers. */
    long request();
  }

  /** The event's position; {@code duplicate} when an earlier publish with the same key is answered again. */
  public record Published(String epoch, long offset, boolean duplicate, long request) implements PublishResult {}

  /** The publish did not happen (the scope could not take it now) and may be retried: 503 {@code unavailable}. */
  public record Refused(String reason, long request) implements PublishResult {}

  /**
   * Up to {@code limit} events after offset {@code after} and, past the first, at most
   * {@code maxChars} characters of frames (a page that crosses nodes stays under Artery's frame
   * size); {@code request} is echoed in the page.
   */
  public record ReadHistory(long after, int limit, long maxChars, long request, ActorRef<HistoryPage> replyTo)
      implements Command {
    public ReadHistory(long after, int limit, ActorRef<HistoryPage> replyTo) {
      this(after, limit, Long.MAX_VALUE, 0, replyTo);
    }
  }

  /** Events of one history read; {@code offset} is the scope's last offset. */
  public record HistoryPage(String scope, String epoch, long offset, List<HistoryEntry> events, long request)
      implements CborSerializable {}

  /** A client event (§7) from a subscriber: sent to the scope's other connections, never stored. */
  public record ClientPublish(ActorRef<ConnectionActor.Command> from, String user, String event, String payload)
      implements Command {}

  /** Closes every subscribed connection, on every node (POST /api/disconnect on a user's scope). */
  public record Kick(CloseCode close, ActorRef<Kicked> replyTo) implements Command {}

  public record Kicked(int connections) implements CborSerializable {}

  /**
   * A subscriber's user changed status (§6): updates the scope's presence. {@code origin} is the
   * connection whose status frame caused it (it is not told; null: {@code conn}).
   */
  public record UpdateStatus(ActorRef<ConnectionActor.Command> conn, String status, String text,
      ActorRef<ConnectionActor.Command> origin) implements Command {
    public UpdateStatus(ActorRef<ConnectionActor.Command> conn, String status, String text) {
      this(conn, status, text, null);
    }
  }

  /**
   * Sent to the user's own {@code user:} scope, which knows all the user's connections: keeps the
   * status and tells every connection, which then update their presence scopes. {@code origin}:
   * the connection whose status frame it was.
   */
  public record SetUserStatus(String status, String text, ActorRef<ConnectionActor.Command> origin) implements Command {
    public SetUserStatus(String status, String text) {
      this(status, text, null);
    }
  }

  /**
   * The members. With {@code via} set (a connection's {@code presence} frame, or a snapshot) the
   * reply frame also goes to that connection through its node's fanout, behind the presence
   * frames sent before it (§13.19); the members answer the ask either way.
   */
  public record GetPresence(ActorRef<PresenceMembers> replyTo, PresenceReplyTo via) implements Command {
    public GetPresence(ActorRef<PresenceMembers> replyTo) {
      this(replyTo, null);
    }
  }

  /** Where a presence reply frame goes; {@code idJson} is the request's id as JSON (null: unsolicited). */
  public record PresenceReplyTo(ActorRef<ConnectionActor.Command> conn, ActorRef<NodeFanout.Command> fanout, String idJson) {}

  /** {@code enabled} is false for scope types without presence. */
  public record PresenceMembers(String scope, boolean enabled, List<ServerFrames.Member> members)
      implements CborSerializable {}

  public record GetInfo(ActorRef<Info> replyTo) implements Command {}

  public record Info(String scope, String epoch, long offset, String node, int subscribers) implements CborSerializable {}

  /** Sharding's stop message: the scope moves to another node (or passivates). */
  public enum HandOff implements Command { INSTANCE }

  private record SubscriberStopped(ActorRef<ConnectionActor.Command> conn) implements Command {}

  private enum Tick implements Command { INSTANCE }

  private enum PresenceWindow implements Command { INSTANCE }

  private enum HandedOff implements Command { INSTANCE }

  private record Started(ScopeStart.State state) implements Command {}

  /** A durable write (a batch of events, or a new epoch) completed; {@code write} tells writes apart. */
  private record Written(long write, Throwable error) implements Command {}

  /** The write's budget ran out before it completed. */
  private record WriteOverdue(long write) implements Command {}

  private record HistoryRead(ReadHistory request, String epoch, List<HistoryEntry> entries, Throwable error)
      implements Command {}

  private enum RedisCheck implements Command { INSTANCE }

  /** What every scope entity of a node shares. */
  public record Deps(ScopecastSettings settings, ScopecastMetrics metrics, String nodeId, Clock clock,
      ActorRef<ScopeHandoff.Command> handoff, DurableHistory durable) {
    public Deps(ScopecastSettings settings, ScopecastMetrics metrics, String nodeId, Clock clock) {
      this(settings, metrics, nodeId, clock, null, DurableHistory.memoryOnly());
    }

    public Deps(ScopecastSettings settings, ScopecastMetrics metrics, String nodeId) {
      this(settings, metrics, nodeId, Clock.systemUTC());
    }
  }

  /** Registers the scope entity type with sharding on this node and returns the shard region. */
  public static ActorRef<ShardingEnvelope<Command>> initSharding(org.apache.pekko.actor.typed.ActorSystem<?> system,
      Deps deps) {
    return ClusterSharding.get(system).init(
        Entity.of(TYPE_KEY, ctx -> create(ScopeId.of(ctx.getEntityId()), deps, ctx.getShard()))
            .withStopMessage(HandOff.INSTANCE));
  }

  // ---- starting ------------------------------------------------------------------------------

  public static Behavior<Command> create(ScopeId scope, Deps deps, ActorRef<ClusterSharding.ShardCommand> shard) {
    int capacity = Math.max(10, deps.settings().scope().startBuffer());
    return Behaviors.withStash(capacity, stash -> Behaviors.setup(ctx -> Behaviors.withTimers(timers -> {
      ScopecastSettings.ScopeType type = deps.settings().type(scope.type());
      ctx.pipeToSelf(ScopeStart.find(scope.toString(), type.historySize(), deps.handoff(), deps.durable(),
              deps.settings().redis().timeout(), ctx.getSystem()),
          (state, err) -> new Started(err != null ? ScopeStart.State.fresh(deps.durable().enabled()) : state));
      Map<ActorRef<ConnectionActor.Command>, Subscribe> subscribes = new LinkedHashMap<>();
      return Behaviors.receive(Command.class)
          .onMessage(Started.class, st -> {
            ScopeEntity entity = new ScopeEntity(ctx, timers, scope, deps, shard, st.state());
            subscribes.values().forEach(entity::onSubscribe);
            return stash.unstashAll(entity.serving);
          })
          .onMessage(Subscribe.class, s -> holdSubscribe(scope.toString(), subscribes, capacity, s, deps.metrics()))
          .onMessage(Unsubscribe.class, u -> {
            subscribes.remove(u.conn()); // nobody is subscribed to a scope that has not started
            return Behaviors.same();
          })
          .onAnyMessage(m -> hold(stash, capacity, m, deps.metrics()))
          .build();
    })));
  }

  /**
   * While starting, a scope holds one subscribe per connection, the newest (a connection that asks
   * again replaces its earlier request rather than adding to a pile), for up to {@code capacity}
   * connections; any further connection is answered {@link ConnectionActor.SubscribeNotYet} and
   * asks again after its backoff. They are answered, before any held message, once the scope has
   * started: every connection's subscribe precedes what the same connection sent after it.
   */
  private static Behavior<Command> holdSubscribe(String scopeName, Map<ActorRef<ConnectionActor.Command>, Subscribe> subscribes,
      int capacity, Subscribe s, ScopecastMetrics metrics) {
    if (subscribes.size() < capacity || subscribes.containsKey(s.conn())) {
      subscribes.remove(s.conn()); // the newest request goes last
      subscribes.put(s.conn(), s);
    } else {
      metrics.startupOverflows.inc();
      s.conn().tell(new ConnectionActor.SubscribeNotYet(scopeName, s.requestId()));
    }
    return Behaviors.same();
  }

  /**
   * While starting, messages other than subscribes wait in a bounded buffer. Requests (publishes,
   * reads) may fill 80 % of it; beyond, a publish is refused (503, retried by the backend with its
   * key) and reads time out as the asker's unavailable. The rest is kept for messages that must not be lost (unsubscribes,
   * status changes, hand-offs).
   */
  private static Behavior<Command> hold(StashBuffer<Command> stash, int capacity, Command m, ScopecastMetrics metrics) {
    boolean request = m instanceof Publish || m instanceof PublishBatch || m instanceof ClientPublish
        || m instanceof ReadHistory || m instanceof GetPresence || m instanceof GetInfo || m instanceof Kick;
    if (!stash.isFull() && !(request && stash.size() >= capacity * 4 / 5)) {
      stash.stash(m);
      return Behaviors.same();
    }
    metrics.startupOverflows.inc();
    String busy = "the scope is starting and holds too many messages, try again";
    if (m instanceof Publish p) p.refuse(busy);
    if (m instanceof PublishBatch b) b.publishes().forEach(p -> p.refuse(busy));
    return Behaviors.same();
  }

  // ---- state ---------------------------------------------------------------------------------

  private static final int HANDOFF_MAX_HISTORY_CHARS = 512 * 1024;
  private static final int HANDOFF_MAX_KEYS = 2000;
  private static final Duration HANDOFF_WITHIN = Duration.ofSeconds(10);
  private static final Duration REDIS_CHECK_EVERY = Duration.ofSeconds(1);

  /** A publish waiting for the next write, since {@code at} (ms); {@code bytes}: what it counts against the queue's bound. */
  private record Waiting(Publish publish, long at, long bytes) {}

  /** What a queued publish costs beyond its payload and event name. */
  private static final long QUEUED_OVERHEAD_BYTES = 64;

  private final ActorContext<Command> ctx;
  private final TimerScheduler<Command> timers;
  private final ScopeId scope;
  private final String scopeName;
  private final Deps deps;
  private final ActorRef<ClusterSharding.ShardCommand> shard;
  private final DurableHistory durable;
  private final ScopecastSettings.ScopeType type;
  private final Sequencer sequencer;
  private final Subscribers subscribers = new Subscribers();
  /** Null for scope types without presence. */
  private final PresenceTracker<ActorRef<ConnectionActor.Command>> presence;
  private final Duration presenceInterval;
  private final long idleBeforePassivationMillis;

  /** The durable history may miss events of the current epoch: a new epoch starts there before the next write. */
  private boolean durableBehind;
  private final ArrayDeque<Waiting> queued = new ArrayDeque<>();
  private long queuedBytes;
  /** The batch being written (null while a new epoch is written, or nothing is). */
  private List<Sequencer.Sequenced> inFlight;
  /** The epoch being started by the write in flight (null: none). */
  private String startingEpoch;
  private long write;
  /** Sharding asked to move the scope while a write was in flight: hand off once it is done. */
  private boolean handOffRequested;
  /** Asked sharding to passivate: stop without handing anything off. */
  private boolean passivating;
  private long lastActivity;
  /** In a user's own scope: the user's status, shared by all their connections (§13.13). */
  private ConnectionActor.UserStatus userStatus = ONLINE;

  private static final ConnectionActor.UserStatus ONLINE = new ConnectionActor.UserStatus("online", "", null);

  private final Behavior<Command> serving;
  private final Behavior<Command> writing;
  private final Behavior<Command> handingOff;

  private ScopeEntity(ActorContext<Command> ctx, TimerScheduler<Command> timers, ScopeId scope, Deps deps,
      ActorRef<ClusterSharding.ShardCommand> shard, ScopeStart.State start) {
    this.ctx = ctx;
    this.timers = timers;
    this.scope = scope;
    this.scopeName = scope.toString();
    this.deps = deps;
    this.shard = shard;
    this.durable = deps.durable();
    this.type = deps.settings().type(scope.type());
    long now = deps.clock().millis();
    ScopecastSettings.ScopeLifecycle life = deps.settings().scope();
    this.sequencer = new Sequencer(scopeName, new Sequencer.Limits(type.historySize(), type.historyTtl().toMillis(),
        life.idempotencyWindow().toMillis(), life.idempotencyMaxKeys()), start, now);
    this.presence = type.presence() ? new PresenceTracker<>(scopeName, deps.settings().presence().maxMembersDetailed()) : null;
    this.presenceInterval = deps.settings().presence().batchInterval();
    this.idleBeforePassivationMillis = Math.max(life.passivateAfter().toMillis(), type.historyTtl().toMillis());
    this.lastActivity = now;
    timers.startTimerWithFixedDelay(Tick.INSTANCE,
        Duration.ofMillis(Math.max(1000, Math.min(60_000, idleBeforePassivationMillis / 4))));
    if (start.durableBehind()) durableIsBehind();
    deps.metrics().scopesActive.inc();

    this.serving = common()
        .onMessage(Publish.class, p -> {
          if (!accept(p)) return Behaviors.same();
          return flush();
        })
        .onMessage(PublishBatch.class, b -> {
          boolean any = false;
          for (Publish p : b.publishes()) any |= accept(p);
          return any ? flush() : Behaviors.same();
        })
        .onMessageEquals(RedisCheck.INSTANCE, this::onRedisCheck)
        .onMessageEquals(HandOff.INSTANCE, () -> passivating || deps.handoff() == null ? Behaviors.stopped() : startHandOff())
        .onMessage(Written.class, w -> Behaviors.same()) // a write given up on (its budget ran out)
        .onMessage(WriteOverdue.class, o -> Behaviors.same())
        .build();
    this.writing = common()
        .onMessage(Publish.class, p -> {
          if (handOffRequested) return forwardToNextOwner(p);
          accept(p);
          return Behaviors.same();
        })
        .onMessage(PublishBatch.class, b -> {
          if (handOffRequested) return forwardToNextOwner(b);
          b.publishes().forEach(this::accept);
          return Behaviors.same();
        })
        .onMessage(Written.class, w -> w.write() == write ? written(w.error()) : Behaviors.same())
        .onMessage(WriteOverdue.class, o -> o.write() == write ? written(new WriteTimedOut()) : Behaviors.same())
        .onMessageEquals(HandOff.INSTANCE, () -> {
          handOffRequested = true; // the batch in flight is sequenced and must stay: hand off once it is written
          return Behaviors.same();
        })
        .onMessageEquals(RedisCheck.INSTANCE, Behaviors::same) // asked again once the write is done
        .build();
    this.handingOff = Behaviors.receive(Command.class)
        .onMessageEquals(HandedOff.INSTANCE, Behaviors::stopped)
        .onMessage(Subscribe.class, this::forwardToNextOwner)
        .onMessage(Unsubscribe.class, this::forwardToNextOwner)
        .onMessage(Publish.class, this::forwardToNextOwner)
        .onMessage(PublishBatch.class, this::forwardToNextOwner)
        .onMessage(ClientPublish.class, this::forwardToNextOwner)
        .onMessage(UpdateStatus.class, this::forwardToNextOwner)
        .onMessage(SetUserStatus.class, this::forwardToNextOwner)
        .onMessage(ReadHistory.class, this::forwardToNextOwner)
        .onMessage(GetPresence.class, this::forwardToNextOwner)
        .onMessage(GetInfo.class, this::forwardToNextOwner)
        .onMessage(Kick.class, this::forwardToNextOwner)
        .onSignal(PostStop.class, s -> stopped())
        .onAnyMessage(m -> Behaviors.same()) // internal: timers, stopped subscribers, late writes
        .build();
  }

  /**
   * What serving and writing have in common: everything but publishing and the durable writes
   * (the first matching handler wins, so those are each behaviour's own).
   */
  private BehaviorBuilder<Command> common() {
    return Behaviors.receive(Command.class)
        .onMessage(Subscribe.class, this::onSubscribe)
        .onMessage(Unsubscribe.class, u -> removeSubscriber(u.conn()))
        .onMessage(SubscriberStopped.class, s -> removeSubscriber(s.conn()))
        .onMessage(ClientPublish.class, this::onClientPublish)
        .onMessage(ReadHistory.class, this::onReadHistory)
        .onMessage(HistoryRead.class, this::onHistoryRead)
        .onMessage(GetInfo.class, g -> {
          g.replyTo().tell(new Info(scopeName, sequencer.epoch(), sequencer.offset(), deps.nodeId(), subscribers.size()));
          return Behaviors.same();
        })
        .onMessage(Kick.class, this::onKick)
        .onMessage(UpdateStatus.class, this::onUpdateStatus)
        .onMessage(SetUserStatus.class, this::onSetUserStatus)
        .onMessage(GetPresence.class, this::onGetPresence)
        .onMessageEquals(PresenceWindow.INSTANCE, this::onPresenceWindow)
        .onMessageEquals(Tick.INSTANCE, this::onTick)
        .onSignal(PostStop.class, s -> stopped());
  }

  private Behavior<Command> stopped() {
    deps.metrics().scopesActive.dec();
    if (presence != null) deps.metrics().presenceMembers.dec(presence.size());
    return Behaviors.same();
  }

  // ---- publishing ----------------------------------------------------------------------------

  /** Queues the publish for the next batch; a key seen within the window is answered with its first result. */
  private boolean accept(Publish p) {
    long now = deps.clock().millis();
    lastActivity = now;
    if (p.idempotencyKey() != null) {
      List<String> forgotten = sequencer.forgetOldKeys(now);
      if (!forgotten.isEmpty()) durable.forgetKeys(scopeName, forgotten);
      IdempotencyRecord seen = sequencer.remembered(p.idempotencyKey());
      if (seen != null) {
        p.answer(seen.epoch(), seen.offset(), true);
        return false;
      }
    }
    long bytes = Utf8.encodedLength(p.payload()) + Utf8.encodedLength(p.event()) + QUEUED_OVERHEAD_BYTES;
    if (!queued.isEmpty() && queuedBytes + bytes > deps.settings().scope().writeQueueBytes()) {
      deps.metrics().writeQueueRefusals.inc();
      p.refuse("the scope has " + queuedBytes + " bytes of publishes waiting for its durable write"
          + " (scopecast.scope.write-queue-bytes), try again");
      return false;
    }
    queued.add(new Waiting(p, now, bytes));
    queuedBytes += bytes;
    return true;
  }

  /**
   * Sequences everything queued (offsets, frames encoded once) and writes it in one batch, within
   * what is left of the oldest publish's budget; without durable history, or while it is down or
   * behind, commits at once (counted as not written).
   */
  private Behavior<Command> flush() {
    long now = deps.clock().millis();
    long oldest = queued.isEmpty() ? now : queued.peekFirst().at();
    List<Sequencer.Sequenced> batch = new ArrayList<>(queued.size());
    for (Waiting w; (w = queued.poll()) != null; ) {
      queuedBytes -= w.bytes();
      Publish p = w.publish();
      IdempotencyRecord seen = sequencer.remembered(p.idempotencyKey());
      if (seen != null) { // the same key twice in one batch
        p.answer(seen.epoch(), seen.offset(), true);
        continue;
      }
      batch.add(sequencer.sequence(p.event(), p.payload(), p.idempotencyKey(), now));
      replies.add(p);
    }
    if (batch.isEmpty()) return next();
    if (!durable.enabled() || durableBehind || !durable.isUp()) {
      if (durable.enabled()) {
        durable.notWritten(batch.size());
        durableIsBehind();
      }
      commit(batch);
      return next();
    }
    List<DurableHistory.Append> appends = new ArrayList<>(batch.size());
    for (Sequencer.Sequenced s : batch) appends.add(new DurableHistory.Append(s.entry(), s.idempotencyKey()));
    inFlight = batch;
    long budget = deps.settings().redis().timeout().toMillis() - (now - oldest);
    return startWrite(durable.append(scopeName, sequencer.epoch(), appends, type.historySize(), type.historyTtl()), budget);
  }

  /** Who waits for each sequenced event's answer, in order. */
  /** Publishes sequenced and not yet answered, in offset order. */
  private final ArrayDeque<Publish> replies = new ArrayDeque<>();

  private Behavior<Command> startWrite(java.util.concurrent.CompletionStage<Void> io, long budgetMillis) {
    long id = ++write;
    ctx.pipeToSelf(io, (v, err) -> new Written(id, err));
    timers.startSingleTimer("write-deadline", new WriteOverdue(id), Duration.ofMillis(Math.max(1, budgetMillis)));
    return writing;
  }

  private static final class WriteTimedOut extends RuntimeException {
    WriteTimedOut() {
      super("the durable write did not complete within scopecast.redis.timeout", null, false, false);
    }
  }

  /** The write in flight completed, failed, or ran out of budget (then whatever it does later is ignored). */
  private Behavior<Command> written(Throwable error) {
    write++; // a late completion of this write is stale from now on
    timers.cancel("write-deadline");
    if (error != null) {
      durable.writeFailed();
      durableIsBehind();
    }
    if (inFlight != null) {
      if (error != null) durable.notWritten(inFlight.size());
      commit(inFlight); // stored, or at least in memory: delivery goes on, the durable history gets a new epoch later
      inFlight = null;
    } else if (startingEpoch != null) {
      String epoch = startingEpoch;
      startingEpoch = null;
      if (error == null) newEpochStarted(epoch);
    }
    return next();
  }

  /** The events are stored (or the durable history is not to be waited for): history, delivery, acknowledgement. */
  private void commit(List<Sequencer.Sequenced> batch) {
    List<NodeFanout.Deliver> deliveries = new ArrayList<>(batch.size());
    for (Sequencer.Sequenced s : batch) {
      sequencer.commit(s);
      deliveries.add(new NodeFanout.Deliver(scopeName, sequencer.epoch(), s.offset(), s.frame(), s.ts()));
      deps.metrics().eventPublished(s.event());
    }
    // one message per node for the whole batch, sent before the publishers hear of it
    subscribers.broadcast(deliveries.size() == 1 ? deliveries.get(0) : new NodeFanout.DeliverAll(deliveries));
    for (Sequencer.Sequenced s : batch) replies.poll().answer(sequencer.epoch(), s.offset(), false);
  }

  private Behavior<Command> next() {
    if (!queued.isEmpty()) return flush();
    if (handOffRequested) return passivating || deps.handoff() == null ? Behaviors.stopped() : startHandOff();
    return serving;
  }

  // ---- the durable history falling behind (§11, §13.9) ---------------------------------------

  private void durableIsBehind() {
    if (durableBehind) return;
    durableBehind = true;
    if (deps.handoff() != null) deps.handoff().tell(new ScopeHandoff.MarkRedisSuspect(scopeName, true));
    timers.startTimerWithFixedDelay(RedisCheck.INSTANCE, REDIS_CHECK_EVERY);
  }

  /**
   * The durable history is up again: start a new epoch there before writing anything else (the
   * same epoch if nothing was published in it, so nobody has to resync).
   */
  private Behavior<Command> onRedisCheck() {
    if (!durableBehind || !durable.isUp()) return Behaviors.same();
    startingEpoch = sequencer.offset() == 0 ? sequencer.epoch() : Epochs.next();
    return startWrite(durable.startEpoch(scopeName, startingEpoch), deps.settings().redis().timeout().toMillis());
  }

  private void newEpochStarted(String epoch) {
    durableBehind = false;
    timers.cancel(RedisCheck.INSTANCE);
    if (deps.handoff() != null) deps.handoff().tell(new ScopeHandoff.MarkRedisSuspect(scopeName, false));
    if (epoch.equals(sequencer.epoch())) return;
    sequencer.startEpoch(epoch);
    subscribers.broadcast(new NodeFanout.ToSubscribers(scopeName,
        new ConnectionActor.ScopeResync(scopeName, epoch, 0, "redis_outage")));
    deps.metrics().resyncs.inc(subscribers.size());
  }

  // ---- subscribers ---------------------------------------------------------------------------

  private Behavior<Command> onSubscribe(Subscribe s) {
    passivating = false;
    long now = deps.clock().millis();
    lastActivity = now;
    boolean added = subscribers.add(s.conn(), s.user(), s.fanout());
    boolean recovered = s.since() == null || sequencer.canRecover(s.since(), now);
    s.fanout().tell(new NodeFanout.Attach(s.conn(), new ConnectionActor.Subscribed(scopeName, ctx.getSelf(),
        sequencer.epoch(), sequencer.offset(), recovered, s.requestId())));
    if (!added) return Behaviors.same();
    ctx.watchWith(s.conn(), new SubscriberStopped(s.conn()));
    if (presence != null) {
      if (presence.connectionAdded(s.user(), s.conn(), s.status(), s.statusText())) deps.metrics().presenceMembers.inc();
      presenceChanged();
    }
    if (isUserScope() && !userStatus.equals(ONLINE)) {
      s.fanout().tell(new NodeFanout.ToSubscribers(scopeName, userStatus, s.conn()));
    }
    return Behaviors.same();
  }

  private Behavior<Command> removeSubscriber(ActorRef<ConnectionActor.Command> conn) {
    Subscribers.Subscriber s = subscribers.remove(conn);
    if (s == null) return Behaviors.same();
    lastActivity = deps.clock().millis();
    ctx.unwatch(conn);
    s.fanout().tell(new NodeFanout.Detach(scopeName, conn, ctx.getSelf()));
    if (presence != null) {
      if (presence.connectionRemoved(s.user(), conn)) deps.metrics().presenceMembers.dec();
      presenceChanged();
    }
    if (subscribers.isEmpty() && isUserScope()) userStatus = ONLINE; // the last connection is gone (§13.13)
    return Behaviors.same();
  }

  private Behavior<Command> onClientPublish(ClientPublish p) {
    if (!subscribers.contains(p.from())) return Behaviors.same();
    lastActivity = deps.clock().millis();
    subscribers.broadcast(new NodeFanout.DeliverEphemeral(scopeName,
        ServerFrames.ephemeral(scopeName, p.event(), p.payload(), lastActivity, p.user()), p.from()));
    deps.metrics().clientEvents.inc();
    return Behaviors.same();
  }

  private Behavior<Command> onKick(Kick k) {
    subscribers.broadcast(new NodeFanout.ToSubscribers(scopeName, new ConnectionActor.Disconnect(k.close())));
    deps.metrics().kicks.inc(subscribers.size());
    k.replyTo().tell(new Kicked(subscribers.size()));
    return Behaviors.same();
  }

  // ---- presence (§6, §13.19) -----------------------------------------------------------------

  private boolean isUserScope() {
    return scope.type().equals("user");
  }

  private Behavior<Command> onUpdateStatus(UpdateStatus u) {
    Subscribers.Subscriber s = subscribers.get(u.conn());
    ActorRef<ConnectionActor.Command> origin = u.origin() != null ? u.origin() : u.conn();
    if (presence != null && s != null && presence.statusChanged(s.user(), origin, u.status(), u.text())) presenceChanged();
    return Behaviors.same();
  }

  /** Kept even without subscribers (a connection whose subscription is still pending learns it when it subscribes). */
  private Behavior<Command> onSetUserStatus(SetUserStatus u) {
    if (!isUserScope()) return Behaviors.same();
    userStatus = new ConnectionActor.UserStatus(u.status(), u.text(), u.origin());
    subscribers.broadcast(new NodeFanout.ToSubscribers(scopeName, userStatus));
    return Behaviors.same();
  }

  /** The reply agrees with the frames: pending changes are announced first, and the reply frame follows them. */
  private Behavior<Command> onGetPresence(GetPresence g) {
    List<ServerFrames.Member> members = List.of();
    if (presence != null) {
      if (presence.hasChanges()) flushPresence();
      members = presence.members();
      PresenceReplyTo via = g.via();
      if (via != null) {
        try {
          String frame = ServerFrames.presence(via.idJson() == null ? null : Json.parse(via.idJson()), scopeName, members);
          via.fanout().tell(new NodeFanout.PresenceReply(scopeName, via.conn(), frame));
        } catch (JsonProcessingException e) {
          ctx.getLog().warn("presence request with an id that is not JSON: dropped");
        }
      }
    }
    g.replyTo().tell(new PresenceMembers(scopeName, presence != null, members));
    return Behaviors.same();
  }

  /**
   * Presence changes go out at most once per batch interval: the first change after a quiet
   * interval at once, later ones together when the interval is over.
   */
  private void presenceChanged() {
    if (!presence.hasChanges() || timers.isTimerActive(PresenceWindow.INSTANCE)) return;
    flushPresence();
    timers.startSingleTimer(PresenceWindow.INSTANCE, presenceInterval);
  }

  private Behavior<Command> onPresenceWindow() {
    if (presence != null && presence.hasChanges()) {
      flushPresence();
      timers.startSingleTimer(PresenceWindow.INSTANCE, presenceInterval);
    }
    return Behaviors.same();
  }

  private void flushPresence() {
    List<PresenceTracker.Announcement<ActorRef<ConnectionActor.Command>>> out = presence.flush();
    if (out.isEmpty() || subscribers.isEmpty()) return;
    subscribers.broadcast(new NodeFanout.DeliverPresence(scopeName,
        out.stream().map(a -> new NodeFanout.PresenceFrame(a.frame(), a.except(), a.leave())).toList()));
  }

  // ---- history reads -------------------------------------------------------------------------

  /** From memory when it holds the range; older ranges from the durable history (when it is whole). */
  private Behavior<Command> onReadHistory(ReadHistory r) {
    long now = deps.clock().millis();
    if (!sequencer.inMemory(r.after(), now) && !durableBehind && durable.isUp()) {
      String readEpoch = sequencer.epoch();
      ctx.pipeToSelf(durable.read(scopeName, r.after(), r.limit()), (entries, err) -> new HistoryRead(r, readEpoch, entries, err));
      return Behaviors.same();
    }
    r.replyTo().tell(page(r, sequencer.page(r.after(), r.limit(), r.maxChars(), now)));
    return Behaviors.same();
  }

  private Behavior<Command> onHistoryRead(HistoryRead h) {
    ReadHistory r = h.request();
    long now = deps.clock().millis();
    if (h.error() != null || !h.epoch().equals(sequencer.epoch())) {
      r.replyTo().tell(page(r, sequencer.page(r.after(), r.limit(), r.maxChars(), now)));
    } else {
      long cutoff = now - type.historyTtl().toMillis();
      r.replyTo().tell(page(r, Sequencer.bounded(h.entries().stream().filter(e -> e.ts() >= cutoff).toList(), r.maxChars())));
    }
    return Behaviors.same();
  }

  private HistoryPage page(ReadHistory r, List<HistoryEntry> events) {
    return new HistoryPage(scopeName, sequencer.epoch(), sequencer.offset(), events, r.request());
  }

  // ---- moving to another node, passivating ---------------------------------------------------

  /**
   * Gives epoch, offset, recent history and idempotency keys to the next owner (through every
   * node's {@link ScopeHandoff}), and stops once they hold it; meanwhile every message is forwarded.
   */
  private Behavior<Command> startHandOff() {
    ScopeHandoff.ScopeState state = new ScopeHandoff.ScopeState(Epochs.next(), scopeName,
        sequencer.handOff(deps.clock().millis(), HANDOFF_MAX_HISTORY_CHARS, HANDOFF_MAX_KEYS, durableBehind));
    ctx.ask(ScopeHandoff.Given.class, deps.handoff(), HANDOFF_WITHIN, replyTo -> new ScopeHandoff.Give(state, replyTo),
        (given, err) -> HandedOff.INSTANCE);
    return handingOff;
  }

  /** A command that reached this entity after it started handing off goes through sharding to the next owner. */
  private Behavior<Command> forwardToNextOwner(Command c) {
    ClusterSharding.get(ctx.getSystem()).entityRefFor(TYPE_KEY, scopeName).tell(c);
    return Behaviors.same();
  }

  private Behavior<Command> onTick() {
    long now = deps.clock().millis();
    sequencer.expire(now);
    if (subscribers.isEmpty() && now - lastActivity >= idleBeforePassivationMillis && !passivating && inFlight == null
        && startingEpoch == null && queued.isEmpty() && !durableBehind) {
      passivating = true;
      shard.tell(new ClusterSharding.Passivate<>(ctx.getSelf()));
    }
    return Behaviors.same();
  }
}
