package io.scopecast.actors.connection;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.typesafe.config.ConfigFactory;
import io.scopecast.actors.NodeFanout;
import io.scopecast.actors.auth.ClaimsAuthorizer;
import io.scopecast.actors.auth.TokenVerifier;
import io.scopecast.actors.auth.UserClaims;
import io.scopecast.actors.metrics.ScopecastMetrics;
import io.scopecast.actors.protocol.ClientFrameDecoder;
import io.scopecast.actors.protocol.Position;
import io.scopecast.actors.protocol.ServerFrames;
import io.scopecast.actors.scope.ScopeEntity;
import io.scopecast.actors.settings.ScopecastSettings;
import io.scopecast.actors.testing.FixedRandom;
import io.scopecast.actors.testing.SocketHarness;
import io.scopecast.actors.testing.TestScopes;
import io.scopecast.actors.testing.TestSettings;
import io.scopecast.actors.testing.Tokens;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.ManualTime;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.RecipientRef;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/**
 * §13.18 on {@link ManualTime}: a scope whose owner does not answer is pending, asked again with
 * backoff, and delivered once a (late) answer comes; losing the owner while a request is out still
 * ends in a re-subscribe; the fanout ignores a late detach from an old incarnation. The owner is a
 * probe here, so the test decides when and how it answers.
 */
class PendingSubscriptionTest {
  private static final ActorTestKit testKit =
      ActorTestKit.create(ManualTime.config().withFallback(ConfigFactory.defaultReference()));
  private static final ManualTime time = ManualTime.get(testKit.system());
  private static final Duration API_TIMEOUT = Duration.ofSeconds(5);

  @AfterAll
  static void shutdown() {
    testKit.shutdownTestKit();
  }

  private final ScopecastMetrics metrics = new ScopecastMetrics();
  /** The owner of every {@code workspace:w} and {@code task:} scope. */
  private final TestProbe<ScopeEntity.Command> owner = testKit.createTestProbe();
  private final ActorRef<NodeFanout.Command> fanout;
  private final ConnectionActor.Deps deps;

  PendingSubscriptionTest() {
    ScopecastSettings s = TestSettings.with("scopecast.api.timeout", "5s");
    TestScopes scopes = new TestScopes(testKit, new ScopeEntity.Deps(s, metrics, "node-a"));
    fanout = testKit.spawn(NodeFanout.create(s));
    TokenVerifier tokens = new TokenVerifier(s.auth().jwtSecret(), "", Duration.ofSeconds(30));
    deps = new ConnectionActor.Deps(s, metrics, "node-a", scope -> route(scope, scopes), fanout, tokens,
        new ClaimsAuthorizer(tokens, null), new ClientFrameDecoder(s::knowsType), java.time.Clock.systemUTC(), FixedRandom.LOWEST);
  }

  private RecipientRef<ScopeEntity.Command> route(String scope, TestScopes scopes) {
    boolean probed = scope.equals("workspace:w") || scope.startsWith("task:") || scope.equals("user:slow");
    return probed ? owner.getRef() : scopes.ref(scope);
  }

  private SocketHarness connected(String user) {
    SocketHarness c = SocketHarness.open(testKit, deps, new UserClaims(user, Set.of("w")), "w");
    c.sendNoAck("{\"type\":\"connect\"}");
    return c;
  }

  /** Expects {@code connected}; the socket is read again after it. */
  private static JsonNode expectConnected(SocketHarness c) {
    JsonNode connected = c.expect("connected");
    c.awaitAck();
    return connected;
  }

  /** The owner's answer, as a scope entity gives it: through the node's fanout. */
  private void answer(SocketHarness c, String scope, ActorRef<ScopeEntity.Command> entity, String epoch, long offset,
      boolean recovered, ScopeEntity.Subscribe request) {
    fanout.tell(new NodeFanout.Attach(c.conn,
        new ConnectionActor.Subscribed(scope, entity, epoch, offset, recovered, request.requestId())));
  }

  private void deliver(String scope, String epoch, long offset) {
    fanout.tell(new NodeFanout.Deliver(scope, epoch, offset, ServerFrames.event(scope, offset, "e", "{}", 1), 1));
  }

  private ActorRef<ScopeEntity.Command> incarnation() {
    return testKit.spawn(Behaviors.ignore());
  }

  private static void drain(TestProbe<?> probe) {
    while (true) {
      try {
        probe.receiveMessage(Duration.ofMillis(100));
      } catch (AssertionError nothingMore) {
        return;
      }
    }
  }

  private ScopeEntity.Subscribe subscribeAt(TestProbe<ScopeEntity.Command> probe) {
    return probe.expectMessageClass(ScopeEntity.Subscribe.class);
  }

  @Test
  void aSilentOwnerMakesTheScopePendingInConnectedAndALateAnswerStillSubscribes() {
    SocketHarness c = connected("amy");
    ScopeEntity.Subscribe first = subscribeAt(owner);
    time.timePasses(Duration.ofMillis(250));
    ScopeEntity.Subscribe retry = subscribeAt(owner);
    assertTrue(retry.requestId() > first.requestId(), "asked again as a new request");

    time.timePasses(API_TIMEOUT);
    JsonNode connected = expectConnected(c);
    assertEquals("user:amy", connected.get("scopes").get(0).get("scope").asText());
    assertTrue(connected.get("scopes").get(0).has("epoch"));
    JsonNode pending = connected.get("scopes").get(1);
    assertEquals("workspace:w", pending.get("scope").asText());
    assertTrue(pending.get("pending").asBoolean());
    assertFalse(pending.has("epoch"));
    assertEquals(1.0, metrics.subscriptionsPending.get(), "counted");

    answer(c, "workspace:w", incarnation(), "e1", 3, true, first); // a late answer to the first request counts
    JsonNode subscribed = c.expect("subscribed");
    assertFalse(subscribed.has("id"), "unsolicited");
    assertEquals("e1", subscribed.get("epoch").asText());
    assertEquals(3, subscribed.get("offset").asLong());
    assertTrue(subscribed.get("recovered").asBoolean());

    deliver("workspace:w", "e1", 4);
    assertEquals(4, c.expect("event").get("offset").asLong());
    drain(owner); // retries sent before the answer arrived
    time.timePasses(Duration.ofSeconds(3));
    time.expectNoMessageFor(Duration.ofMillis(100), owner); // answered: no more retries
  }

  @Test
  void anOwnerThatIsStartingSaysNotYetAndIsAskedAgainAfterAFullBackoffFromThen() {
    SocketHarness c = connected("nia");
    ScopeEntity.Subscribe first = subscribeAt(owner); // its retry is due 250 ms after it was sent
    time.timePasses(Duration.ofMillis(200));
    first.conn().tell(new ConnectionActor.SubscribeNotYet("workspace:w", first.requestId()));
    time.expectNoMessageFor(Duration.ofMillis(200), owner); // not at 250 ms: 250 ms after the "not yet"
    time.timePasses(Duration.ofMillis(50));
    ScopeEntity.Subscribe again = subscribeAt(owner);
    assertTrue(again.requestId() > first.requestId());

    first.conn().tell(new ConnectionActor.SubscribeNotYet("workspace:w", first.requestId() - 1)); // not this question
    answer(c, "workspace:w", incarnation(), "e1", 0, true, again);
    expectConnected(c);
  }

  /** A client that reads nothing until asked to, connected with workspace:w answered at e1/0. */
  private SocketHarness slowConnected(String user) {
    SocketHarness c = SocketHarness.slow(testKit, deps, new UserClaims(user, Set.of("w")));
    c.sendNoAck("{\"type\":\"connect\",\"workspace\":\"w\"}");
    answer(c, "workspace:w", incarnation(), "e1", 0, true, subscribeAt(owner)); // user: is a real scope here
    expectConnected(c);
    return c;
  }

  /** The next {@code n} frames of the socket, as "type" or "event N". */
  private static List<String> next(SocketHarness c, int n) {
    List<String> out = new java.util.ArrayList<>();
    for (int i = 0; i < n; i++) {
      JsonNode f = c.nextFrame(Duration.ofSeconds(5));
      String type = f.get("type").asText();
      out.add(type.equals("event") ? "event " + f.get("offset").asLong()
          : type.equals("subscribed") || type.equals("resync") ? type + " " + f.get("epoch").asText() + "/" + f.get("offset").asLong()
          : type);
    }
    return out;
  }

  /** Issue 20, defect 2: a re-answer in a new epoch reached the client before the old epoch's queued events. */
  @Test
  void aReanswerInANewEpochFollowsTheEventsQueuedBeforeIt() {
    SocketHarness c = slowConnected("ora");
    for (long o = 1; o <= 3; o++) deliver("workspace:w", "e1", o); // queued: the client reads nothing yet
    c.send("{\"type\":\"subscribe\",\"id\":4,\"scope\":\"workspace:w\",\"since\":{\"epoch\":\"e1\",\"offset\":3}}");
    answer(c, "workspace:w", incarnation(), "e2", 5, false, subscribeAt(owner));
    assertEquals(List.of("event 1", "event 2", "event 3", "subscribed e2/5", "resync e2/5"), next(c, 5));
    deliver("workspace:w", "e2", 6);
    assertEquals(List.of("event 6"), next(c, 1));
  }

  /** Issue 20, defect 2: told recovered:false at the owner's offset, the client got older offsets after it. */
  @Test
  void aReanswerThatCannotRecoverContinuesFromTheOffsetItTellsTheClient() {
    SocketHarness c = slowConnected("pia");
    for (long o = 1; o <= 2; o++) deliver("workspace:w", "e1", o);
    c.send("{\"type\":\"subscribe\",\"id\":5,\"scope\":\"workspace:w\",\"since\":{\"epoch\":\"e1\",\"offset\":8}}");
    answer(c, "workspace:w", incarnation(), "e1", 9, false, subscribeAt(owner));
    assertEquals(List.of("event 1", "event 2", "subscribed e1/9"), next(c, 3));
    deliver("workspace:w", "e1", 10);
    assertEquals(List.of("event 10"), next(c, 1), "not 3..9: the client was told it continues from 9");
  }

  @Test
  void aSubscribeFrameIsAnsweredPendingThenSubscribedWhenTheOwnerAnswers() {
    SocketHarness c = connected("ben");
    answer(c, "workspace:w", incarnation(), "e1", 0, true, subscribeAt(owner));
    expectConnected(c);
    c.send("{\"type\":\"subscribe\",\"id\":1,\"scope\":\"task:9\",\"token\":\"" + Tokens.scope("ben", "task:9") + "\"}");
    ScopeEntity.Subscribe request = subscribeAt(owner);

    time.timePasses(API_TIMEOUT);
    JsonNode pending = c.expect("subscribed");
    assertEquals(1, pending.get("id").asInt());
    assertTrue(pending.get("pending").asBoolean());
    c.send("{\"type\":\"publish\",\"id\":2,\"scope\":\"task:9\",\"event\":\"typing\"}");
    assertEquals("unavailable", c.expect("error").get("code").asText(), "a pending scope takes no client events yet");

    answer(c, "task:9", incarnation(), "e9", 12, true, request);
    JsonNode subscribed = c.expect("subscribed");
    assertFalse(subscribed.has("id"));
    assertEquals(12, subscribed.get("offset").asLong());
    deliver("task:9", "e9", 13);
    assertEquals(13, c.expect("event").get("offset").asLong());
  }

  @Test
  void losingTheOwnerWhileARequestIsOutstandingStillEndsInAResubscribe() {
    SocketHarness c = connected("cai");
    ActorRef<ScopeEntity.Command> old = incarnation();
    answer(c, "workspace:w", old, "e1", 0, true, subscribeAt(owner));
    expectConnected(c);
    deliver("workspace:w", "e1", 1);
    assertEquals(1, c.expect("event").get("offset").asLong());

    // with since, a subscribe on a subscribed scope asks the owner again (to answer recovered, §13.4)
    c.send("{\"type\":\"subscribe\",\"id\":5,\"scope\":\"workspace:w\",\"since\":{\"epoch\":\"e1\",\"offset\":1}}");
    subscribeAt(owner);
    testKit.stop(old); // and the owner is lost while that request is out
    time.timePasses(Duration.ofMillis(250));
    ScopeEntity.Subscribe retry = subscribeAt(owner); // the request is repeated: nothing stalls without a timer

    answer(c, "workspace:w", incarnation(), "e2", 7, false, retry); // the new owner started another history
    assertEquals(5, c.expect("subscribed").get("id").asInt());
    JsonNode resync = c.expect("resync");
    assertEquals("e2", resync.get("epoch").asText());
    assertEquals(7, resync.get("offset").asLong());
    deliver("workspace:w", "e2", 8);
    assertEquals(8, c.expect("event").get("offset").asLong());
  }

  @Test
  void aSubscribeFrameWhileTheOwnerIsReplacedIsToldPendingInTimeAndAnsweredLater() {
    SocketHarness c = connected("fay");
    ActorRef<ScopeEntity.Command> old = incarnation();
    answer(c, "workspace:w", old, "e1", 0, true, subscribeAt(owner));
    expectConnected(c);
    testKit.stop(old);
    ScopeEntity.Subscribe failover = subscribeAt(owner);
    assertEquals(new Position("e1", 0), failover.since(), "asked again from what was delivered");

    c.send("{\"type\":\"subscribe\",\"id\":7,\"scope\":\"workspace:w\",\"since\":{\"epoch\":\"e1\",\"offset\":0}}");
    time.timePasses(API_TIMEOUT);
    JsonNode pending = c.expect("subscribed");
    assertEquals(7, pending.get("id").asInt());
    assertTrue(pending.get("pending").asBoolean());

    answer(c, "workspace:w", incarnation(), "e1", 0, true, failover);
    JsonNode subscribed = c.expect("subscribed");
    assertFalse(subscribed.has("id"));
    assertTrue(subscribed.get("recovered").asBoolean());
    deliver("workspace:w", "e1", 1);
    assertEquals(1, c.expect("event").get("offset").asLong());
  }

  @Test
  void subscribingAgainWithoutSinceIsANoOpTheOwnerNeverHears() {
    SocketHarness c = connected("gus");
    answer(c, "workspace:w", incarnation(), "e1", 4, true, subscribeAt(owner));
    expectConnected(c);
    c.send("{\"type\":\"subscribe\",\"id\":3,\"scope\":\"workspace:w\"}");
    JsonNode subscribed = c.expect("subscribed");
    assertEquals(3, subscribed.get("id").asInt());
    assertEquals("e1", subscribed.get("epoch").asText());
    assertEquals(4, subscribed.get("offset").asLong());
    time.expectNoMessageFor(Duration.ofMillis(100), owner);
  }

  @Test
  void aNewEpochAnnouncedDuringTheHandshakeIsResyncedOnceConnectedIsOut() {
    SocketHarness c = connected("slow");
    ScopeEntity.Subscribe userScope = subscribeAt(owner); // user:slow is asked first
    ScopeEntity.Subscribe workspace = subscribeAt(owner);
    answer(c, "workspace:w", incarnation(), "e1", 10, true, workspace);
    fanout.tell(new NodeFanout.ToSubscribers("workspace:w", new ConnectionActor.ScopeResync("workspace:w", "e2", 0, "redis_outage"))); // before connected
    answer(c, "user:slow", incarnation(), "u1", 0, true, userScope);
    expectConnected(c);
    JsonNode resync = c.expect("resync");
    assertEquals("e2", resync.get("epoch").asText());
    deliver("workspace:w", "e2", 1);
    assertEquals(1, c.expect("event").get("offset").asLong());
  }

  @Test
  void anEventOfANewEpochSeenDuringTheHandshakeLeadsToAResubscribe() {
    SocketHarness c = connected("slow");
    ScopeEntity.Subscribe userScope = subscribeAt(owner);
    ScopeEntity.Subscribe workspace = subscribeAt(owner);
    answer(c, "workspace:w", incarnation(), "e1", 10, true, workspace);
    deliver("workspace:w", "e2", 1); // another incarnation already delivers
    answer(c, "user:slow", incarnation(), "u1", 0, true, userScope);
    expectConnected(c);
    ScopeEntity.Subscribe again = subscribeAt(owner);
    assertEquals(new Position("e1", 10), again.since());
    answer(c, "workspace:w", incarnation(), "e2", 1, false, again);
    JsonNode resync = c.expect("resync");
    assertEquals("e2", resync.get("epoch").asText());
    assertEquals(1, resync.get("offset").asLong());
  }

  @Test
  void anAnswerForAScopeUnsubscribedMeanwhileIsUndoneAtTheOwner() {
    SocketHarness c = connected("dee");
    answer(c, "workspace:w", incarnation(), "e1", 0, true, subscribeAt(owner));
    expectConnected(c);
    c.send("{\"type\":\"subscribe\",\"id\":1,\"scope\":\"task:3\",\"token\":\"" + Tokens.scope("dee", "task:3") + "\"}");
    ScopeEntity.Subscribe request = subscribeAt(owner);
    c.send("{\"type\":\"unsubscribe\",\"id\":2,\"scope\":\"task:3\"}");
    owner.expectMessageClass(ScopeEntity.Unsubscribe.class);
    c.expect("unsubscribed");

    TestProbe<ScopeEntity.Command> entity = testKit.createTestProbe();
    answer(c, "task:3", entity.getRef(), "e3", 0, true, request);
    entity.expectMessageClass(ScopeEntity.Unsubscribe.class);
    deliver("task:3", "e3", 1);
    c.send("{\"type\":\"ping\",\"id\":3}");
    c.expect("pong");
    assertEquals(List.of(), c.offsets("task:3"));
  }

  @Test
  void aLateDetachFromAnOldIncarnationDoesNotUnregisterALiveSubscription() {
    SocketHarness c = connected("eve");
    ActorRef<ScopeEntity.Command> old = incarnation();
    ActorRef<ScopeEntity.Command> current = incarnation();
    ScopeEntity.Subscribe request = subscribeAt(owner);
    answer(c, "workspace:w", old, "e1", 0, true, request);
    expectConnected(c);
    answer(c, "workspace:w", current, "e1", 0, true, request); // the scope's next incarnation registers it again

    fanout.tell(new NodeFanout.Detach("workspace:w", c.conn, old)); // the old owner's goodbye, late
    deliver("workspace:w", "e1", 1);
    assertEquals(1, c.expect("event").get("offset").asLong());

    fanout.tell(new NodeFanout.Detach("workspace:w", c.conn, current));
    deliver("workspace:w", "e1", 2);
    TestProbe<Integer> count = testKit.createTestProbe();
    fanout.tell(new NodeFanout.CountConnections(count.getRef()));
    count.receiveMessage();
    assertEquals(1L, c.outbound.position("workspace:w").second(), "the current owner's detach does unregister");
  }
}
