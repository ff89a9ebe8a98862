package io.scopecast.actors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.scopecast.actors.connection.ConnectionActor;
import io.scopecast.actors.history.HistoryEntry;
import io.scopecast.actors.history.RedisHistory;
import io.scopecast.actors.metrics.ScopecastMetrics;
import io.scopecast.actors.protocol.Position;
import io.scopecast.actors.protocol.ScopeId;
import io.scopecast.actors.scope.ScopeEntity;
import io.scopecast.actors.settings.ScopecastSettings;
import io.scopecast.actors.testing.ManualClock;
import io.scopecast.actors.testing.RedisServer;
import io.scopecast.actors.testing.TestSettings;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** A scope's history and offsets in a real Redis: they survive the scope's owner, and outages never leave a hole. */
class RedisDurabilityTest {
  private static ActorTestKit testKit;
  private static RedisServer redis;

  @BeforeAll
  static void start() {
    RedisServer.requireInstalled();
    redis = RedisServer.start();
    testKit = ActorTestKit.create();
  }

  @AfterAll
  static void stop() {
    if (testKit != null) testKit.shutdownTestKit();
    if (redis != null) redis.close();
  }

  private final ManualClock clock = new ManualClock();
  private final ScopecastMetrics metrics = new ScopecastMetrics();
  private final TestProbe<ScopeEntity.PublishResult> published = testKit.createTestProbe();
  private ScopecastSettings settings;
  private RedisHistory store;

  @BeforeEach
  void connect() {
    settings = TestSettings.with("scopecast.redis.url", redis.url(), "scopecast.history.size", 5, "scopecast.history.ttl", "1m");
    store = RedisHistory.connect(settings.redis(), metrics);
    store.connected().toCompletableFuture().orTimeout(10, TimeUnit.SECONDS).join();
  }

  @AfterEach
  void disconnect() {
    store.close();
  }

  /** A new incarnation of the scope's entity, as after its node crashed (nothing handed off). */
  private ActorRef<ScopeEntity.Command> owner(String scope) {
    return testKit.spawn(ScopeEntity.create(ScopeId.of(scope),
        new ScopeEntity.Deps(settings, metrics, "node-a", clock, null, store),
        testKit.<ClusterSharding.ShardCommand>createTestProbe().getRef()));
  }

  private ScopeEntity.Published publish(ActorRef<ScopeEntity.Command> e, String key) {
    e.tell(new ScopeEntity.Publish("e", "{}", key, published.getRef()));
    return published.expectMessageClass(ScopeEntity.Published.class, Duration.ofSeconds(5));
  }

  private NodeFanout.Attach subscribe(ActorRef<ScopeEntity.Command> e, TestProbe<NodeFanout.Command> node, Position since) {
    e.tell(new ScopeEntity.Subscribe(testKit.<ConnectionActor.Command>createTestProbe().getRef(), node.getRef(), "u", since, 1));
    return node.expectMessageClass(NodeFanout.Attach.class, Duration.ofSeconds(5));
  }

  private List<Long> history(ActorRef<ScopeEntity.Command> e) {
    TestProbe<ScopeEntity.HistoryPage> p = testKit.createTestProbe();
    e.tell(new ScopeEntity.ReadHistory(0, 100, p.getRef()));
    return p.receiveMessage(Duration.ofSeconds(5)).events().stream().map(HistoryEntry::offset).toList();
  }

  @Test
  void aNewOwnerContinuesTheEpochAndOffsetsAndRecoversFromRedis() {
    ActorRef<ScopeEntity.Command> first = owner("task:durable");
    String epoch = publish(first, null).epoch();
    publish(first, null);
    publish(first, "once");
    testKit.stop(first);

    ActorRef<ScopeEntity.Command> second = owner("task:durable");
    ScopeEntity.Published next = publish(second, null);
    assertEquals(epoch, next.epoch());
    assertEquals(4, next.offset());
    assertEquals(List.of(1L, 2L, 3L, 4L), history(second));
    assertTrue(subscribe(second, testKit.createTestProbe(), new Position(epoch, 1)).recovered());
    ScopeEntity.Published again = publish(second, "once");
    assertEquals(3, again.offset(), "the idempotency key came back from Redis too");
    assertTrue(again.duplicate());
  }

  @Test
  void historyOlderThanSizeOrTtlIsNotRecovered() {
    ActorRef<ScopeEntity.Command> first = owner("task:trimmed");
    String epoch = publish(first, null).epoch();
    for (int i = 2; i <= 10; i++) publish(first, null);
    testKit.stop(first);

    ActorRef<ScopeEntity.Command> second = owner("task:trimmed");
    TestProbe<NodeFanout.Command> node = testKit.createTestProbe();
    assertFalse(subscribe(second, node, new Position(epoch, 2)).recovered(), "offset 3 is beyond history-size 5");
    assertTrue(subscribe(second, node, new Position(epoch, 6)).recovered());

    clock.advance(Duration.ofMinutes(2));
    testKit.stop(second);
    ActorRef<ScopeEntity.Command> third = owner("task:trimmed");
    assertEquals(List.of(), history(third), "events older than history-ttl left the history");
    assertFalse(subscribe(third, testKit.createTestProbe(), new Position(epoch, 8)).recovered());
    assertTrue(subscribe(third, testKit.createTestProbe(), new Position(epoch, 10)).recovered(), "nothing missed");
  }

  @Test
  void duringAnOutagePublishingGoesOnAndAfterwardsTheScopeStartsANewEpochAndResyncs() {
    ActorRef<ScopeEntity.Command> e = owner("workspace:outage");
    TestProbe<NodeFanout.Command> node = testKit.createTestProbe();
    subscribe(e, node, null);
    node.expectMessageClass(NodeFanout.DeliverPresence.class);
    String epoch = publish(e, null).epoch();
    node.expectMessageClass(NodeFanout.Deliver.class);

    redis.kill();
    ScopeEntity.Published during = publish(e, null);
    assertEquals(epoch, during.epoch());
    assertEquals(2, during.offset());
    assertEquals(2, node.expectMessageClass(NodeFanout.Deliver.class, Duration.ofSeconds(5)).offset(),
        "delivered from memory although Redis is down");
    assertEquals(3, publish(e, null).offset());
    node.expectMessageClass(NodeFanout.Deliver.class, Duration.ofSeconds(5));

    redis.restart();
    ConnectionActor.ScopeResync resync = (ConnectionActor.ScopeResync)
        node.expectMessageClass(NodeFanout.ToSubscribers.class, Duration.ofSeconds(20)).message();
    assertNotEquals(epoch, resync.epoch());
    assertEquals(0, resync.offset());
    ScopeEntity.Published after = publish(e, null);
    assertEquals(resync.epoch(), after.epoch());
    assertEquals(1, after.offset(), "offsets restart in the new epoch");
    node.expectMessageClass(NodeFanout.Deliver.class, Duration.ofSeconds(5));

    testKit.stop(e);
    ActorRef<ScopeEntity.Command> next = owner("workspace:outage");
    assertEquals(List.of(1L), history(next), "Redis holds the new epoch only, without a hole");
    assertFalse(subscribe(next, testKit.createTestProbe(), new Position(epoch, 1)).recovered(),
        "a client that missed the outage window is told to resync");
  }

  @Test
  void aScopeRedisNeverSawStartsItsEpochThere() {
    RedisHistory.Loaded none = store.load("task:unknown", 5).toCompletableFuture().join();
    assertNull(none.epoch());
    ActorRef<ScopeEntity.Command> e = owner("task:fresh");
    TestProbe<ScopeEntity.Info> info = testKit.createTestProbe();
    e.tell(new ScopeEntity.GetInfo(info.getRef()));
    String epoch = info.receiveMessage(Duration.ofSeconds(5)).epoch();
    assertEquals(epoch, store.load("task:fresh", 5).toCompletableFuture().join().epoch(),
        "a subscriber's position in an empty scope survives its owner too");
  }
}
