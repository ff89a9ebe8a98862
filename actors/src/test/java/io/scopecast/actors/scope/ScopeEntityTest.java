package io.scopecast.actors.scope;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.scopecast.actors.NodeFanout;
import io.scopecast.actors.connection.ConnectionActor;
import io.scopecast.actors.history.HistoryEntry;
import io.scopecast.actors.metrics.ScopecastMetrics;
import io.scopecast.actors.protocol.Json;
import io.scopecast.actors.protocol.Position;
import io.scopecast.actors.protocol.ScopeId;
import io.scopecast.actors.settings.ScopecastSettings;
import io.scopecast.actors.testing.ManualClock;
import io.scopecast.actors.testing.TestSettings;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/** Behaviour of one scope's sequencer: offsets, history, recovery, fan-out per node, idempotency, passivation. */
class ScopeEntityTest {
  private static final ActorTestKit testKit = ActorTestKit.create();

  @AfterAll
  static void shutdown() {
    testKit.shutdownTestKit();
  }

  private final ManualClock clock = new ManualClock();
  private final TestProbe<ClusterSharding.ShardCommand> shard = testKit.createTestProbe();
  private final TestProbe<ScopeEntity.PublishResult> published = testKit.createTestProbe();

  private ActorRef<ScopeEntity.Command> entity(String scope, Object... settings) {
    ScopecastSettings s = TestSettings.with(settings);
    return testKit.spawn(ScopeEntity.create(ScopeId.of(scope),
        new ScopeEntity.Deps(s, new ScopecastMetrics(), "node-a", clock), shard.getRef()));
  }

  private ScopeEntity.Published publish(ActorRef<ScopeEntity.Command> e, String event, String payload) {
    e.tell(new ScopeEntity.Publish(event, payload, null, published.getRef()));
    return published.expectMessageClass(ScopeEntity.Published.class);
  }

  private NodeFanout.Attach subscribe(ActorRef<ScopeEntity.Command> e, TestProbe<ConnectionActor.Command> conn,
      TestProbe<NodeFanout.Command> node, Position since) {
    e.tell(new ScopeEntity.Subscribe(conn.getRef(), node.getRef(), "u1", since, 7));
    return node.expectMessageClass(NodeFanout.Attach.class);
  }

  private List<HistoryEntry> history(ActorRef<ScopeEntity.Command> e, long after, int limit) {
    TestProbe<ScopeEntity.HistoryPage> probe = testKit.createTestProbe();
    e.tell(new ScopeEntity.ReadHistory(after, limit, probe.getRef()));
    return probe.receiveMessage().events();
  }

  @Test
  void offsetsAreOneTwoThreeWithoutGapsInOneEpoch() {
    ActorRef<ScopeEntity.Command> e = entity("task:seq");
    ScopeEntity.Published a = publish(e, "e", "1");
    ScopeEntity.Published b = publish(e, "e", "2");
    ScopeEntity.Published c = publish(e, "e", "3");
    assertEquals(List.of(1L, 2L, 3L), List.of(a.offset(), b.offset(), c.offset()));
    assertEquals(a.epoch(), c.epoch());
    assertFalse(a.epoch().isEmpty());
  }

  @Test
  void eachScopeStartsItsOwnRandomEpoch() {
    assertNotEquals(publish(entity("task:ep1"), "e", "1").epoch(), publish(entity("task:ep2"), "e", "1").epoch());
  }

  @Test
  void publishesThatArriveTogetherAreSequencedInOrderAndReachEachNodeInOneMessage() throws Exception {
    ActorRef<ScopeEntity.Command> e = entity("task:together");
    TestProbe<NodeFanout.Command> nodeA = testKit.createTestProbe();
    TestProbe<NodeFanout.Command> nodeB = testKit.createTestProbe();
    subscribe(e, testKit.createTestProbe(), nodeA, null);
    subscribe(e, testKit.createTestProbe(), nodeB, null);
    List<ScopeEntity.Publish> batch = new ArrayList<>();
    for (int i = 1; i <= 5; i++) batch.add(new ScopeEntity.Publish("e", Integer.toString(i), i == 5 ? "k" : null, published.getRef(), 100 + i));
    batch.add(new ScopeEntity.Publish("e", "5", "k", published.getRef(), 106)); // the same key again: applied once
    e.tell(new ScopeEntity.PublishBatch(batch));

    for (TestProbe<NodeFanout.Command> node : List.of(nodeA, nodeB)) {
      NodeFanout.DeliverAll all = node.expectMessageClass(NodeFanout.DeliverAll.class);
      assertEquals(List.of(1L, 2L, 3L, 4L, 5L), all.events().stream().map(NodeFanout.Deliver::offset).toList());
      node.expectNoMessage(Duration.ofMillis(50));
    }
    Map<Long, Long> offsetOfRequest = new java.util.HashMap<>();
    for (int i = 0; i < 6; i++) {
      ScopeEntity.Published p = published.expectMessageClass(ScopeEntity.Published.class);
      offsetOfRequest.put(p.request(), p.offset());
    }
    assertEquals(Map.of(101L, 1L, 102L, 2L, 103L, 3L, 104L, 4L, 105L, 5L, 106L, 5L), offsetOfRequest, "each answered with its own request");
    List<String> payloads = new ArrayList<>();
    for (HistoryEntry h : history(e, 0, 10)) payloads.add(Json.parse(h.frame()).get("payload").asText());
    assertEquals(List.of("1", "2", "3", "4", "5"), payloads);
  }

  @Test
  void oneDeliverPerNodeWithSubscribersCarryingTheFrameEncodedOnce() throws Exception {
    ActorRef<ScopeEntity.Command> e = entity("task:fan");
    TestProbe<NodeFanout.Command> nodeA = testKit.createTestProbe();
    TestProbe<NodeFanout.Command> nodeB = testKit.createTestProbe();
    subscribe(e, testKit.createTestProbe(), nodeA, null);
    subscribe(e, testKit.createTestProbe(), nodeA, null);
    subscribe(e, testKit.createTestProbe(), nodeB, null);

    publish(e, "issue:created", "{\"id\":1}");

    NodeFanout.Deliver da = nodeA.expectMessageClass(NodeFanout.Deliver.class);
    NodeFanout.Deliver db = nodeB.expectMessageClass(NodeFanout.Deliver.class);
    nodeA.expectNoMessage(Duration.ofMillis(100));
    assertSame(da.frame(), db.frame(), "the frame is encoded once and shared");
    JsonNode frame = Json.parse(da.frame());
    assertEquals("event", frame.get("type").asText());
    assertEquals("task:fan", frame.get("scope").asText());
    assertEquals(1, frame.get("offset").asLong());
    assertEquals("issue:created", frame.get("event").asText());
    assertEquals(1, frame.get("payload").get("id").asInt());
    assertEquals(clock.millis(), frame.get("ts").asLong());
  }

  @Test
  void subscribeIsAnsweredThroughTheFanoutWithTheCurrentPosition() {
    ActorRef<ScopeEntity.Command> e = entity("task:pos");
    ScopeEntity.Published last = publish(e, "e", "1");
    publish(e, "e", "2");
    NodeFanout.Attach a = subscribe(e, testKit.createTestProbe(), testKit.createTestProbe(), null);
    assertEquals("task:pos", a.scope());
    assertEquals(last.epoch(), a.epoch());
    assertEquals(2, a.offset());
    assertTrue(a.recovered());
    assertEquals(7, a.requestId());
  }

  @Test
  void historyKeepsOnlyTheNewestHistorySizeEvents() {
    ActorRef<ScopeEntity.Command> e = entity("task:bounded", "scopecast.history.size", 3);
    for (int i = 1; i <= 5; i++) publish(e, "e", Integer.toString(i));
    assertEquals(List.of(3L, 4L, 5L), history(e, 0, 10).stream().map(HistoryEntry::offset).toList());
    assertEquals(List.of(4L), history(e, 3, 1).stream().map(HistoryEntry::offset).toList());
  }

  @Test
  void eventsOlderThanTheTtlLeaveTheHistoryButTheEpochStays() {
    ActorRef<ScopeEntity.Command> e = entity("task:ttl", "scopecast.history.ttl", "1m");
    ScopeEntity.Published first = publish(e, "e", "1");
    clock.advance(Duration.ofSeconds(50));
    publish(e, "e", "2");
    clock.advance(Duration.ofSeconds(20));
    assertEquals(List.of(2L), history(e, 0, 10).stream().map(HistoryEntry::offset).toList());
    assertEquals(first.epoch(), publish(e, "e", "3").epoch());
  }

  @Test
  void sinceInTheSameEpochWithTheRangeHeldIsRecovered() {
    ActorRef<ScopeEntity.Command> e = entity("task:rec1");
    String epoch = publish(e, "e", "1").epoch();
    publish(e, "e", "2");
    publish(e, "e", "3");
    assertTrue(subscribe(e, testKit.createTestProbe(), testKit.createTestProbe(), new Position(epoch, 1)).recovered());
    assertTrue(subscribe(e, testKit.createTestProbe(), testKit.createTestProbe(), new Position(epoch, 0)).recovered());
    assertTrue(subscribe(e, testKit.createTestProbe(), testKit.createTestProbe(), new Position(epoch, 3)).recovered(),
        "since at the current offset needs nothing replayed");
  }

  @Test
  void anotherEpochIsNotRecovered() {
    ActorRef<ScopeEntity.Command> e = entity("task:rec2");
    publish(e, "e", "1");
    assertFalse(subscribe(e, testKit.createTestProbe(), testKit.createTestProbe(), new Position("other", 0)).recovered());
  }

  @Test
  void sinceBeyondTheCurrentOffsetIsNotRecovered() {
    ActorRef<ScopeEntity.Command> e = entity("task:rec3");
    String epoch = publish(e, "e", "1").epoch();
    assertFalse(subscribe(e, testKit.createTestProbe(), testKit.createTestProbe(), new Position(epoch, 2)).recovered());
  }

  @Test
  void sinceOlderThanTheKeptHistoryIsNotRecovered() {
    ActorRef<ScopeEntity.Command> e = entity("task:rec4", "scopecast.history.size", 2);
    String epoch = publish(e, "e", "1").epoch();
    for (int i = 2; i <= 4; i++) publish(e, "e", Integer.toString(i));
    assertFalse(subscribe(e, testKit.createTestProbe(), testKit.createTestProbe(), new Position(epoch, 1)).recovered());
    assertTrue(subscribe(e, testKit.createTestProbe(), testKit.createTestProbe(), new Position(epoch, 2)).recovered());
  }

  @Test
  void sinceWhoseEventsExpiredIsNotRecoveredButTheCurrentPositionIs() {
    ActorRef<ScopeEntity.Command> e = entity("task:rec5", "scopecast.history.ttl", "1m");
    String epoch = publish(e, "e", "1").epoch();
    publish(e, "e", "2");
    clock.advance(Duration.ofMinutes(2));
    assertFalse(subscribe(e, testKit.createTestProbe(), testKit.createTestProbe(), new Position(epoch, 1)).recovered());
    assertTrue(subscribe(e, testKit.createTestProbe(), testKit.createTestProbe(), new Position(epoch, 2)).recovered());
  }

  @Test
  void unsubscribedAndStoppedConnectionsGetNoMoreEvents() {
    ActorRef<ScopeEntity.Command> e = entity("task:leave");
    TestProbe<NodeFanout.Command> node = testKit.createTestProbe();
    TestProbe<ConnectionActor.Command> stays = testKit.createTestProbe();
    TestProbe<ConnectionActor.Command> leaves = testKit.createTestProbe();
    TestProbe<ConnectionActor.Command> dies = testKit.createTestProbe();
    subscribe(e, stays, node, null);
    subscribe(e, leaves, node, null);
    subscribe(e, dies, node, null);

    e.tell(new ScopeEntity.Unsubscribe(leaves.getRef()));
    assertEquals(leaves.getRef(), node.expectMessageClass(NodeFanout.Detach.class).conn());
    dies.stop();
    assertEquals(dies.getRef(), node.expectMessageClass(NodeFanout.Detach.class).conn());

    TestProbe<ScopeEntity.Info> info = testKit.createTestProbe();
    e.tell(new ScopeEntity.GetInfo(info.getRef()));
    assertEquals(1, info.receiveMessage().subscribers());

    e.tell(new ScopeEntity.Unsubscribe(stays.getRef()));
    node.expectMessageClass(NodeFanout.Detach.class);
    publish(e, "e", "1");
    node.expectNoMessage(Duration.ofMillis(100));
  }

  @Test
  void aRepeatedIdempotencyKeyReturnsTheFirstResultAndDeliversNothing() {
    ActorRef<ScopeEntity.Command> e = entity("task:idem");
    TestProbe<NodeFanout.Command> node = testKit.createTestProbe();
    subscribe(e, testKit.createTestProbe(), node, null);
    e.tell(new ScopeEntity.Publish("e", "1", "key-1", published.getRef()));
    ScopeEntity.Published first = published.expectMessageClass(ScopeEntity.Published.class);
    node.expectMessageClass(NodeFanout.Deliver.class);

    e.tell(new ScopeEntity.Publish("e", "1", "key-1", published.getRef()));
    ScopeEntity.Published again = published.expectMessageClass(ScopeEntity.Published.class);
    assertEquals(first.offset(), again.offset());
    assertEquals(first.epoch(), again.epoch());
    assertTrue(again.duplicate());
    node.expectNoMessage(Duration.ofMillis(100));

    clock.advance(Duration.ofMinutes(11));
    e.tell(new ScopeEntity.Publish("e", "1", "key-1", published.getRef()));
    assertEquals(first.offset() + 1, published.expectMessageClass(ScopeEntity.Published.class).offset(), "after the 10 minute window the key is new");
  }

  @Test
  void idempotencyKeysAreBoundedInNumber() {
    ActorRef<ScopeEntity.Command> e = entity("task:idem-bound", "scopecast.scope.idempotency-max-keys", 2);
    e.tell(new ScopeEntity.Publish("e", "1", "a", published.getRef()));
    long a = published.expectMessageClass(ScopeEntity.Published.class).offset();
    e.tell(new ScopeEntity.Publish("e", "1", "b", published.getRef()));
    published.expectMessageClass(ScopeEntity.Published.class);
    e.tell(new ScopeEntity.Publish("e", "1", "c", published.getRef()));
    published.expectMessageClass(ScopeEntity.Published.class);
    e.tell(new ScopeEntity.Publish("e", "1", "a", published.getRef()));
    assertNotEquals(a, published.expectMessageClass(ScopeEntity.Published.class).offset(), "the oldest key was forgotten");
  }

  @Test
  void clientEventsGoToTheOtherNodesSubscribersAndAreNotStored() throws Exception {
    ActorRef<ScopeEntity.Command> e = entity("task:typing");
    TestProbe<NodeFanout.Command> node = testKit.createTestProbe();
    TestProbe<ConnectionActor.Command> sender = testKit.createTestProbe();
    subscribe(e, sender, node, null);
    subscribe(e, testKit.createTestProbe(), node, null);

    e.tell(new ScopeEntity.ClientPublish(sender.getRef(), "u1", "typing", "{}"));
    NodeFanout.DeliverEphemeral d = node.expectMessageClass(NodeFanout.DeliverEphemeral.class);
    assertEquals(sender.getRef(), d.except());
    JsonNode frame = Json.parse(d.frame());
    assertEquals("u1", frame.get("from").asText());
    assertFalse(frame.has("offset"));
    assertTrue(history(e, 0, 10).isEmpty());
  }

  @Test
  void clientEventsFromConnectionsThatAreNotSubscribedAreDropped() {
    ActorRef<ScopeEntity.Command> e = entity("task:stranger");
    TestProbe<NodeFanout.Command> node = testKit.createTestProbe();
    subscribe(e, testKit.createTestProbe(), node, null);
    e.tell(new ScopeEntity.ClientPublish(testKit.<ConnectionActor.Command>createTestProbe().getRef(), "x", "typing", "{}"));
    node.expectNoMessage(Duration.ofMillis(100));
  }

  @Test
  void kickClosesTheSubscribersOnEveryNode() {
    ActorRef<ScopeEntity.Command> e = entity("user:kicked");
    TestProbe<NodeFanout.Command> nodeA = testKit.createTestProbe();
    TestProbe<NodeFanout.Command> nodeB = testKit.createTestProbe();
    subscribe(e, testKit.createTestProbe(), nodeA, null);
    subscribe(e, testKit.createTestProbe(), nodeB, null);
    TestProbe<ScopeEntity.Kicked> kicked = testKit.createTestProbe();
    e.tell(new ScopeEntity.Kick(io.scopecast.actors.connection.CloseCode.byBackend(4003, "bye", false), kicked.getRef()));
    assertEquals(2, kicked.receiveMessage().connections());
    assertEquals(4003, kick(nodeA).close().code());
    assertEquals(4003, kick(nodeB).close().code());
  }

  @Test
  void passivatesOnlyWithoutSubscribersAfterBeingIdle() {
    ActorRef<ScopeEntity.Command> e = entity("task:idle", "scopecast.scope.passivate-after", "1s",
        "scopecast.history.ttl", "1s");
    TestProbe<ConnectionActor.Command> conn = testKit.createTestProbe();
    TestProbe<NodeFanout.Command> node = testKit.createTestProbe();
    subscribe(e, conn, node, null);
    clock.advance(Duration.ofMinutes(5));
    shard.expectNoMessage(Duration.ofMillis(1500)); // a tick passes: it has a subscriber

    e.tell(new ScopeEntity.Unsubscribe(conn.getRef()));
    node.expectMessageClass(NodeFanout.Detach.class);
    clock.advance(Duration.ofMinutes(5));
    ClusterSharding.ShardCommand cmd = shard.expectMessageClass(ClusterSharding.ShardCommand.class, Duration.ofSeconds(3));
    assertTrue(cmd instanceof ClusterSharding.Passivate<?>);
  }

  // ---- presence ------------------------------------------------------------------------------

  private static List<String> presenceTypes(NodeFanout.DeliverPresence d) {
    return d.frames().stream().map(f -> {
      try {
        JsonNode j = Json.parse(f.frame());
        return j.get("type").asText() + ":" + j.path("user").asText();
      } catch (Exception e) {
        throw new AssertionError(e);
      }
    }).toList();
  }

  private static ConnectionActor.Disconnect kick(TestProbe<NodeFanout.Command> node) {
    return (ConnectionActor.Disconnect) node.expectMessageClass(NodeFanout.ToSubscribers.class).message();
  }

  private NodeFanout.Attach subscribeAs(ActorRef<ScopeEntity.Command> e, TestProbe<ConnectionActor.Command> conn,
      TestProbe<NodeFanout.Command> node, String user) {
    e.tell(new ScopeEntity.Subscribe(conn.getRef(), node.getRef(), user, null, 1));
    return node.expectMessageClass(NodeFanout.Attach.class);
  }

  @Test
  void presenceJoinsAreAnnouncedToTheOtherConnectionsInBatches() {
    ActorRef<ScopeEntity.Command> e = entity("chat:presence", "scopecast.presence.batch-interval", "300ms");
    TestProbe<NodeFanout.Command> node = testKit.createTestProbe();
    TestProbe<ConnectionActor.Command> ann = testKit.createTestProbe();
    subscribeAs(e, ann, node, "ann");
    NodeFanout.DeliverPresence first = node.expectMessageClass(NodeFanout.DeliverPresence.class);
    assertEquals(List.of("presence.join:ann"), presenceTypes(first), "the first change after a quiet interval goes at once");
    assertEquals(ann.getRef(), first.frames().get(0).except());

    subscribeAs(e, testKit.createTestProbe(), node, "bob");
    subscribeAs(e, testKit.createTestProbe(), node, "cid");
    NodeFanout.DeliverPresence batch = node.expectMessageClass(NodeFanout.DeliverPresence.class);
    assertEquals(List.of("presence.join:bob", "presence.join:cid"), presenceTypes(batch), "later ones are batched");
  }

  @Test
  void aUserWithTwoTabsLeavesOnlyWhenTheLastTabCloses() {
    ActorRef<ScopeEntity.Command> e = entity("workspace:tabs", "scopecast.presence.batch-interval", "50ms");
    TestProbe<NodeFanout.Command> node = testKit.createTestProbe();
    TestProbe<ConnectionActor.Command> tab1 = testKit.createTestProbe();
    TestProbe<ConnectionActor.Command> tab2 = testKit.createTestProbe();
    subscribeAs(e, testKit.createTestProbe(), node, "bob"); // someone to be told
    assertEquals(List.of("presence.join:bob"), presenceTypes(node.expectMessageClass(NodeFanout.DeliverPresence.class)));
    subscribeAs(e, tab1, node, "ann");
    assertEquals(List.of("presence.join:ann"), presenceTypes(node.expectMessageClass(NodeFanout.DeliverPresence.class)));
    subscribeAs(e, tab2, node, "ann");

    tab1.stop();
    node.expectMessageClass(NodeFanout.Detach.class);
    TestProbe<ScopeEntity.PresenceMembers> members = testKit.createTestProbe();
    e.tell(new ScopeEntity.GetPresence(members.getRef()));
    assertEquals(List.of(new io.scopecast.actors.protocol.ServerFrames.Member("ann", 1, "online", ""),
        new io.scopecast.actors.protocol.ServerFrames.Member("bob", 1, "online", "")), members.receiveMessage().members());
    node.expectNoMessage(Duration.ofMillis(200));

    tab2.stop(); // e.g. its node died: the death watch makes the leave
    node.expectMessageClass(NodeFanout.Detach.class);
    assertEquals(List.of("presence.leave:ann"), presenceTypes(node.expectMessageClass(NodeFanout.DeliverPresence.class)));
  }

  @Test
  void aStatusUpdateIsAnnouncedAndListed() {
    ActorRef<ScopeEntity.Command> e = entity("channel:status", "scopecast.presence.batch-interval", "50ms");
    TestProbe<NodeFanout.Command> node = testKit.createTestProbe();
    TestProbe<ConnectionActor.Command> ann = testKit.createTestProbe();
    subscribeAs(e, ann, node, "ann");
    node.expectMessageClass(NodeFanout.DeliverPresence.class);
    e.tell(new ScopeEntity.UpdateStatus(ann.getRef(), "away", "lunch"));
    NodeFanout.DeliverPresence d = node.expectMessageClass(NodeFanout.DeliverPresence.class);
    assertEquals(List.of("presence.update:ann"), presenceTypes(d));
    TestProbe<ScopeEntity.PresenceMembers> members = testKit.createTestProbe();
    e.tell(new ScopeEntity.GetPresence(members.getRef()));
    ScopeEntity.PresenceMembers m = members.receiveMessage();
    assertTrue(m.enabled());
    assertEquals(List.of(new io.scopecast.actors.protocol.ServerFrames.Member("ann", 1, "away", "lunch")), m.members());
  }

  @Test
  void scopeTypesWithoutPresenceAnnounceNothing() {
    ActorRef<ScopeEntity.Command> e = entity("task:nopresence");
    TestProbe<NodeFanout.Command> node = testKit.createTestProbe();
    subscribeAs(e, testKit.createTestProbe(), node, "ann");
    node.expectNoMessage(Duration.ofMillis(200));
    TestProbe<ScopeEntity.PresenceMembers> members = testKit.createTestProbe();
    e.tell(new ScopeEntity.GetPresence(members.getRef()));
    assertFalse(members.receiveMessage().enabled());
  }

  @Test
  void theUsersOwnScopeKeepsTheirStatusUntilTheLastConnectionLeaves() {
    ActorRef<ScopeEntity.Command> e = entity("user:ann");
    TestProbe<NodeFanout.Command> node = testKit.createTestProbe();
    TestProbe<ConnectionActor.Command> tab1 = testKit.createTestProbe();
    subscribeAs(e, tab1, node, "ann");
    e.tell(new ScopeEntity.SetUserStatus("busy", "meeting"));
    NodeFanout.ToSubscribers all = node.expectMessageClass(NodeFanout.ToSubscribers.class);
    assertEquals("busy", ((ConnectionActor.UserStatus) all.message()).status());
    assertEquals(null, all.only());

    TestProbe<ConnectionActor.Command> tab2 = testKit.createTestProbe();
    subscribeAs(e, tab2, node, "ann");
    NodeFanout.ToSubscribers forNewTab = node.expectMessageClass(NodeFanout.ToSubscribers.class);
    assertEquals(tab2.getRef(), forNewTab.only());
    assertEquals("meeting", ((ConnectionActor.UserStatus) forNewTab.message()).text());

    tab1.stop();
    tab2.stop();
    node.expectMessageClass(NodeFanout.Detach.class);
    node.expectMessageClass(NodeFanout.Detach.class);
    TestProbe<ConnectionActor.Command> tab3 = testKit.createTestProbe();
    subscribeAs(e, tab3, node, "ann");
    node.expectNoMessage(Duration.ofMillis(200)); // back to online: nothing to tell
  }

  /** What a connection heard, and which of the test's connections it was. */
  private record Heard(int conn, ConnectionActor.Command message) {}

  /** An entity whose start waits for the test to answer its hand-off question. */
  private ActorRef<ScopeEntity.Command> startingEntity(String scope, TestProbe<ScopeHandoff.Command> handoff,
      ScopecastMetrics metrics, Object... settings) {
    ScopecastSettings s = TestSettings.with(settings);
    return testKit.spawn(ScopeEntity.create(ScopeId.of(scope), new ScopeEntity.Deps(s, metrics, "node-a", clock,
        handoff.getRef(), io.scopecast.actors.history.DurableHistory.memoryOnly()), shard.getRef()));
  }

  private static void nothingHandedOff(TestProbe<ScopeHandoff.Command> handoff) {
    handoff.expectMessageClass(ScopeHandoff.Take.class).replyTo().tell(new ScopeHandoff.Taken(null, false));
  }

  /**
   * Issue 20's storm: thousands of connections that lost their owner ask the next one, which starts
   * late, again and again. It holds one request per connection up to its buffer, tells the rest
   * "not yet", never stops, and subscribes everyone once they ask again.
   */
  @Test
  void aStartingScopeHoldsOneSubscribePerConnectionAndTellsTheRestNotYet() {
    int connections = 3000;
    int buffer = 100;
    ScopecastMetrics metrics = new ScopecastMetrics();
    TestProbe<ScopeHandoff.Command> handoff = testKit.createTestProbe();
    ActorRef<ScopeEntity.Command> e = startingEntity("task:storm", handoff, metrics,
        "scopecast.scope.start-buffer", buffer);
    TestProbe<Heard> heard = testKit.createTestProbe();
    TestProbe<NodeFanout.Command> node = testKit.createTestProbe();
    List<ActorRef<ConnectionActor.Command>> conns = java.util.stream.IntStream.range(0, connections)
        .mapToObj(i -> testKit.spawn(org.apache.pekko.actor.typed.javadsl.Behaviors.<ConnectionActor.Command>receiveMessage(m -> {
          heard.getRef().tell(new Heard(i, m));
          return org.apache.pekko.actor.typed.javadsl.Behaviors.same();
        }))).toList();
    java.util.Map<ActorRef<ConnectionActor.Command>, Integer> index = new java.util.HashMap<>();
    for (int i = 0; i < connections; i++) index.put(conns.get(i), i);

    for (int round = 1; round <= 3; round++) { // every connection asks three times while the owner starts
      for (ActorRef<ConnectionActor.Command> c : conns) e.tell(new ScopeEntity.Subscribe(c, node.getRef(), "u", null, round));
    }
    List<Heard> notYet = heard.receiveSeveralMessages(3 * (connections - buffer), Duration.ofSeconds(10));
    assertTrue(notYet.stream().allMatch(h -> h.message() instanceof ConnectionActor.SubscribeNotYet n
        && n.scope().equals("task:storm") && index.get(conns.get(h.conn())) >= buffer), "only those beyond the buffer");
    assertEquals(3.0 * (connections - buffer), metrics.startupOverflows.get());

    nothingHandedOff(handoff); // the owner starts, late
    List<NodeFanout.Command> attached = node.receiveSeveralMessages(buffer, Duration.ofSeconds(10));
    java.util.Set<Integer> first = new java.util.HashSet<>();
    for (NodeFanout.Command m : attached) {
      NodeFanout.Attach a = (NodeFanout.Attach) m;
      assertEquals(3, a.requestId(), "each held connection is answered once, for its newest request");
      first.add(index.get(a.conn()));
    }
    assertEquals(buffer, first.size());
    node.expectNoMessage(Duration.ofMillis(200));

    for (int i = buffer; i < connections; i++) e.tell(new ScopeEntity.Subscribe(conns.get(i), node.getRef(), "u", null, 4));
    assertEquals(connections - buffer, node.receiveSeveralMessages(connections - buffer, Duration.ofSeconds(10)).size());
    TestProbe<ScopeEntity.Info> info = testKit.createTestProbe();
    e.tell(new ScopeEntity.GetInfo(info.getRef()));
    assertEquals(connections, info.receiveMessage().subscribers(), "everyone subscribed, the entity alive");
  }

  @Test
  void anUnsubscribeWhileTheScopeStartsCancelsTheHeldSubscribe() {
    TestProbe<ScopeHandoff.Command> handoff = testKit.createTestProbe();
    ActorRef<ScopeEntity.Command> e = startingEntity("task:undo", handoff, new ScopecastMetrics());
    TestProbe<NodeFanout.Command> node = testKit.createTestProbe();
    TestProbe<ConnectionActor.Command> gone = testKit.createTestProbe();
    TestProbe<ConnectionActor.Command> back = testKit.createTestProbe();
    e.tell(new ScopeEntity.Subscribe(gone.getRef(), node.getRef(), "u1", null, 1));
    e.tell(new ScopeEntity.Unsubscribe(gone.getRef()));
    e.tell(new ScopeEntity.Unsubscribe(back.getRef())); // an unsubscribe, then a subscribe again
    e.tell(new ScopeEntity.Subscribe(back.getRef(), node.getRef(), "u2", null, 2));
    nothingHandedOff(handoff);
    assertEquals(back.getRef(), node.expectMessageClass(NodeFanout.Attach.class).conn());
    node.expectNoMessage(Duration.ofMillis(200));
    TestProbe<ScopeEntity.Info> info = testKit.createTestProbe();
    e.tell(new ScopeEntity.GetInfo(info.getRef()));
    assertEquals(1, info.receiveMessage().subscribers());
  }

  /** A durable history that is up and whose appends complete only when the test says so. */
  private static final class HeldWrites implements io.scopecast.actors.history.DurableHistory {
    final java.util.concurrent.BlockingQueue<java.util.concurrent.CompletableFuture<Void>> appends =
        new java.util.concurrent.LinkedBlockingQueue<>();

    @Override public boolean enabled() { return true; }
    @Override public boolean isUp() { return true; }
    @Override public String state() { return "up"; }
    @Override public java.util.concurrent.CompletionStage<Loaded> load(String scope, int maxEntries) {
      return java.util.concurrent.CompletableFuture.completedFuture(Loaded.NOTHING);
    }
    @Override public java.util.concurrent.CompletionStage<Void> append(String scope, String epoch, List<Append> batch,
        int maxLen, Duration ttl) {
      java.util.concurrent.CompletableFuture<Void> f = new java.util.concurrent.CompletableFuture<>();
      appends.add(f);
      return f;
    }
    @Override public java.util.concurrent.CompletionStage<Void> startEpoch(String scope, String epoch) {
      return java.util.concurrent.CompletableFuture.completedFuture(null);
    }
    @Override public java.util.concurrent.CompletionStage<List<HistoryEntry>> read(String scope, long after, int limit) {
      return java.util.concurrent.CompletableFuture.completedFuture(List.of());
    }
    @Override public void forgetKeys(String scope, List<String> keys) {}
    @Override public void writeFailed() {}
    @Override public void notWritten(int events) {}

    java.util.concurrent.CompletableFuture<Void> nextAppend() throws InterruptedException {
      return java.util.Objects.requireNonNull(appends.poll(5, java.util.concurrent.TimeUnit.SECONDS), "no append");
    }
  }

  @Test
  void publishesWaitingForADurableWriteAreBoundedInBytesAndThoseBeyondAreRefused() throws InterruptedException {
    HeldWrites redis = new HeldWrites();
    ScopecastMetrics metrics = new ScopecastMetrics();
    ScopecastSettings s = TestSettings.with("scopecast.scope.write-queue-bytes", "1KiB", "scopecast.redis.timeout", "1m");
    ActorRef<ScopeEntity.Command> e = testKit.spawn(ScopeEntity.create(ScopeId.of("task:queue"),
        new ScopeEntity.Deps(s, metrics, "node-a", clock, null, redis), shard.getRef()));
    String payload = "\"" + "€".repeat(100) + "\""; // 302 bytes in UTF-8, 102 characters
    e.tell(new ScopeEntity.Publish("e", payload, null, published.getRef()));
    java.util.concurrent.CompletableFuture<Void> first = redis.nextAppend(); // in flight: the rest waits
    for (int i = 0; i < 5; i++) e.tell(new ScopeEntity.Publish("e", payload, null, published.getRef()));
    // 3 x (302 + 1 + 64) = 1101 > 1024: two wait, three are refused at once, as bytes (not characters) count
    for (int i = 0; i < 3; i++) {
      ScopeEntity.Refused r = published.expectMessageClass(ScopeEntity.Refused.class);
      assertTrue(r.reason().contains("write-queue-bytes"), r.reason());
    }
    assertEquals(3.0, metrics.writeQueueRefusals.get());
    first.complete(null);
    assertEquals(1, published.expectMessageClass(ScopeEntity.Published.class).offset());
    redis.nextAppend().complete(null); // the two that waited, in one write
    assertEquals(2, published.expectMessageClass(ScopeEntity.Published.class).offset());
    assertEquals(3, published.expectMessageClass(ScopeEntity.Published.class).offset());
    e.tell(new ScopeEntity.Publish("e", payload, null, published.getRef()));
    redis.nextAppend().complete(null);
    assertEquals(4, published.expectMessageClass(ScopeEntity.Published.class).offset(), "room again once written");
  }
}
