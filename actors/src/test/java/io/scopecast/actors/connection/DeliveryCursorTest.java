package io.scopecast.actors.connection;

import static io.scopecast.actors.connection.DeliveryCursor.Verdict.DELIVER;
import static io.scopecast.actors.connection.DeliveryCursor.Verdict.DUPLICATE;
import static io.scopecast.actors.connection.DeliveryCursor.Verdict.GAP;
import static io.scopecast.actors.connection.DeliveryCursor.Verdict.HOLD;
import static io.scopecast.actors.connection.DeliveryCursor.Verdict.NEW_EPOCH;
import static io.scopecast.actors.connection.DeliveryCursor.Verdict.TOO_FAR_BEHIND;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.scopecast.actors.connection.DeliveryCursor.Verdict;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The delivery rules of one subscription, as tables: live events in, verdicts and positions out. */
class DeliveryCursorTest {

  /** A live cursor at e1/{@code delivered}, with a history of {@code historyLimit} events. */
  private static DeliveryCursor liveAt(long delivered, long historyLimit) {
    DeliveryCursor c = new DeliveryCursor("e1", 0, historyLimit);
    c.reposition("e1", delivered);
    assertTrue(c.goLive(delivered));
    return c;
  }

  /** Feeds live events of e1 and applies each DELIVER as the send buffer does; returns the verdicts. */
  private static List<Verdict> feed(DeliveryCursor c, long... offsets) {
    List<Verdict> out = new ArrayList<>();
    for (long o : offsets) {
      Verdict v = c.live("e1", o);
      if (v == DELIVER) c.delivered(o);
      out.add(v);
    }
    return out;
  }

  @Test
  void liveEventsInOrderAreDeliveredAndRepeatsAreDuplicates() {
    DeliveryCursor c = liveAt(3, 100);
    assertEquals(List.of(DELIVER, DELIVER, DUPLICATE, DUPLICATE, DELIVER), feed(c, 4, 5, 5, 2, 6));
    assertEquals(6, c.delivered());
  }

  @Test
  void aGapStopsLiveDeliveryAndWhatFollowsIsHeldForTheReplay() {
    DeliveryCursor c = liveAt(3, 100);
    assertEquals(List.of(DELIVER, GAP, HOLD, HOLD), feed(c, 4, 6, 7, 8));
    assertFalse(c.isLive());
    assertEquals(8, c.target(), "history is read up to the newest live event seen");
    // the replay fills 5..8; only then does the cursor go live again
    for (long o = 5; o <= 7; o++) assertTrue(c.replayed(o));
    assertFalse(c.goLive(6), "8 was seen live and is not delivered yet");
    assertTrue(c.replayed(8));
    assertTrue(c.goLive(6));
    assertEquals(List.of(DELIVER), feed(c, 9));
  }

  @Test
  void replayedEventsMustContinueTheCursor() {
    DeliveryCursor c = new DeliveryCursor("e1", 0, 100);
    c.reposition("e1", 10);
    assertFalse(c.replayed(10), "a duplicate");
    assertFalse(c.replayed(12), "it would leave a gap");
    assertTrue(c.replayed(11));
    assertEquals(11, c.delivered());
  }

  @Test
  void aLiveEventOfAnotherEpochAsksForAResubscribe() {
    DeliveryCursor c = liveAt(3, 100);
    assertEquals(NEW_EPOCH, c.live("e2", 1));
    assertFalse(c.isLive());
    assertTrue(c.sawOtherEpoch());
    c.reposition("e2", 0); // the owner's answer (or a resync) moves the cursor into the new epoch
    assertFalse(c.sawOtherEpoch());
    assertFalse(c.goLive(0), "e2/1 was seen and must be read first");
    assertTrue(c.replayed(1));
    assertTrue(c.goLive(1));
  }

  @Test
  void aNewEpochIsAnnouncedOncePerEpochNotOncePerEvent() {
    DeliveryCursor c = liveAt(3, 100);
    List<Verdict> out = new ArrayList<>();
    for (long o = 1; o <= 4; o++) out.add(c.live("e2", o));
    assertEquals(List.of(NEW_EPOCH, HOLD, HOLD, HOLD), out, "one re-subscribe per new epoch, the rest waits for it");
    assertEquals(HOLD, c.live("e1", 4), "the old epoch's stragglers wait too");
    assertEquals(NEW_EPOCH, c.live("e3", 1), "yet another epoch is announced again");
    assertEquals(HOLD, c.live("e3", 2));
    c.reposition("e3", 0);
    assertEquals(HOLD, c.live("e3", 3), "positioned in e3 but not live: read from history first");
    assertTrue(c.replayed(1) && c.replayed(2) && c.replayed(3));
    assertTrue(c.goLive(3));
    assertEquals(NEW_EPOCH, c.live("e4", 1), "after a reposition the next epoch is announced");
  }

  @Test
  void goingLiveWaitsForTheOwnersOffset() {
    DeliveryCursor c = new DeliveryCursor("e1", 0, 100);
    c.reposition("e1", 2); // the client resumes from 2; the owner is at 5
    assertFalse(c.goLive(5));
    assertEquals(List.of(HOLD, HOLD), feed(c, 6, 7));
    for (long o = 3; o <= 7; o++) assertTrue(c.replayed(o));
    assertTrue(c.goLive(5));
    assertEquals(List.of(DUPLICATE, DELIVER), feed(c, 7, 8));
  }

  @Test
  void aCursorThatFellBehindFurtherThanHistoryIsToldOnceUntilItMoves() {
    DeliveryCursor c = liveAt(10, 5);
    assertFalse(c.hasFallenBehind());
    c.fellBehind(); // no room for 11
    assertTrue(c.hasFallenBehind());
    assertEquals(List.of(HOLD, HOLD, HOLD, HOLD, HOLD, TOO_FAR_BEHIND, HOLD), feed(c, 11, 12, 13, 14, 15, 16, 17));
    assertTrue(c.replayed(11));
    assertEquals(List.of(HOLD, TOO_FAR_BEHIND), feed(c, 16, 18), "told again once it moved and fell behind further");
    c.reposition("e1", 11);
    assertFalse(c.hasFallenBehind(), "a replay from a new position is not a slow client");
  }

  @Test
  void aPausedCursorHoldsLiveEventsUntilPositioned() {
    DeliveryCursor c = liveAt(4, 100);
    c.pause();
    assertEquals(List.of(HOLD, HOLD), feed(c, 5, 6));
    c.reposition("e1", 4);
    assertTrue(c.isPositioned());
    assertFalse(c.goLive(4), "5 and 6 were seen");
    assertTrue(c.replayed(5));
    assertTrue(c.replayed(6));
    assertTrue(c.goLive(4));
  }

  @Test
  void aCursorIsNotPositionedUntilTheConnectionPlacesIt() {
    DeliveryCursor c = new DeliveryCursor("e1", 7, 100);
    assertFalse(c.isPositioned());
    assertEquals(HOLD, c.live("e1", 8), "attached but not positioned: nothing goes out yet");
    c.reposition("e1", 7);
    assertTrue(c.isPositioned());
  }
}
