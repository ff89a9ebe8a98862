package io.scopecast.actors.connection;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.typesafe.config.ConfigFactory;
import io.scopecast.actors.NodeFanout;
import io.scopecast.actors.auth.ClaimsAuthorizer;
import io.scopecast.actors.auth.TokenVerifier;
import io.scopecast.actors.auth.UserClaims;
import io.scopecast.actors.metrics.ScopecastMetrics;
import io.scopecast.actors.protocol.ClientFrameDecoder;
import io.scopecast.actors.scope.ScopeEntity;
import io.scopecast.actors.settings.ScopecastSettings;
import io.scopecast.actors.testing.FixedRandom;
import io.scopecast.actors.testing.ManualClock;
import io.scopecast.actors.testing.SocketHarness;
import io.scopecast.actors.testing.TestScopes;
import io.scopecast.actors.testing.TestSettings;
import io.scopecast.actors.testing.Tokens;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Set;
import java.util.stream.LongStream;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.ManualTime;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/** Behaviour of one connection: handshake, heartbeat, limits, eviction, gap filling and failover. */
class ConnectionActorTest {
  private static final ActorTestKit testKit =
      ActorTestKit.create(ManualTime.config().withFallback(ConfigFactory.defaultReference()));
  /** Every timer (handshake, heartbeat, presence batches) moves only when a test says so. */
  private static final ManualTime time = ManualTime.get(testKit.system());

  @AfterAll
  static void shutdown() {
    testKit.shutdownTestKit();
  }

  private final ScopecastMetrics metrics = new ScopecastMetrics();
  /** What the rate limits read: it stands still unless a test moves it. */
  private final ManualClock clock = new ManualClock();
  private TestScopes scopes;

  /** A node with real scope entities and a real fanout (or {@code fanout} in between). */
  private ConnectionActor.Deps node(ActorRef<NodeFanout.Command> fanout, Object... settings) {
    ScopecastSettings s = TestSettings.with(settings);
    scopes = new TestScopes(testKit, new ScopeEntity.Deps(s, metrics, "node-a"));
    TokenVerifier tokens = new TokenVerifier(s.auth().jwtSecret(), "", Duration.ofSeconds(30));
    return new ConnectionActor.Deps(s, metrics, "node-a", scopes::ref,
        fanout != null ? fanout : testKit.spawn(NodeFanout.create(s)), tokens, new ClaimsAuthorizer(tokens, null),
        new ClientFrameDecoder(s::knowsType), clock, FixedRandom.LOWEST);
  }

  /**
   * The next frame of {@code type}, moving time by {@code step} until it comes (a presence batch
   * goes out when its interval is over, which is only once the scope has seen the change).
   */
  private static JsonNode expectAfter(SocketHarness c, String type, Duration step) {
    for (int i = 0; i < 50; i++) {
      time.timePasses(step);
      try {
        return c.expect(f -> type.equals(f.path("type").asText()), type, Duration.ofMillis(100));
      } catch (AssertionError notYet) {
        // the change has not reached the scope yet: move on by another step
      }
    }
    return c.expect(type);
  }

  private ConnectionActor.Deps node(Object... settings) {
    return node(null, settings);
  }

  private ScopeEntity.Published publish(String scope, int i) {
    TestProbe<ScopeEntity.PublishResult> p = testKit.createTestProbe();
    scopes.ref(scope).tell(new ScopeEntity.Publish("e", "{\"i\":" + i + "}", null, p.getRef()));
    return p.expectMessageClass(ScopeEntity.Published.class);
  }

  private static UserClaims claims(String user, String... workspaces) {
    return new UserClaims(user, Set.of(workspaces));
  }

  // ---- handshake -----------------------------------------------------------------------------

  @Test
  void aConnectFrameWithAValidTokenIsAnsweredConnectedWithTheUserScope() {
    ConnectionActor.Deps deps = node();
    SocketHarness c = SocketHarness.open(testKit, deps);
    c.send("{\"type\":\"connect\",\"token\":\"" + Tokens.user("alice", "42") + "\",\"workspace\":\"42\"}");
    JsonNode connected = c.expect("connected");
    assertEquals("alice", connected.get("user").asText());
    assertEquals("node-a", connected.get("node").asText());
    assertEquals(List.of("user:alice", "workspace:42"),
        connected.get("scopes").findValuesAsText("scope"));
    assertTrue(connected.get("scopes").get(0).get("recovered").asBoolean());
    publish("workspace:42", 1);
    assertEquals(1, c.expect("event").get("offset").asLong());
  }

  @Test
  void anInvalidTokenInTheConnectFrameIsDisconnectedWith4001InsteadOfConnected() {
    SocketHarness c = SocketHarness.open(testKit, node());
    c.connect(Tokens.user("other-secret", "bob", Instant.now().plusSeconds(60)));
    JsonNode d = c.expectDisconnect(4001);
    assertFalse(d.get("reconnect").asBoolean());
    assertTrue(c.seen().stream().noneMatch(f -> f.get("type").asText().equals("connected")));
  }

  @Test
  void aFirstFrameOtherThanConnectIsAProtocolViolation() {
    SocketHarness c = SocketHarness.open(testKit, node(), claims("bob"), null);
    c.send("{\"type\":\"ping\",\"id\":1}");
    c.expectDisconnect(4400);
  }

  @Test
  void noConnectFrameWithinTheHandshakeTimeoutIs4001() {
    SocketHarness c = SocketHarness.open(testKit, node("scopecast.connection.handshake-timeout", "200ms"));
    time.expectNoMessageFor(Duration.ofMillis(199));
    time.timePasses(Duration.ofMillis(1));
    c.expectDisconnect(4001);
  }

  @Test
  void aWorkspaceTheTokenDoesNotGrantIs4003() {
    SocketHarness c = SocketHarness.open(testKit, node());
    c.send("{\"type\":\"connect\",\"token\":\"" + Tokens.user("carol", "1") + "\",\"workspace\":\"2\"}");
    c.expectDisconnect(4003);
  }

  // ---- heartbeat -----------------------------------------------------------------------------

  @Test
  void aClientThatAnswersPingsStaysAndASilentOneIsDisconnectedWith4009() {
    ConnectionActor.Deps deps = node("scopecast.connection.heartbeat-interval", "150ms",
        "scopecast.connection.heartbeat-timeout", "150ms");
    SocketHarness alive = SocketHarness.open(testKit, deps, claims("dan"), null);
    SocketHarness silent = SocketHarness.open(testKit, deps, claims("eve"), null);
    alive.send("{\"type\":\"connect\"}");
    silent.send("{\"type\":\"connect\"}");
    for (int i = 0; i < 4; i++) {
      time.timePasses(Duration.ofMillis(150));
      alive.expect("ping");
      alive.send("{\"type\":\"pong\"}");
    }
    JsonNode d = silent.expectDisconnect(4009);
    assertTrue(d.get("reconnect").asBoolean());
    alive.send("{\"type\":\"ping\",\"id\":\"still-here\"}");
    assertEquals("still-here", alive.expect("pong").get("id").asText());
  }

  // ---- limits --------------------------------------------------------------------------------

  @Test
  void maxSubscriptionsCountsTheAutomaticSubscription() {
    SocketHarness c = SocketHarness.open(testKit, node("scopecast.connection.max-subscriptions", 2), claims("fay"), null);
    c.send("{\"type\":\"connect\"}");
    c.expect("connected");
    c.send("{\"type\":\"subscribe\",\"id\":1,\"scope\":\"task:1\",\"token\":\"" + Tokens.scope("fay", "task:1") + "\"}");
    assertEquals("subscribed", c.expect(f -> f.path("id").asInt() == 1, "reply 1", Duration.ofSeconds(5)).get("type").asText());
    c.send("{\"type\":\"subscribe\",\"id\":2,\"scope\":\"task:2\",\"token\":\"" + Tokens.scope("fay", "task:2") + "\"}");
    JsonNode refused = c.expect(f -> f.path("id").asInt() == 2, "reply 2", Duration.ofSeconds(5));
    assertEquals("limit_exceeded", refused.get("code").asText());
    c.send("{\"type\":\"subscribe\",\"id\":3,\"scope\":\"task:3\"}");
    assertEquals("forbidden", c.expect(f -> f.path("id").asInt() == 3, "reply 3", Duration.ofSeconds(5)).get("code").asText(),
        "forbidden takes precedence over limit_exceeded");
  }

  @Test
  void aFloodOfFramesIsDisconnectedWith4029() {
    SocketHarness c = SocketHarness.open(testKit, node("scopecast.connection.flood.frames-per-second", 1,
        "scopecast.connection.flood.burst", 5), claims("gus"), null);
    c.send("{\"type\":\"connect\"}");
    for (int i = 0; i < 10; i++) c.sendNoAck("{\"type\":\"ping\"}");
    c.expectDisconnect(4029);
  }

  @Test
  void tooManyRefusedFramesAreDisconnectedWith4029() {
    SocketHarness c = SocketHarness.open(testKit, node("scopecast.connection.flood.max-errors", 3), claims("hal"), null);
    c.send("{\"type\":\"connect\"}");
    for (int i = 0; i < 3; i++) {
      c.send("not json");
      assertEquals("bad_request", c.expect("error").get("code").asText());
    }
    c.send("{\"type\":\"nonsense\"}");
    c.expectDisconnect(4029);
  }

  @Test
  void aFrameOverMaxFrameBytesIsDisconnectedWith1009() {
    SocketHarness c = SocketHarness.open(testKit, node(), claims("ivy"), null);
    c.send("{\"type\":\"connect\"}");
    c.expect("connected");
    c.sendIncoming(ConnectionActor.TooLarge.INSTANCE);
    assertFalse(c.expectDisconnect(1009).get("reconnect").asBoolean());
  }

  // ---- slow consumers ------------------------------------------------------------------------

  @Test
  void aSlowClientIsEvictedWith4008AndItsQueuedFramesAreDroppedBehindTheDisconnectFrame() {
    // §13.20: a client that falls behind reads from history; it is slow only once history cannot supply it
    ConnectionActor.Deps deps = node("scopecast.connection.outbound-buffer", 8, "scopecast.history.size", 50);
    SocketHarness fast = SocketHarness.open(testKit, deps, claims("kim", "7"), "7");
    SocketHarness slow = SocketHarness.slow(testKit, deps, claims("lee", "7"));
    fast.send("{\"type\":\"connect\"}");
    slow.sendNoAck("{\"type\":\"connect\",\"workspace\":\"7\"}");
    fast.expect("connected");
    for (int i = 1; i <= 200; i++) {
      publish("workspace:7", i);
      fast.expect("event"); // the fast client keeps up; the slow one reads nothing
    }
    assertEquals(LongStream.rangeClosed(1, 200).boxed().toList(), fast.offsets("workspace:7"));

    JsonNode d = slow.expect("disconnect");
    assertEquals(4008, d.get("code").asInt());
    assertTrue(d.get("reconnect").asBoolean());
    assertEquals(null, slow.nextFrame(Duration.ofSeconds(5)), "nothing after the disconnect frame");
    assertTrue(slow.offsets("workspace:7").size() < 200, "queued events were dropped, not sent after the eviction");
    assertEquals(1.0, metrics.slowConsumerEvictions.get());
  }

  // ---- delivery ------------------------------------------------------------------------------

  @Test
  void subscribeWithSinceReplaysThenGoesLiveWithoutDuplicates() {
    ConnectionActor.Deps deps = node();
    SocketHarness c = SocketHarness.open(testKit, deps, claims("max"), null);
    c.send("{\"type\":\"connect\"}");
    c.expect("connected");
    String epoch = publish("task:r", 1).epoch();
    for (int i = 2; i <= 5; i++) publish("task:r", i);
    c.send("{\"type\":\"subscribe\",\"id\":1,\"scope\":\"task:r\",\"token\":\"" + Tokens.scope("max", "task:r")
        + "\",\"since\":{\"epoch\":\"" + epoch + "\",\"offset\":2}}");
    JsonNode sub = c.expect("subscribed");
    assertTrue(sub.get("recovered").asBoolean());
    assertEquals(5, sub.get("offset").asLong());
    publish("task:r", 6);
    for (int i = 0; i < 4; i++) c.expect("event");
    assertEquals(List.of(3L, 4L, 5L, 6L), c.offsets("task:r"));
  }

  @Test
  void aReplayLongerThanOnePageIsPacedAndComplete() {
    ConnectionActor.Deps deps = node("scopecast.connection.replay-page", 3, "scopecast.connection.outbound-buffer", 8);
    String epoch = null;
    for (int i = 1; i <= 30; i++) {
      ScopeEntity.Published p = publish("task:long", i);
      epoch = p.epoch();
    }
    SocketHarness c = SocketHarness.open(testKit, deps, claims("ned"), null);
    c.send("{\"type\":\"connect\"}");
    c.expect("connected");
    c.send("{\"type\":\"subscribe\",\"scope\":\"task:long\",\"token\":\"" + Tokens.scope("ned", "task:long")
        + "\",\"since\":{\"epoch\":\"" + epoch + "\",\"offset\":0}}");
    c.expect("subscribed");
    for (int i = 0; i < 30; i++) c.expect("event");
    assertEquals(LongStream.rangeClosed(1, 30).boxed().toList(), c.offsets("task:long"));
    assertEquals(0.0, metrics.slowConsumerEvictions.get(), "a replay never evicts by itself");
  }

  @Test
  void aLongResumeThroughASmallBufferIsPacedByTheSocketAndLiveEventsDuringItAreNotLost() {
    ConnectionActor.Deps deps = node("scopecast.connection.outbound-buffer", 16, "scopecast.history.size", 1000);
    String kilobyte = "{\"text\":\"" + "x".repeat(1000) + "\"}";
    String epoch = null;
    for (int i = 1; i <= 800; i++) epoch = publish("task:big", kilobyte).epoch();
    SocketHarness c = SocketHarness.slow(testKit, deps, claims("zed"));
    c.sendNoAck("{\"type\":\"connect\"}");
    c.expect("connected");
    c.awaitAck();
    c.send("{\"type\":\"subscribe\",\"id\":1,\"scope\":\"task:big\",\"token\":\"" + Tokens.scope("zed", "task:big")
        + "\",\"since\":{\"epoch\":\"" + epoch + "\",\"offset\":0}}");
    assertEquals(800, c.expect("subscribed").get("offset").asLong());
    int published = 800;
    for (int read = 1; read <= 850; read++) {
      c.expect("event");
      if (read % 10 == 0 && published < 850) { // live events while the replay runs
        publish("task:big", kilobyte);
        published++;
      }
    }
    assertEquals(LongStream.rangeClosed(1, 850).boxed().toList(), c.offsets("task:big"), "every offset once, in order");
    assertEquals(0.0, metrics.slowConsumerEvictions.get(), "a replay never evicts");
    assertEquals(0.0, metrics.resyncs.get());
  }

  private ScopeEntity.Published publish(String scope, String payload) {
    TestProbe<ScopeEntity.PublishResult> p = testKit.createTestProbe();
    scopes.ref(scope).tell(new ScopeEntity.Publish("e", payload, null, p.getRef()));
    return p.expectMessageClass(ScopeEntity.Published.class);
  }

  @Test
  void aLiveEventLostOnTheWayIsFilledFromHistory() {
    TestProbe<NodeFanout.Command> dropped = testKit.createTestProbe();
    ActorRef<NodeFanout.Command> real = testKit.spawn(NodeFanout.create(TestSettings.with()));
    Behavior<NodeFanout.Command> lossy = Behaviors.receiveMessage(m -> {
      if (m instanceof NodeFanout.Deliver d && d.offset() == 2) dropped.getRef().tell(m);
      else real.tell(m);
      return Behaviors.same();
    });
    ConnectionActor.Deps deps = node(testKit.spawn(lossy));
    SocketHarness c = SocketHarness.open(testKit, deps, claims("oli", "9"), "9");
    c.send("{\"type\":\"connect\"}");
    c.expect("connected");
    for (int i = 1; i <= 3; i++) publish("workspace:9", i);
    dropped.expectMessageClass(NodeFanout.Deliver.class);
    for (int i = 0; i < 3; i++) c.expect("event");
    assertEquals(List.of(1L, 2L, 3L), c.offsets("workspace:9"));
  }

  @Test
  void whenTheScopeOwnerIsLostTheConnectionResubscribesAndIsToldToResync() {
    ConnectionActor.Deps deps = node();
    SocketHarness c = SocketHarness.open(testKit, deps, claims("pat", "5"), "5");
    c.send("{\"type\":\"connect\"}");
    String epoch = c.expect("connected").get("scopes").get(1).get("epoch").asText();
    publish("workspace:5", 1);
    c.expect("event");

    scopes.stop("workspace:5"); // its history is gone with it (no Redis)
    JsonNode resync = c.expect("resync");
    assertEquals("workspace:5", resync.get("scope").asText());
    assertNotEquals(epoch, resync.get("epoch").asText());
    assertEquals(0, resync.get("offset").asLong());

    ScopeEntity.Published next = publish("workspace:5", 2);
    assertEquals(resync.get("epoch").asText(), next.epoch());
    JsonNode e = c.expect("event");
    assertEquals(1, e.get("offset").asLong(), "offsets continue in the new epoch");
  }

  @Test
  void aClientEventReachesTheOtherSubscribersButNotTheSender() {
    ConnectionActor.Deps deps = node();
    SocketHarness a = SocketHarness.open(testKit, deps, claims("quinn"), null);
    SocketHarness b = SocketHarness.open(testKit, deps, claims("ray"), null);
    for (SocketHarness c : List.of(a, b)) {
      c.send("{\"type\":\"connect\"}");
      c.expect("connected");
    }
    a.send("{\"type\":\"subscribe\",\"id\":1,\"scope\":\"chat:1\",\"token\":\"" + Tokens.scope("quinn", "chat:1") + "\"}");
    a.expect("subscribed");
    b.send("{\"type\":\"subscribe\",\"id\":1,\"scope\":\"chat:1\",\"token\":\"" + Tokens.scope("ray", "chat:1") + "\"}");
    b.expect("subscribed");
    a.send("{\"type\":\"publish\",\"id\":2,\"scope\":\"chat:1\",\"event\":\"typing\",\"payload\":{\"on\":true}}");
    assertEquals("ack", a.expect(f -> f.path("id").asInt() == 2, "ack", Duration.ofSeconds(5)).get("type").asText());
    JsonNode typing = b.expect("event");
    assertEquals("quinn", typing.get("from").asText());
    assertFalse(typing.has("offset"));
    a.send("{\"type\":\"ping\",\"id\":3}");
    a.expect("pong");
    assertTrue(a.seen().stream().noneMatch(f -> f.path("type").asText().equals("event")), "no echo to the sender");
  }

  // ---- client events and presence (§6, §7) ---------------------------------------------------

  private SocketHarness joined(ConnectionActor.Deps deps, String user, String workspace) {
    SocketHarness c = SocketHarness.open(testKit, deps, claims(user, workspace), workspace);
    c.send("{\"type\":\"connect\"}");
    c.expect("connected");
    return c;
  }

  @Test
  void clientEventsAreRateLimitedPerConnectionAndScope() {
    SocketHarness c = joined(node("scopecast.client-events.rate-per-second", 0.001, "scopecast.client-events.burst", 3), "sam", "rl");
    List<String> replies = new java.util.ArrayList<>();
    for (int i = 0; i < 4; i++) {
      c.send("{\"type\":\"publish\",\"id\":" + i + ",\"scope\":\"workspace:rl\",\"event\":\"typing\",\"payload\":{}}");
      JsonNode r = c.expect(f -> f.has("id"), "reply", Duration.ofSeconds(5));
      replies.add(r.get("type").asText() + (r.has("code") ? ":" + r.get("code").asText() : ""));
    }
    assertEquals(List.of("ack", "ack", "ack", "error:rate_limited"), replies);
    assertEquals(1.0, metrics.rateLimited.get());
  }

  @Test
  void clientEventsNeedASubscriptionAndAnAllowedName() {
    SocketHarness c = joined(node(), "tia", "ce");
    c.send("{\"type\":\"publish\",\"id\":1,\"scope\":\"workspace:other\",\"event\":\"typing\"}");
    assertEquals("not_subscribed", c.expect("error").get("code").asText());
    c.send("{\"type\":\"publish\",\"id\":2,\"scope\":\"workspace:ce\",\"event\":\"issue:created\"}");
    assertEquals("forbidden", c.expect("error").get("code").asText());
  }

  @Test
  void aStatusChangeIsAnnouncedToTheOtherMembersAndListedByPresence() {
    ConnectionActor.Deps deps = node("scopecast.presence.batch-interval", "50ms");
    SocketHarness ann = joined(deps, "ann", "team");
    SocketHarness bob = joined(deps, "bob", "team");
    JsonNode join = expectAfter(ann, "presence.join", Duration.ofMillis(50));
    assertEquals("bob", join.get("user").asText());

    ann.send("{\"type\":\"status\",\"id\":9,\"status\":\"away\",\"text\":\"lunch\"}");
    ann.expect("ack");
    JsonNode update = expectAfter(bob, "presence.update", Duration.ofMillis(50));
    assertEquals("ann", update.get("user").asText());
    assertEquals("away", update.get("status").asText());
    assertEquals("lunch", update.get("text").asText());

    bob.send("{\"type\":\"presence\",\"id\":\"p\",\"scope\":\"workspace:team\"}");
    JsonNode members = bob.expect("presence").get("members");
    assertEquals(2, members.size());
    assertEquals("ann", members.get(0).get("user").asText());
    assertEquals("away", members.get(0).get("status").asText());

    bob.send("{\"type\":\"presence\",\"id\":\"q\",\"scope\":\"user:bob\"}");
    assertEquals("bad_request", bob.expect("error").get("code").asText(), "user scopes have no presence");
    bob.send("{\"type\":\"presence\",\"id\":\"r\",\"scope\":\"workspace:nope\"}");
    assertEquals("not_subscribed", bob.expect("error").get("code").asText());
  }

  @Test
  void ephemeralFramesAreShedUnderPressureAndOnlyDurableEventsEvict() {
    ConnectionActor.Deps deps = node("scopecast.connection.outbound-buffer", 8, "scopecast.client-events.burst", 1000,
        "scopecast.presence.batch-interval", "100ms", "scopecast.history.size", 50);
    SocketHarness typist = joined(deps, "uma", "eph");
    SocketHarness slow = SocketHarness.slow(testKit, deps, claims("vic", "eph"));
    slow.sendNoAck("{\"type\":\"connect\",\"workspace\":\"eph\"}");
    assertEquals("vic", expectAfter(typist, "presence.join", Duration.ofMillis(100)).get("user").asText());
    for (int i = 0; i < 300; i++) {
      typist.send("{\"type\":\"publish\",\"id\":" + i + ",\"scope\":\"workspace:eph\",\"event\":\"typing\"}");
      typist.expect("ack");
    }
    assertTrue(metrics.framesDropped.get() > 0, "typing frames were shed");
    assertEquals(0.0, metrics.slowConsumerEvictions.get(), "typing never evicts");
    for (int i = 1; i <= 300 && metrics.slowConsumerEvictions.get() == 0; i++) publish("workspace:eph", i);
    assertEquals(4008, slow.expect("disconnect").get("code").asInt(), "durable events do");
  }
}
