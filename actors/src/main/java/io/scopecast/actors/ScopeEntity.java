package io.scopecast.actors;

import io.scopecast.actors.history.Epochs;
import io.scopecast.actors.history.HistoryEntry;
import io.scopecast.actors.history.MemoryHistory;
import io.scopecast.actors.history.RedisHistory;
import io.scopecast.actors.metrics.ScopecastMetrics;
import io.scopecast.actors.presence.PresenceTracker;
import io.scopecast.actors.protocol.Position;
import io.scopecast.actors.protocol.ScopeId;
import io.scopecast.actors.protocol.ServerFrames;
import io.scopecast.actors.settings.ScopecastSettings;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;

/**
 * The single sequencer of one scope, sharded by scope id across the cluster. It gives every
 * durable event the next offset, keeps the history, encodes the event frame once and sends it to
 * one {@link NodeFanout} per node that has subscribers. It watches its subscribers, so a
 * connection that stops, on any node, leaves without a message of its own.
 *
 * <p>With Redis, every durable event is in Redis before it is acknowledged or sent to anyone:
 * while one pipelined write is in flight, further publishes wait and go out together in the next.
 * If Redis fails, publishing goes on with the memory history; once Redis is back the scope starts
 * a new epoch (offsets restart at 1), writes that to Redis and tells its subscribers to resync, so
 * Redis never holds a history with a hole (§11, §13.9).
 *
 * <p>It passivates itself, and only when it has no subscribers and has been idle: sharding's own
 * idle passivation counts only messages sent through sharding and would stop a scope that still
 * has subscribers.
 */
public final class ScopeEntity extends AbstractBehavior<ScopeEntity.Command> {

  public static final EntityTypeKey<Command> TYPE_KEY = EntityTypeKey.create(Command.class, "scope");

  public sealed interface Command extends CborSerializable {}

  /**
   * Subscribes {@code conn} (on the node of {@code fanout}); answered through the fanout with a
   * {@link ConnectionActor.Subscribed} carrying the current position and whether {@code since}
   * (null: none) can be recovered from history.
   */
  public record Subscribe(ActorRef<ConnectionActor.Command> conn, ActorRef<NodeFanout.Command> fanout, String user,
      Position since, long requestId, String status, String statusText) implements Command {
    public Subscribe(ActorRef<ConnectionActor.Command> conn, ActorRef<NodeFanout.Command> fanout, String user,
        Position since, long requestId) {
      this(conn, fanout, user, since, requestId, null, null);
    }
  }

  public record Unsubscribe(ActorRef<ConnectionActor.Command> conn) implements Command {}

  /** A durable event from the server API; {@code payload} is JSON text. */
  public record Publish(String event, String payload, String idempotencyKey, ActorRef<Published> replyTo)
      implements Command {}

  /** The event's position; {@code duplicate} when an earlier publish with the same key is answered again. */
  public record Published(String epoch, long offset, boolean duplicate) implements CborSerializable {}

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
  public record Kick(int code, String reason, boolean reconnect, ActorRef<Kicked> replyTo) implements Command {}

  public record Kicked(int connections) implements CborSerializable {}

  /** A subscriber's user changed status (§6): updates the scope's presence. */
  public record UpdateStatus(ActorRef<ConnectionActor.Command> conn, String status, String text) implements Command {}

  /**
   * Sent to the user's own {@code user:} scope, which knows all the user's connections: stores the
   * status and tells every connection, which then update their presence scopes.
   */
  public record SetUserStatus(String status, String text) implements Command {}

  public record GetPresence(ActorRef<PresenceMembers> replyTo) implements Command {}

  /** {@code enabled} is false for scope types without presence. */
  public record PresenceMembers(String scope, boolean enabled, List<ServerFrames.Member> members)
      implements CborSerializable {}

  public record GetInfo(ActorRef<Info> replyTo) implements Command {}

  public record Info(String scope, String epoch, long offset, String node, int subscribers) implements CborSerializable {}

  private record SubscriberStopped(ActorRef<ConnectionActor.Command> conn) implements Command {}

  private enum Tick implements Command { INSTANCE }

  private enum FlushPresence implements Command { INSTANCE }

  /** Sharding's stop message: the scope moves to another node (or passivates). */
  public enum HandOff implements Command { INSTANCE }

  private enum HandedOff implements Command { INSTANCE }

  /** Where the scope starts: handed off, loaded from Redis, or new. */
  private record Started(StartState state) implements Command {}

  private record Written(List<Pending> batch, Throwable error) implements Command {}

  private record EpochStarted(String epoch, Throwable error) implements Command {}

  private record HistoryRead(ReadHistory request, String epoch, List<HistoryEntry> entries, Throwable error)
      implements Command {}

  private enum RedisCheck implements Command { INSTANCE }

  /** A publish that got its offset and frame and waits for Redis. */
  private record Pending(Publish publish, long offset, String frame, long ts) {}

  /** What every scope entity of a node shares. */
  public record Deps(ScopecastSettings settings, ScopecastMetrics metrics, String nodeId, Clock clock,
      ActorRef<ScopeHandoff.Command> handoff, RedisHistory durable) {
    public Deps(ScopecastSettings settings, ScopecastMetrics metrics, String nodeId, Clock clock) {
      this(settings, metrics, nodeId, clock, null, null);
    }

    public Deps(ScopecastSettings settings, ScopecastMetrics metrics, String nodeId) {
      this(settings, metrics, nodeId, Clock.systemUTC(), null, null);
    }
  }

  /** Registers the scope entity type with sharding on this node and returns the shard region. */
  public static ActorRef<org.apache.pekko.cluster.sharding.typed.ShardingEnvelope<Command>> initSharding(
      org.apache.pekko.actor.typed.ActorSystem<?> system, Deps deps) {
    return ClusterSharding.get(system).init(
        org.apache.pekko.cluster.sharding.typed.javadsl.Entity.of(TYPE_KEY,
                ctx -> create(ScopeId.of(ctx.getEntityId()), deps, ctx.getShard()))
            .withStopMessage(HandOff.INSTANCE));
  }

  /**
   * A scope that starts first finds out where it stands, stashing every message meanwhile: what its
   * previous owner handed off (if it moved rather than crashed), else what Redis holds, else a new
   * epoch.
   */
  public static Behavior<Command> create(ScopeId scope, Deps deps,
      ActorRef<ClusterSharding.ShardCommand> shard) {
    return Behaviors.withStash(10_000, stash -> Behaviors.setup(ctx -> Behaviors.withTimers(timers -> {
      if (deps.handoff() == null && deps.durable() == null) {
        return new ScopeEntity(ctx, timers, scope, deps, shard, StartState.fresh(false));
      }
      ctx.pipeToSelf(StartState.find(scope, deps, ctx.getSystem()),
          (state, err) -> new Started(err != null ? StartState.fresh(deps.durable() != null) : state));
      return Behaviors.receive(Command.class)
          .onMessage(Started.class, st -> stash.unstashAll(new ScopeEntity(ctx, timers, scope, deps, shard, st.state())))
          .onAnyMessage(m -> {
            stash.stash(m);
            return Behaviors.same();
          })
          .build();
    })));
  }

  /**
   * The state a scope starts from. {@code redisDirty}: Redis may miss events of this epoch (or
   * could not be reached), so a new epoch must be started there once it can be.
   */
  record StartState(String epoch, long offset, List<HistoryEntry> history, List<ScopeHandoff.IdempotencyKey> keys,
      boolean redisDirty) {

    static StartState fresh(boolean redisDirty) {
      return new StartState(Epochs.next(), 0, List.of(), List.of(), redisDirty);
    }

    static CompletionStage<StartState> find(ScopeId scope, Deps deps, ActorSystem<?> system) {
      String name = scope.toString();
      CompletionStage<ScopeHandoff.Taken> taken = deps.handoff() == null
          ? CompletableFuture.completedFuture(new ScopeHandoff.Taken(null, false))
          : AskPattern.ask(deps.handoff(), replyTo -> new ScopeHandoff.Take(name, replyTo), Duration.ofSeconds(5),
              system.scheduler());
      return taken.thenCompose(t -> {
        if (t.state() != null) {
          ScopeHandoff.ScopeState h = t.state();
          return CompletableFuture.completedFuture(
              new StartState(h.epoch(), h.offset(), h.history(), h.idempotencyKeys(), h.redisDirty()));
        }
        RedisHistory redis = deps.durable();
        if (redis == null) return CompletableFuture.completedFuture(fresh(false));
        if (t.redisSuspect()) return newEpochInRedis(name, redis);
        int size = deps.settings().type(scope.type()).historySize();
        // one slow answer must not cost the scope its epoch: a failed read is tried once more
        return redis.load(name, size)
            .handle((loaded, err) -> err == null ? CompletableFuture.completedFuture(loaded) : redis.load(name, size))
            .thenCompose(x -> x)
            .thenCompose(loaded -> loaded.epoch() == null
                ? newEpochInRedis(name, redis)
                : CompletableFuture.completedFuture(fromRedis(loaded)));
      });
    }

    private static CompletionStage<StartState> newEpochInRedis(String scope, RedisHistory redis) {
      StartState s = fresh(false);
      return redis.startEpoch(scope, s.epoch(), 0).handle((v, e) -> e == null ? s : fresh(true));
    }

    private static StartState fromRedis(RedisHistory.Loaded l) {
      List<ScopeHandoff.IdempotencyKey> keys = new ArrayList<>();
      l.keys().forEach((k, r) -> keys.add(new ScopeHandoff.IdempotencyKey(k, r.epoch(), r.offset(), r.at())));
      keys.sort((a, b) -> Long.compare(a.at(), b.at()));
      return new StartState(l.epoch(), l.offset(), l.entries(), keys, false);
    }
  }

  private record Subscriber(String user, ActorRef<NodeFanout.Command> fanout) {}

  private final TimerScheduler<Command> timers;
  private final ScopeId scope;
  private final String scopeName;
  private final Deps deps;
  private final ActorRef<ClusterSharding.ShardCommand> shard;
  private final MemoryHistory history;
  private final long idleBeforePassivationMillis;
  /** Null for scope types without presence. */
  private final PresenceTracker<ActorRef<ConnectionActor.Command>> presence;
  private final long presenceIntervalMillis;
  private long lastPresenceFlush;
  /** In a user's own scope: the user's status, shared by all their connections (§13.13). */
  private String userStatus = "online";
  private String userStatusText = "";

  private String epoch;
  /** The last committed offset: stored (when Redis is used), in history, delivered. What subscribers see. */
  private long offset;
  /** The last offset given to a publish; ahead of {@link #offset} while a Redis write is in flight. */
  private long sequenced;
  /** Redis may miss events of the current epoch: a new epoch starts there once it is up. */
  private boolean redisDirty;
  /** A write to Redis (events or a new epoch) is in flight; publishes wait in {@link #queued}. */
  private boolean writing;
  private final ArrayDeque<Publish> queued = new ArrayDeque<>();
  /** Sharding asked to move the scope while a write was in flight: hand off once it is done. */
  private boolean handOffRequested;
  /** Asked sharding to passivate: stop without handing anything off. */
  private boolean passivating;
  /** Handing the state to the next owner: nothing more is sequenced here. */
  private boolean handingOff;
  private final Map<ActorRef<ConnectionActor.Command>, Subscriber> subscribers = new HashMap<>();
  /** Nodes with subscribers: their fanout and how many subscribers they have. */
  private final Map<ActorRef<NodeFanout.Command>, Integer> nodes = new HashMap<>();
  private final LinkedHashMap<String, Remembered> idempotency = new LinkedHashMap<>();
  private long lastActivity;

  private record Remembered(Published result, long at) {}

  private ScopeEntity(ActorContext<Command> ctx, TimerScheduler<Command> timers, ScopeId scope, Deps deps,
      ActorRef<ClusterSharding.ShardCommand> shard, StartState start) {
    super(ctx);
    this.timers = timers;
    this.scope = scope;
    this.scopeName = scope.toString();
    this.deps = deps;
    this.shard = shard;
    ScopecastSettings.ScopeType type = deps.settings().type(scope.type());
    this.history = new MemoryHistory(type.historySize(), type.historyTtl().toMillis());
    this.idleBeforePassivationMillis = Math.max(deps.settings().scope().passivateAfter().toMillis(),
        type.historyTtl().toMillis());
    long tick = Math.max(1000, Math.min(60_000, idleBeforePassivationMillis / 4));
    timers.startTimerWithFixedDelay(Tick.INSTANCE, Duration.ofMillis(tick));
    this.lastActivity = deps.clock().millis();
    this.presence = type.presence()
        ? new PresenceTracker<>(scopeName, deps.settings().presence().maxMembersDetailed()) : null;
    this.presenceIntervalMillis = deps.settings().presence().batchInterval().toMillis();
    this.epoch = start.epoch();
    this.offset = start.offset();
    this.sequenced = start.offset();
    for (HistoryEntry e : start.history()) history.append(e);
    history.expire(deps.clock().millis());
    for (ScopeHandoff.IdempotencyKey k : start.keys()) {
      idempotency.put(k.key(), new Remembered(new Published(k.epoch(), k.offset(), false), k.at()));
    }
    if (start.redisDirty()) markRedisDirty();
    deps.metrics().scopesActive.inc();
  }

  @Override
  public Receive<Command> createReceive() {
    return newReceiveBuilder()
        .onMessage(Publish.class, this::onPublish)
        .onMessage(Written.class, this::onWritten)
        .onMessageEquals(RedisCheck.INSTANCE, this::onRedisCheck)
        .onMessage(EpochStarted.class, this::onEpochStarted)
        .onMessage(HistoryRead.class, this::onHistoryRead)
        .onMessage(Subscribe.class, this::onSubscribe)
        .onMessage(Unsubscribe.class, u -> removeSubscriber(u.conn()))
        .onMessage(SubscriberStopped.class, s -> removeSubscriber(s.conn()))
        .onMessage(ClientPublish.class, this::onClientPublish)
        .onMessage(ReadHistory.class, this::onReadHistory)
        .onMessage(GetInfo.class, this::onGetInfo)
        .onMessage(Kick.class, this::onKick)
        .onMessage(UpdateStatus.class, this::onUpdateStatus)
        .onMessage(SetUserStatus.class, this::onSetUserStatus)
        .onMessage(GetPresence.class, this::onGetPresence)
        .onMessageEquals(FlushPresence.INSTANCE, this::flushPresence)
        .onMessageEquals(HandOff.INSTANCE, this::onHandOff)
        .onMessageEquals(HandedOff.INSTANCE, Behaviors::stopped)
        .onMessageEquals(Tick.INSTANCE, this::onTick)
        .onSignal(PostStop.class, s -> {
          deps.metrics().scopesActive.dec();
          if (presence != null) deps.metrics().presenceMembers.dec(presence.size());
          return this;
        })
        .build();
  }

  private Behavior<Command> onPublish(Publish p) {
    if (handingOff || handOffRequested) return forwardToNextOwner(p);
    long now = deps.clock().millis();
    lastActivity = now;
    if (p.idempotencyKey() != null) {
      forgetOldKeys(now);
      Remembered seen = idempotency.get(p.idempotencyKey());
      if (seen != null) {
        p.replyTo().tell(new Published(seen.result().epoch(), seen.result().offset(), true));
        return this;
      }
    }
    queued.add(p);
    if (!writing) flush();
    return this;
  }

  /**
   * Sequences everything queued (offsets, frames encoded once) and writes it to Redis in one
   * pipelined batch; without Redis, or while it is down, commits at once.
   */
  private void flush() {
    long now = deps.clock().millis();
    List<Pending> batch = new ArrayList<>(queued.size());
    for (Publish p; (p = queued.poll()) != null; ) {
      Remembered seen = p.idempotencyKey() == null ? null : idempotency.get(p.idempotencyKey());
      if (seen != null) {
        p.replyTo().tell(new Published(seen.result().epoch(), seen.result().offset(), true));
        continue;
      }
      long next = ++sequenced;
      batch.add(new Pending(p, next, ServerFrames.event(scopeName, next, p.event(), p.payload(), now), now));
      if (p.idempotencyKey() != null) idempotency.put(p.idempotencyKey(), new Remembered(new Published(epoch, next, false), now));
    }
    if (batch.isEmpty()) return;
    RedisHistory redis = deps.durable();
    if (redis == null || redisDirty || !redis.isUp()) {
      if (redis != null) markRedisDirty();
      commit(batch);
      return;
    }
    writing = true;
    List<RedisHistory.Append> appends = new ArrayList<>(batch.size());
    for (Pending pe : batch) {
      appends.add(new RedisHistory.Append(new HistoryEntry(pe.offset(), pe.ts(), pe.frame()), pe.publish().idempotencyKey()));
    }
    ScopecastSettings.ScopeType type = deps.settings().type(scope.type());
    getContext().pipeToSelf(redis.append(scopeName, epoch, appends, type.historySize(), type.historyTtl()),
        (v, err) -> new Written(batch, err));
  }

  private Behavior<Command> onWritten(Written w) {
    writing = false;
    if (w.error() != null) markRedisDirty(); // delivery goes on from memory; Redis gets a new epoch later
    commit(w.batch());
    return afterWrite();
  }

  /** The events are stored (or Redis is not to be waited for): history, delivery, acknowledgement. */
  private void commit(List<Pending> batch) {
    for (Pending pe : batch) {
      offset = pe.offset();
      history.append(new HistoryEntry(pe.offset(), pe.ts(), pe.frame()));
      deliver(pe.offset(), pe.frame(), pe.ts());
      deps.metrics().eventPublished(pe.publish().event());
      pe.publish().replyTo().tell(new Published(epoch, pe.offset(), false));
    }
  }

  private Behavior<Command> afterWrite() {
    if (handOffRequested && queued.isEmpty()) return startHandOff();
    if (!queued.isEmpty()) flush();
    return this;
  }

  // ---- Redis outages (§11, §13.9) ------------------------------------------------------------

  private void markRedisDirty() {
    if (redisDirty) return;
    redisDirty = true;
    if (deps.handoff() != null) deps.handoff().tell(new ScopeHandoff.MarkRedisSuspect(scopeName, true));
    timers.startTimerWithFixedDelay(RedisCheck.INSTANCE, Duration.ofSeconds(1));
  }

  /** Redis is back: start a new epoch there before writing anything else. */
  private Behavior<Command> onRedisCheck() {
    if (!redisDirty || writing || handingOff || handOffRequested || !deps.durable().isUp()) return this;
    writing = true;
    String next = Epochs.next();
    getContext().pipeToSelf(deps.durable().startEpoch(scopeName, next, 0), (v, err) -> new EpochStarted(next, err));
    return this;
  }

  private Behavior<Command> onEpochStarted(EpochStarted e) {
    writing = false;
    if (e.error() == null) {
      epoch = e.epoch();
      offset = 0;
      sequenced = 0;
      history.clear();
      redisDirty = false;
      timers.cancel(RedisCheck.INSTANCE);
      if (deps.handoff() != null) deps.handoff().tell(new ScopeHandoff.MarkRedisSuspect(scopeName, false));
      NodeFanout.Resync resync = new NodeFanout.Resync(scopeName, epoch, 0, "redis_outage");
      for (ActorRef<NodeFanout.Command> node : nodes.keySet()) node.tell(resync);
      deps.metrics().resyncs.inc(subscribers.size());
    }
    return afterWrite();
  }

  private void deliver(long eventOffset, String frame, long ts) {
    if (nodes.isEmpty()) return;
    NodeFanout.Deliver d = new NodeFanout.Deliver(scopeName, epoch, eventOffset, frame, ts);
    for (ActorRef<NodeFanout.Command> node : nodes.keySet()) node.tell(d);
  }

  private void forgetOldKeys(long now) {
    long window = deps.settings().scope().idempotencyWindow().toMillis();
    int max = deps.settings().scope().idempotencyMaxKeys();
    List<String> forgotten = new ArrayList<>();
    Iterator<Map.Entry<String, Remembered>> it = idempotency.entrySet().iterator();
    while (it.hasNext()) {
      Map.Entry<String, Remembered> r = it.next();
      if (now - r.getValue().at() > window || idempotency.size() >= max) {
        forgotten.add(r.getKey());
        it.remove();
      } else {
        break;
      }
    }
    if (deps.durable() != null && !forgotten.isEmpty()) deps.durable().forgetKeys(scopeName, forgotten);
  }

  private Behavior<Command> onSubscribe(Subscribe s) {
    if (handingOff || handOffRequested) return forwardToNextOwner(s);
    passivating = false;
    lastActivity = deps.clock().millis();
    Subscriber previous = subscribers.put(s.conn(), new Subscriber(s.user(), s.fanout()));
    boolean recovered = s.since() == null || canRecover(s.since());
    s.fanout().tell(new NodeFanout.Attach(scopeName, s.conn(), getContext().getSelf(), epoch, offset, recovered,
        s.requestId()));
    if (previous == null) {
      getContext().watchWith(s.conn(), new SubscriberStopped(s.conn()));
      nodes.merge(s.fanout(), 1, Integer::sum);
      if (presence != null && presence.connectionAdded(s.user(), s.conn(), s.status(), s.statusText())) {
        deps.metrics().presenceMembers.inc();
      }
      if (presence != null) presenceChanged();
      if (isUserScope() && (!userStatus.equals("online") || !userStatusText.isEmpty())) {
        s.fanout().tell(new NodeFanout.UserStatus(scopeName, userStatus, userStatusText, s.conn()));
      }
    }
    return this;
  }

  /** §5: same epoch, not beyond the current offset, and every later offset still in history. */
  private boolean canRecover(Position since) {
    if (!since.epoch().equals(epoch) || since.offset() > offset) return false;
    history.expire(deps.clock().millis());
    return history.holdsRange(since.offset(), offset);
  }

  private Behavior<Command> removeSubscriber(ActorRef<ConnectionActor.Command> conn) {
    Subscriber s = subscribers.remove(conn);
    if (s == null) return this;
    lastActivity = deps.clock().millis();
    getContext().unwatch(conn);
    s.fanout().tell(new NodeFanout.Detach(scopeName, conn, getContext().getSelf()));
    nodes.computeIfPresent(s.fanout(), (k, n) -> n > 1 ? n - 1 : null);
    if (presence != null) {
      if (presence.connectionRemoved(s.user(), conn)) deps.metrics().presenceMembers.dec();
      presenceChanged();
    }
    if (subscribers.isEmpty() && isUserScope()) {
      userStatus = "online"; // status resets when the user's last connection is gone
      userStatusText = "";
    }
    return this;
  }

  // ---- presence (§6) -------------------------------------------------------------------------

  private boolean isUserScope() {
    return scope.type().equals("user");
  }

  private Behavior<Command> onUpdateStatus(UpdateStatus u) {
    Subscriber s = subscribers.get(u.conn());
    if (presence != null && s != null && presence.statusChanged(s.user(), u.conn(), u.status(), u.text())) {
      presenceChanged();
    }
    return this;
  }

  private Behavior<Command> onSetUserStatus(SetUserStatus u) {
    if (!isUserScope() || subscribers.isEmpty()) return this;
    userStatus = u.status();
    userStatusText = u.text();
    NodeFanout.UserStatus msg = new NodeFanout.UserStatus(scopeName, userStatus, userStatusText, null);
    for (ActorRef<NodeFanout.Command> node : nodes.keySet()) node.tell(msg);
    return this;
  }

  private Behavior<Command> onGetPresence(GetPresence g) {
    g.replyTo().tell(new PresenceMembers(scopeName, presence != null, presence == null ? List.of() : presence.members()));
    return this;
  }

  /**
   * Presence changes go out at most once per batch interval: the first change after a quiet
   * interval at once, later ones together when the interval is over.
   */
  private void presenceChanged() {
    if (!presence.hasChanges() || timers.isTimerActive(FlushPresence.INSTANCE)) return;
    long wait = lastPresenceFlush + presenceIntervalMillis - System.currentTimeMillis();
    if (wait <= 0) flushPresence();
    else timers.startSingleTimer(FlushPresence.INSTANCE, Duration.ofMillis(wait));
  }

  private Behavior<Command> flushPresence() {
    lastPresenceFlush = System.currentTimeMillis();
    List<PresenceTracker.Announcement<ActorRef<ConnectionActor.Command>>> out = presence.flush();
    if (out.isEmpty() || nodes.isEmpty()) return this;
    List<NodeFanout.PresenceFrame> frames = out.stream()
        .map(a -> new NodeFanout.PresenceFrame(a.frame(), a.except(), a.leave())).toList();
    NodeFanout.DeliverPresence d = new NodeFanout.DeliverPresence(scopeName, frames);
    for (ActorRef<NodeFanout.Command> node : nodes.keySet()) node.tell(d);
    return this;
  }

  private Behavior<Command> onClientPublish(ClientPublish p) {
    if (!subscribers.containsKey(p.from())) return this;
    lastActivity = deps.clock().millis();
    sendEphemeral(ServerFrames.ephemeral(scopeName, p.event(), p.payload(), lastActivity, p.user()), p.from());
    deps.metrics().clientEvents.inc();
    return this;
  }

  /** One message per node with subscribers; {@code except} (may be null) does not get it. */
  private void sendEphemeral(String frame, ActorRef<ConnectionActor.Command> except) {
    NodeFanout.DeliverEphemeral d = new NodeFanout.DeliverEphemeral(scopeName, frame, except);
    for (ActorRef<NodeFanout.Command> node : nodes.keySet()) node.tell(d);
  }

  /** From memory when it holds the range; older ranges from Redis (when its history is whole). */
  private Behavior<Command> onReadHistory(ReadHistory r) {
    history.expire(deps.clock().millis());
    boolean inMemory = r.after() >= offset || (history.size() > 0 && r.after() + 1 >= history.firstOffset());
    RedisHistory redis = deps.durable();
    if (!inMemory && redis != null && !redisDirty && redis.isUp()) {
      String readEpoch = epoch;
      getContext().pipeToSelf(redis.read(scopeName, r.after(), r.limit()),
          (entries, err) -> new HistoryRead(r, readEpoch, entries, err));
      return this;
    }
    r.replyTo().tell(new HistoryPage(scopeName, epoch, offset, bounded(history.readAfter(r.after(), r.limit()), r.maxChars()),
        r.request()));
    return this;
  }

  /** The longest prefix within {@code maxChars} (at least one entry). */
  private static List<HistoryEntry> bounded(List<HistoryEntry> entries, long maxChars) {
    long chars = 0;
    for (int i = 0; i < entries.size(); i++) {
      chars += entries.get(i).frame().length();
      if (chars > maxChars && i > 0) return entries.subList(0, i);
    }
    return entries;
  }

  private Behavior<Command> onHistoryRead(HistoryRead h) {
    List<HistoryEntry> entries;
    if (h.error() != null || !h.epoch().equals(epoch)) {
      entries = history.readAfter(h.request().after(), h.request().limit());
    } else {
      long cutoff = deps.clock().millis() - deps.settings().type(scope.type()).historyTtl().toMillis();
      entries = h.entries().stream().filter(e -> e.ts() >= cutoff).toList();
    }
    h.request().replyTo().tell(new HistoryPage(scopeName, epoch, offset, bounded(entries, h.request().maxChars()),
        h.request().request()));
    return this;
  }

  private Behavior<Command> onGetInfo(GetInfo g) {
    g.replyTo().tell(new Info(scopeName, epoch, offset, deps.nodeId(), subscribers.size()));
    return this;
  }

  private Behavior<Command> onKick(Kick k) {
    NodeFanout.DisconnectSubscribers d = new NodeFanout.DisconnectSubscribers(scopeName, k.code(), k.reason(), k.reconnect());
    for (ActorRef<NodeFanout.Command> node : nodes.keySet()) node.tell(d);
    deps.metrics().kicks.inc(subscribers.size());
    k.replyTo().tell(new Kicked(subscribers.size()));
    return this;
  }

  // ---- moving to another node ---------------------------------------------------------------

  /**
   * Sharding moves the scope: give epoch, offset, recent history and idempotency keys to the next
   * owner (through every node's {@link ScopeHandoff}), and stop once they hold it.
   */
  private Behavior<Command> onHandOff() {
    if (passivating || deps.handoff() == null) return Behaviors.stopped();
    if (writing || !queued.isEmpty()) {
      handOffRequested = true; // finish the write first: its events are sequenced and must stay
      return this;
    }
    return startHandOff();
  }

  private Behavior<Command> startHandOff() {
    handingOff = true;
    ScopeHandoff.ScopeState state = snapshot();
    getContext().ask(ScopeHandoff.Given.class, deps.handoff(), Duration.ofSeconds(10),
        replyTo -> new ScopeHandoff.Give(state, replyTo), (given, err) -> HandedOff.INSTANCE);
    return this;
  }

  private static final int HANDOFF_MAX_HISTORY_BYTES = 512 * 1024;
  private static final int HANDOFF_MAX_KEYS = 2000;

  private ScopeHandoff.ScopeState snapshot() {
    history.expire(deps.clock().millis());
    List<HistoryEntry> all = history.all();
    int from = all.size();
    long bytes = 0;
    while (from > 0 && bytes + all.get(from - 1).frame().length() <= HANDOFF_MAX_HISTORY_BYTES) {
      bytes += all.get(--from).frame().length();
    }
    List<ScopeHandoff.IdempotencyKey> keys = new java.util.ArrayList<>();
    idempotency.forEach((k, r) -> keys.add(new ScopeHandoff.IdempotencyKey(k, r.result().epoch(), r.result().offset(), r.at())));
    List<ScopeHandoff.IdempotencyKey> newest = keys.subList(Math.max(0, keys.size() - HANDOFF_MAX_KEYS), keys.size());
    return new ScopeHandoff.ScopeState(Epochs.next(), scopeName, epoch, offset, List.copyOf(all.subList(from, all.size())),
        List.copyOf(newest), redisDirty);
  }

  /** A command that reached this entity after it started handing off goes through sharding to the next owner. */
  private Behavior<Command> forwardToNextOwner(Command c) {
    ClusterSharding.get(getContext().getSystem()).entityRefFor(TYPE_KEY, scopeName).tell(c);
    return this;
  }

  private Behavior<Command> onTick() {
    long now = deps.clock().millis();
    history.expire(now);
    if (subscribers.isEmpty() && now - lastActivity >= idleBeforePassivationMillis && !passivating && !writing
        && queued.isEmpty() && !redisDirty) {
      passivating = true;
      shard.tell(new ClusterSharding.Passivate<>(getContext().getSelf()));
    }
    return this;
  }
}
