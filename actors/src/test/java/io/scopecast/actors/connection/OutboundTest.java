package io.scopecast.actors.connection;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.scopecast.actors.history.HistoryEntry;
import io.scopecast.actors.metrics.ScopecastMetrics;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Consumer;
import java.util.stream.LongStream;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.stream.Attributes;
import org.apache.pekko.stream.Materializer;
import org.apache.pekko.stream.typed.javadsl.ActorSink;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/** The send buffer as a stage: lanes, bounds, shedding, the cursor's verdicts, closing and aborting. */
class OutboundTest {
  private static final ActorTestKit testKit = ActorTestKit.create();

  @AfterAll
  static void shutdown() {
    testKit.shutdownTestKit();
  }

  private final ScopecastMetrics metrics = new ScopecastMetrics();

  private sealed interface Socket {}

  private record Started(ActorRef<Ack> ackTo) implements Socket {}

  private record Written(ActorRef<Ack> ackTo, String frame) implements Socket {}

  private enum Done implements Socket { INSTANCE }

  private record Failed(Throwable cause) implements Socket {}

  private enum Ack { INSTANCE }

  /**
   * A socket that writes one frame each time the test reads. Like a real one it holds one frame
   * ahead of the write (the sink pulls one element before it is acknowledged): it starts holding
   * "open", so what is offered afterwards stays in the send buffer until read.
   */
  private final class ReadBySocket {
    final TestProbe<Socket> probe = testKit.createTestProbe();
    final Outbound outbound;
    ActorRef<Ack> ackTo;

    ReadBySocket(int capacity, long maxChars) {
      outbound = Outbound.source(capacity, maxChars, metrics)
          .to(ActorSink.actorRefWithBackpressure(probe.getRef(), Written::new, Started::new, Ack.INSTANCE, Done.INSTANCE,
              Failed::new).withAttributes(Attributes.inputBuffer(1, 1)))
          .run(Materializer.matFromSystem(testKit.system()));
      ackTo = probe.expectMessageClass(Started.class).ackTo();
      outbound.offer("open");
      long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
      while (outbound.size() > 0) { // the stage's first pull is asynchronous: wait until the socket holds "open"
        if (System.nanoTime() > deadline) throw new AssertionError("the socket never pulled");
        LockSupport.parkNanos(100_000);
      }
    }

    String read() {
      ackTo.tell(Ack.INSTANCE);
      Socket s = probe.receiveMessage(Duration.ofSeconds(5));
      if (s instanceof Written w) {
        ackTo = w.ackTo();
        return w.frame();
      }
      return s instanceof Done ? "<completed>" : "<failed>";
    }

    List<String> read(int n) {
      List<String> out = new ArrayList<>();
      for (int i = 0; i < n; i++) out.add(read());
      return out;
    }
  }

  /**
   * A listener that records what the connection actor would be told, and "under the lock" for a
   * call made while the buffer's lock is held (a listener must be free to call back into it, and
   * a thread delivering to many connections must not wait on one connection's listener).
   */
  private static final class Heard implements Consumer<Outbound.Notice> {
    final List<String> said = new ArrayList<>();
    private final Outbound watched;

    private Heard(Outbound watched) {
      this.watched = watched;
    }

    static Heard on(Outbound o) {
      Heard heard = new Heard(o);
      o.listen(heard);
      return heard;
    }

    @Override
    public synchronized void accept(Outbound.Notice notice) {
      String what = notice instanceof Outbound.Attention a ? a.scope() + ":" + a.verdict()
          : notice instanceof Outbound.PresenceShed p ? "presence-shed:" + p.scopes()
          : "room";
      said.add(Thread.holdsLock(watched) ? "under the lock: " + what : what);
    }
  }


  /** A live event whose frame is ASCII (its size in bytes is its length). */
  private static boolean deliver(Outbound o, String scope, String epoch, long offset, String frame) {
    return o.deliver(scope, epoch, offset, frame, frame.length(), 0);
  }

  private static Outbound live(Outbound o, String scope, long at) {
    o.attached(scope, "e1", at, 1000);
    assertEquals(Outbound.Positioned.LIVE, o.position(scope, "e1", at, at, 1000));
    return o;
  }

  @Test
  void controlRepliesOvertakeQueuedEvents() {
    ReadBySocket s = new ReadBySocket(8, 1 << 20);
    live(s.outbound, "t:1", 0);
    for (long o = 1; o <= 3; o++) deliver(s.outbound, "t:1", "e1", o, "ev" + o);
    s.outbound.offer("pong");
    assertEquals(List.of("open", "pong", "ev1", "ev2", "ev3"), s.read(5));
  }

  @Test
  void heldEventsWaitBehindTheReplyThatMustPrecedeThem() {
    ReadBySocket s = new ReadBySocket(8, 1 << 20);
    s.outbound.hold();
    live(s.outbound, "t:1", 0);
    deliver(s.outbound, "t:1", "e1", 1, "ev1");
    s.outbound.offer("subscribed");
    assertEquals(List.of("open", "subscribed"), s.read(2));
    assertEquals(1, s.outbound.size(), "the event waits while held");
    s.outbound.release();
    assertEquals(List.of("ev1"), s.read(1));
  }

  @Test
  void aResyncFrameIsQueuedBeforeAnyEventOfItsNewPosition() {
    ReadBySocket s = new ReadBySocket(8, 1 << 20);
    live(s.outbound, "t:1", 0);
    s.outbound.resync("t:1", "resync", "e2", 5);
    deliver(s.outbound, "t:1", "e2", 6, "ev6");
    assertEquals(List.of("open", "resync", "ev6"), s.read(3));
  }

  @Test
  void theClosingFrameOvertakesEverythingAndEndsTheStream() {
    ReadBySocket s = new ReadBySocket(8, 1 << 20);
    live(s.outbound, "t:1", 0);
    for (long o = 1; o <= 3; o++) deliver(s.outbound, "t:1", "e1", o, "ev" + o);
    s.outbound.offer("pong");
    assertEquals(4, s.outbound.finish("bye"), "what was queued is dropped");
    assertEquals(List.of("open", "bye", "<completed>"), s.read(3));
    assertEquals(Outbound.Offer.CLOSED, s.outbound.offer("late"));
  }

  @Test
  void theCursorLetsTheNextOffsetThroughAndReportsGapsAndEpochs() {
    ReadBySocket s = new ReadBySocket(8, 1 << 20);
    Heard heard = Heard.on(s.outbound);
    live(s.outbound, "t:1", 5);
    deliver(s.outbound, "t:1", "e1", 5, "dup");
    deliver(s.outbound, "t:1", "e1", 6, "ev6");
    deliver(s.outbound, "t:1", "e1", 8, "ev8");
    deliver(s.outbound, "t:1", "e2", 1, "other");
    assertEquals(List.of("open", "ev6"), s.read(2));
    assertEquals(List.of("t:1:GAP", "t:1:NEW_EPOCH"), heard.said);
    assertEquals(0, s.outbound.size());
  }

  @Test
  void roomAndEmptyAreToldOutsideTheLockAtOnceOrOnceTheSocketHasRead() {
    ReadBySocket s = new ReadBySocket(4, 1 << 20);
    Heard heard = Heard.on(s.outbound);
    s.outbound.whenRoom();
    s.outbound.whenEmpty();
    assertEquals(List.of("room", "room"), heard.said, "an empty buffer has room at once");
    live(s.outbound, "t:1", 0);
    for (long o = 1; o <= 2; o++) deliver(s.outbound, "t:1", "e1", o, "ev" + o);
    s.outbound.whenEmpty();
    assertEquals(List.of("room", "room"), heard.said, "not empty yet");
    assertEquals(List.of("open", "ev1", "ev2"), s.read(3));
    assertEquals(List.of("room", "room", "room"), heard.said, "told when the socket took the last event");
  }

  @Test
  void aScopeNotPositionedYetDeliversNothing() {
    ReadBySocket s = new ReadBySocket(8, 1 << 20);
    s.outbound.attached("t:1", "e1", 0, 1000);
    deliver(s.outbound, "t:1", "e1", 1, "ev1");
    s.outbound.deliverEphemeral("t:1", "typing", "typing".length(), Outbound.Kind.EPHEMERAL);
    assertEquals(0, s.outbound.size(), "the client has not been told of the subscription yet");
  }

  @Test
  void ephemeralFramesAreRefusedOnceHalfFullAndShedToMakeRoomForDurableOnes() {
    ReadBySocket s = new ReadBySocket(4, 1 << 20);
    Heard heard = Heard.on(s.outbound);
    live(s.outbound, "t:1", 0);
    s.outbound.deliverEphemeral("t:1", "p1", "p1".length(), Outbound.Kind.PRESENCE);
    s.outbound.deliverEphemeral("t:1", "typing", "typing".length(), Outbound.Kind.EPHEMERAL);
    s.outbound.deliverEphemeral("t:1", "p2", "p2".length(), Outbound.Kind.PRESENCE);
    assertEquals(2, s.outbound.size(), "refused at half full");
    for (long o = 1; o <= 4; o++) deliver(s.outbound, "t:1", "e1", o, "ev" + o);
    assertEquals(List.of(), heard.said, "durable events took the ephemeral frames' places, no overflow");
    assertEquals(3.0, metrics.framesDropped.get());
    assertEquals(List.of("open", "ev1", "ev2", "ev3", "ev4"), s.read(5));
    assertEquals(List.of("presence-shed:[t:1]"), heard.said, "the drained buffer asks for a presence snapshot");
  }

  @Test
  void aPresenceLeaveIsNeverShedAndOneThatFindsNoRoomAtAllBecomesASnapshot() {
    ReadBySocket s = new ReadBySocket(2, 1 << 20);
    Heard heard = Heard.on(s.outbound);
    live(s.outbound, "t:1", 0);
    s.outbound.deliverEphemeral("t:1", "typing", "typing".length(), Outbound.Kind.EPHEMERAL);
    assertEquals(Outbound.Offer.ENQUEUED, s.outbound.offer("t:1", "leave-a", Outbound.Kind.PRESENCE_LEAVE));
    deliver(s.outbound, "t:1", "e1", 1, "ev1"); // sheds the typing frame, not the leave
    // essential frames may go beyond the bound, up to twice the capacity
    assertEquals(Outbound.Offer.ENQUEUED, s.outbound.offer("t:1", "leave-b", Outbound.Kind.PRESENCE_LEAVE));
    assertEquals(Outbound.Offer.ENQUEUED, s.outbound.offer("t:1", "leave-c", Outbound.Kind.PRESENCE_LEAVE));
    assertEquals(Outbound.Offer.FULL, s.outbound.offer("t:1", "leave-d", Outbound.Kind.PRESENCE_LEAVE));
    assertEquals(List.of("open", "leave-a", "ev1", "leave-b", "leave-c"), s.read(5));
    assertEquals(List.of("presence-shed:[t:1]"), heard.said, "the lost leave is made good by a snapshot");
  }

  @Test
  void aFullBufferMakesTheCursorFallBehindInsteadOfQueueingBeyondTheBound() {
    ReadBySocket s = new ReadBySocket(2, 1 << 20);
    Heard heard = Heard.on(s.outbound);
    live(s.outbound, "t:1", 0);
    for (long o = 1; o <= 5; o++) deliver(s.outbound, "t:1", "e1", o, "ev" + o);
    assertEquals(2, s.outbound.size());
    assertEquals(List.of("t:1:DELIVER"), heard.said, "told once; what follows is held for history");
    assertEquals(5, s.outbound.target("t:1"));
    assertEquals(2L, s.outbound.position("t:1").second());
  }

  @Test
  void replayTakesWhatFitsAndContinuesAsTheSocketFreesRoom() {
    ReadBySocket s = new ReadBySocket(4, 1 << 20);
    Heard heard = Heard.on(s.outbound);
    s.outbound.attached("t:1", "e1", 10, 1000);
    assertEquals(Outbound.Positioned.READ_HISTORY, s.outbound.position("t:1", "e1", 0, 10, 1000));
    List<HistoryEntry> page = LongStream.rangeClosed(1, 10).mapToObj(o -> new HistoryEntry(o, 0, "ev" + o)).toList();
    Outbound.Replayed first = s.outbound.replay("t:1", "e1", page, 10);
    assertEquals(new Outbound.Replayed(true, 0, 4, false), first);
    s.outbound.whenRoom();
    assertEquals(List.of(), heard.said);
    assertEquals(List.of("open", "ev1", "ev2"), s.read(3));
    assertEquals(List.of("room"), heard.said, "half the buffer is free again");
    // two places are free, or three once the socket has taken ev3 (its pull is asynchronous)
    int taken = s.outbound.replay("t:1", "e1", page.subList(4, 10), 10).taken();
    assertTrue(taken == 2 || taken == 3, "took " + taken);
    assertEquals(4L + taken, s.outbound.position("t:1").second());
    assertEquals(new Outbound.Replayed(false, 4L + taken, 0, false), s.outbound.replay("t:1", "e2", page, 10),
        "another epoch's history is not this cursor's");
    assertFalse(s.outbound.goLive("t:1", 10));
  }

  @Test
  void theByteBoundLimitsTheBufferAsWellAsTheFrameCount() {
    ReadBySocket s = new ReadBySocket(100, 10);
    s.outbound.attached("t:1", "e1", 3, 1000);
    s.outbound.position("t:1", "e1", 0, 3, 1000);
    List<HistoryEntry> page = List.of(new HistoryEntry(1, 0, "aaaaaa"), new HistoryEntry(2, 0, "bbbbbb"),
        new HistoryEntry(3, 0, "cc"));
    assertEquals(1, s.outbound.replay("t:1", "e1", page, 3).taken(), "6 + 6 characters exceed 10");
    assertEquals(4, s.outbound.freeBytes());
  }

  @Test
  void unreadRepliesAreBoundedInBytesAsWellAsInCount() {
    ReadBySocket s = new ReadBySocket(100, 1000);
    String reply = "r".repeat(400);
    assertEquals(Outbound.Offer.ENQUEUED, s.outbound.offer(reply));
    assertEquals(Outbound.Offer.ENQUEUED, s.outbound.offer(reply));
    assertEquals(Outbound.Offer.FULL, s.outbound.offer(reply), "1,200 bytes of unread replies exceed 1,000");
    assertEquals(List.of("open", reply), s.read(2));
    assertEquals(Outbound.Offer.ENQUEUED, s.outbound.offer(reply), "room again once the client reads");
  }

  @Test
  void essentialFramesMayTakeTwiceTheByteBoundAndNoMore() {
    ReadBySocket s = new ReadBySocket(100, 1000);
    Heard heard = Heard.on(s.outbound);
    live(s.outbound, "t:1", 0);
    String leave = "l".repeat(600);
    for (int i = 0; i < 3; i++) {
      assertEquals(Outbound.Offer.ENQUEUED, s.outbound.offer("t:1", leave, Outbound.Kind.PRESENCE_LEAVE));
    }
    assertEquals(Outbound.Offer.FULL, s.outbound.offer("t:1", leave, Outbound.Kind.PRESENCE_LEAVE),
        "2,400 bytes exceed twice the 1,000-byte bound, though 4 frames are far below twice 100");
    assertEquals(Outbound.Offer.FULL, s.outbound.offer("t:1", "u".repeat(600), Outbound.Kind.ESSENTIAL));
    assertEquals(List.of("open", leave, leave, leave), s.read(4));
    assertEquals(List.of("presence-shed:[t:1]"), heard.said, "the refused leave is made good by a snapshot");
  }

  @Test
  void sizesAreCountedInUtf8BytesNotCharacters() {
    ReadBySocket s = new ReadBySocket(100, 1000);
    s.outbound.attached("t:1", "e1", 3, 1000);
    s.outbound.position("t:1", "e1", 0, 3, 1000);
    String accented = "\u00e9".repeat(300); // 300 characters, 600 bytes
    List<HistoryEntry> page = LongStream.rangeClosed(1, 3).mapToObj(o -> new HistoryEntry(o, 0, accented)).toList();
    assertEquals(1, s.outbound.replay("t:1", "e1", page, 3).taken(), "600 + 600 bytes exceed 1,000 (600 characters would not)");
    assertEquals(400, s.outbound.freeBytes());
    assertEquals(1200, Outbound.bytesOf(accented + accented));
  }

  @Test
  void aPresenceSnapshotLargerThanTheBoundWaitsForTheDrainedBufferAndGoesOutAlone() {
    ReadBySocket s = new ReadBySocket(100, 100);
    Heard heard = Heard.on(s.outbound);
    live(s.outbound, "t:1", 0);
    deliver(s.outbound, "t:1", "e1", 1, "ev1");
    String snapshot = "m".repeat(300);
    s.outbound.deliverPresenceReply("t:1", snapshot);
    assertEquals(1, s.outbound.size(), "300 bytes exceed twice the bound behind a queued event");
    assertEquals(List.of("open", "ev1"), s.read(2));
    assertEquals(List.of("presence-shed:[t:1]"), heard.said, "asked again once the buffer drained");
    s.outbound.deliverPresenceReply("t:1", snapshot);
    assertEquals(List.of(snapshot), s.read(1), "alone in an empty buffer it goes out");
  }

  @Test
  void abortFailsTheStreamWithoutAClosingFrame() {
    ReadBySocket s = new ReadBySocket(4, 1 << 20);
    s.outbound.offer("x");
    s.outbound.abort();
    String last = s.read();
    for (int i = 0; i < 3 && !last.startsWith("<"); i++) last = s.read();
    assertEquals("<failed>", last, "the stream fails: the socket is cut, no closing frame");
  }
}
