package io.scopecast.actors.connection;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.scopecast.actors.connection.Outbound.Kind;
import io.scopecast.actors.connection.Outbound.Offer;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The send buffer's lanes as pure rules: bounds, what goes beyond them, shedding, and the order the socket takes. */
class SendLanesTest {
  private int dropped;

  private SendLanes lanes(int capacity, long maxBytes) {
    return new SendLanes(capacity, maxBytes, () -> dropped++);
  }

  private static List<String> drain(SendLanes l) {
    List<String> out = new ArrayList<>();
    for (SendLanes.Frame f; (f = l.take()) != null; ) out.add(f.json);
    return out;
  }

  @Test
  void theControlLaneIsBoundedByFramesAndBytesAndOneFrameAlwaysFits() {
    record Row(int capacity, long maxBytes, int[] sizes, List<Offer> expected) {}
    List<Row> rows = List.of(
        new Row(2, 1000, new int[] {10, 10, 10}, List.of(Offer.ENQUEUED, Offer.ENQUEUED, Offer.FULL)),
        new Row(10, 100, new int[] {60, 60}, List.of(Offer.ENQUEUED, Offer.FULL)),
        new Row(10, 100, new int[] {500, 1}, List.of(Offer.ENQUEUED, Offer.FULL)), // larger than the bound, alone
        new Row(10, 100, new int[] {50, 50, 1}, List.of(Offer.ENQUEUED, Offer.ENQUEUED, Offer.FULL)));
    for (Row row : rows) {
      SendLanes l = lanes(row.capacity(), row.maxBytes());
      List<Offer> got = new ArrayList<>();
      for (int size : row.sizes()) got.add(l.offerControl("c", size));
      assertEquals(row.expected(), got, row.toString());
    }
  }

  @Test
  void eachKindMeetsItsOwnBoundInTheMainLane() {
    record Row(Kind kind, int queuedBefore, Offer expected, int droppedAfter) {}
    // capacity 4, 1,000 bytes; the lane holds queuedBefore durable events of 10 bytes
    List<Row> rows = List.of(
        new Row(Kind.EPHEMERAL, 1, Offer.ENQUEUED, 0),
        new Row(Kind.EPHEMERAL, 2, Offer.FULL, 1), // refused from half full, and counted
        new Row(Kind.PRESENCE, 2, Offer.FULL, 1),
        new Row(Kind.DURABLE, 3, Offer.ENQUEUED, 0),
        new Row(Kind.DURABLE, 4, Offer.FULL, 0), // no room: the cursor falls behind, nothing is dropped
        new Row(Kind.ESSENTIAL, 4, Offer.ENQUEUED, 0), // beyond the bound, up to twice it
        new Row(Kind.PRESENCE_LEAVE, 4, Offer.ENQUEUED, 0));
    for (Row row : rows) {
      dropped = 0;
      SendLanes l = lanes(4, 1000);
      for (int i = 0; i < row.queuedBefore(); i++) assertTrue(l.offerEvent("s", "e" + i, 10, 0));
      assertEquals(row.expected(), l.offer("s", "x", 10, row.kind()), row.toString());
      assertEquals(row.droppedAfter(), dropped, row.toString());
    }
  }

  @Test
  void essentialFramesStopAtTwiceEitherBound() {
    SendLanes byCount = lanes(2, 1000);
    for (int i = 0; i < 4; i++) assertEquals(Offer.ENQUEUED, byCount.offer("s", "u", 1, Kind.ESSENTIAL));
    assertEquals(Offer.FULL, byCount.offer("s", "u", 1, Kind.ESSENTIAL));
    SendLanes byBytes = lanes(100, 100);
    assertEquals(Offer.ENQUEUED, byBytes.offer("s", "u", 150, Kind.ESSENTIAL));
    assertEquals(Offer.FULL, byBytes.offer("s", "u", 60, Kind.ESSENTIAL), "150 + 60 bytes exceed twice 100");
  }

  @Test
  void aDurableEventShedsTheOldestEphemeralFrameAndTheScopeGetsASnapshotOnceDrained() {
    SendLanes l = lanes(2, 1000);
    assertEquals(Offer.ENQUEUED, l.offer("s", "p1", 2, Kind.PRESENCE));
    assertTrue(l.offerEvent("s", "e1", 2, 0));
    assertTrue(l.offerEvent("s", "e2", 2, 0), "the presence frame made way");
    assertEquals(1, dropped);
    assertFalse(l.offerEvent("s", "e3", 2, 0), "nothing left to shed");
    assertEquals(List.of("e1", "e2"), drain(l));
    assertEquals(Set.of("s"), l.takeSnapshotsDue());
    assertNull(l.takeSnapshotsDue(), "told once");
  }

  @Test
  void theSocketTakesControlFramesFirstAndEventsOnlyWhenNotHeld() {
    SendLanes l = lanes(8, 1000);
    l.offerEvent("s", "e1", 2, 0);
    l.hold();
    l.offerControl("reply", 5);
    assertEquals(List.of("reply"), drain(l), "events wait behind the held lane");
    assertTrue(l.release(), "events are waiting");
    assertEquals(List.of("e1"), drain(l));
    assertFalse(l.release());
  }

  @Test
  void roomIsDueOnceHalfTheLaneIsFreeAndEmptinessOnceItIsEmpty() {
    SendLanes l = lanes(4, 1000);
    for (int i = 1; i <= 4; i++) l.offerEvent("s", "e" + i, 2, 0);
    assertFalse(l.wantRoom());
    l.take();
    assertFalse(l.takeRoomDue(), "3 of 4 still queued");
    l.take();
    assertTrue(l.takeRoomDue(), "half free");
    assertFalse(l.wantEmpty());
    l.take();
    assertFalse(l.takeRoomDue());
    l.take();
    assertTrue(l.takeRoomDue(), "empty");
    assertTrue(l.wantRoom(), "an empty lane has room at once");
  }
}
