package io.scopecast.actors.scope;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.scopecast.actors.history.HistoryEntry;
import io.scopecast.actors.history.IdempotencyRecord;
import io.scopecast.actors.protocol.Position;
import java.util.List;
import java.util.stream.LongStream;
import org.junit.jupiter.api.Test;

/** The sequencing rules of one scope, as tables: publishes and times in, offsets, keys and verdicts out. */
class SequencerTest {
  private static final long MINUTE = 60_000;
  /** History of 5 events for 10 minutes; keys for 2 minutes, at most 3 of them. */
  private static final Sequencer.Limits LIMITS = new Sequencer.Limits(5, 10 * MINUTE, 2 * MINUTE, 3);

  private static Sequencer fresh() {
    return new Sequencer("task:1", LIMITS, new ScopeStart.State("e1", 0, List.of(), List.of(), false), 0);
  }

  /** Sequences and commits {@code n} events without keys at {@code now}; returns their offsets. */
  private static List<Long> publish(Sequencer s, int n, long now) {
    return LongStream.range(0, n).mapToObj(i -> {
      Sequencer.Sequenced e = s.sequence("e", "{}", null, now);
      s.commit(e);
      return e.offset();
    }).toList();
  }

  private static List<Long> offsets(List<HistoryEntry> entries) {
    return entries.stream().map(HistoryEntry::offset).toList();
  }

  @Test
  void offsetsFollowEachOtherAndSubscribersSeeOnlyCommittedOnes() {
    Sequencer s = fresh();
    assertEquals(List.of(1L, 2L), publish(s, 2, 0));
    Sequencer.Sequenced third = s.sequence("moved", "{\"a\":1}", null, 5);
    Sequencer.Sequenced fourth = s.sequence("moved", "{}", null, 5);
    assertEquals(3, third.offset());
    assertEquals(4, fourth.offset());
    assertEquals(2, s.offset(), "sequenced but not committed yet");
    assertTrue(s.hasUncommitted());
    assertTrue(third.frame().contains("\"offset\":3") && third.frame().contains("\"a\":1"), third.frame());
    s.commit(third);
    s.commit(fourth);
    assertEquals(4, s.offset());
    assertFalse(s.hasUncommitted());
  }

  @Test
  void theRecoveryDecision() {
    Sequencer s = fresh();
    publish(s, 8, 0); // history holds 4..8
    record Case(Position since, long now, boolean recovered, String why) {}
    for (Case c : List.of(
        new Case(new Position("e1", 8), 0, true, "up to date"),
        new Case(new Position("e1", 3), 0, true, "4..8 all held"),
        new Case(new Position("e1", 2), 0, false, "3 left the history (size 5)"),
        new Case(new Position("e1", 9), 0, false, "beyond the scope's offset"),
        new Case(new Position("e0", 8), 0, false, "another epoch"),
        new Case(new Position("e1", 5), 11 * MINUTE, false, "6..8 are older than the ttl"),
        new Case(new Position("e1", 8), 11 * MINUTE, true, "nothing missed, even with an empty history"))) {
      assertEquals(c.recovered(), s.canRecover(c.since(), c.now()), c.why());
    }
  }

  @Test
  void readsComeFromMemoryWhenItHoldsTheRangeAndAreBoundedInCharacters() {
    Sequencer s = fresh();
    publish(s, 8, 0);
    assertTrue(s.inMemory(3, 0));
    assertTrue(s.inMemory(8, 0), "nothing after the newest offset");
    assertFalse(s.inMemory(2, 0), "3 is only in the durable history");
    assertEquals(List.of(4L, 5L, 6L, 7L, 8L), offsets(s.page(0, 100, Long.MAX_VALUE, 0)));
    assertEquals(List.of(6L, 7L), offsets(s.page(5, 2, Long.MAX_VALUE, 0)));
    long oneFrame = s.page(3, 1, Long.MAX_VALUE, 0).get(0).frame().length();
    assertEquals(List.of(4L, 5L), offsets(s.page(3, 100, 2 * oneFrame + 1, 0)));
    assertEquals(List.of(4L), offsets(s.page(3, 100, 1, 0)), "at least one event, however large");
  }

  @Test
  void anIdempotencyKeyIsAnsweredWithItsFirstResultWithinTheWindow() {
    Sequencer s = fresh();
    Sequencer.Sequenced first = s.sequence("e", "{}", "k1", 0);
    s.commit(first);
    IdempotencyRecord seen = s.remembered("k1");
    assertEquals(new IdempotencyRecord("k1", "e1", 1, 0), seen);
    assertNull(s.remembered("k2"));
    assertNull(s.remembered(null));
    assertEquals(List.of(), s.forgetOldKeys(2 * MINUTE), "still inside the window");
    assertEquals(List.of("k1"), s.forgetOldKeys(2 * MINUTE + 1));
    assertNull(s.remembered("k1"), "outside the window a key is a new publish");
  }

  @Test
  void theIdempotencyWindowIsBoundedInKeysOldestFirst() {
    Sequencer s = fresh();
    for (String k : List.of("a", "b", "c")) s.commit(s.sequence("e", "{}", k, 0));
    assertEquals(List.of("a"), s.forgetOldKeys(0), "room for the next key: 3 at most");
    s.commit(s.sequence("e", "{}", "d", 0));
    assertNull(s.remembered("a"));
    assertNotNull(s.remembered("b"));
    assertNotNull(s.remembered("d"));
  }

  @Test
  void aNewEpochStartsOverAndRefusesToLoseUncommittedEvents() {
    Sequencer s = fresh();
    publish(s, 3, 0);
    Sequencer.Sequenced pending = s.sequence("e", "{}", null, 0);
    assertThrows(IllegalStateException.class, () -> s.startEpoch("e2"));
    s.commit(pending);
    s.startEpoch("e2");
    assertEquals("e2", s.epoch());
    assertEquals(0, s.offset());
    assertEquals(List.of(), s.page(0, 10, Long.MAX_VALUE, 0));
    assertFalse(s.canRecover(new Position("e1", 4), 0), "the old epoch is gone");
    assertTrue(s.canRecover(new Position("e2", 0), 0));
    assertEquals(List.of(1L), publish(s, 1, 0));
  }

  @Test
  void aStartFromAHandOffOrRedisContinuesWhereItStood() {
    Sequencer before = fresh();
    publish(before, 7, 0);
    before.commit(before.sequence("e", "{}", "k", 0));
    ScopeStart.State state = before.handOff(MINUTE, Integer.MAX_VALUE, 10, false);
    assertEquals(List.of(4L, 5L, 6L, 7L, 8L), offsets(state.history()));

    Sequencer after = new Sequencer("task:1", LIMITS, state, MINUTE);
    assertEquals("e1", after.epoch());
    assertEquals(8, after.offset());
    assertTrue(after.canRecover(new Position("e1", 3), MINUTE));
    assertEquals(8, after.remembered("k").offset());
    assertEquals(List.of(9L), publish(after, 1, MINUTE));
  }

  @Test
  void aHandOffIsBoundedInCharactersAndKeysNewestFirst() {
    Sequencer s = fresh();
    publish(s, 5, 0);
    for (String k : List.of("a", "b", "c")) s.commit(s.sequence("e", "{}", k, 0));
    long frame = s.page(7, 1, Long.MAX_VALUE, 0).get(0).frame().length();
    ScopeStart.State state = s.handOff(0, (int) (2 * frame), 2, true);
    assertEquals(List.of(7L, 8L), offsets(state.history()));
    assertEquals(List.of("b", "c"), state.keys().stream().map(IdempotencyRecord::key).toList());
    assertTrue(state.durableBehind());
  }

  @Test
  void expiredHistoryLeavesTheEpochAndOffsetAlone() {
    Sequencer s = fresh();
    publish(s, 3, 0);
    s.expire(11 * MINUTE);
    assertEquals(List.of(), s.page(0, 10, Long.MAX_VALUE, 11 * MINUTE));
    assertEquals(3, s.offset());
    assertEquals(List.of(4L), publish(s, 1, 11 * MINUTE));
  }
}
