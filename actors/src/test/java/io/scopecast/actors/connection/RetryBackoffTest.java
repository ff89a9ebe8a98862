package io.scopecast.actors.connection;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.scopecast.actors.testing.FixedRandom;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.random.RandomGenerator;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/** The delays between requests to a silent owner, as tables: draws in, delays out. */
class RetryBackoffTest {

  private static List<Long> delays(RetryBackoff b, RandomGenerator r, int n) {
    return IntStream.range(0, n).mapToObj(i -> b.next(r).toMillis()).toList();
  }

  @Test
  void delaysGrowByAtMostThreeTimesThePreviousUpToTheCap() {
    assertEquals(List.of(750L, 2000L, 2000L, 2000L), delays(RetryBackoff.standard(), FixedRandom.HIGHEST, 4));
    assertEquals(List.of(250L, 250L, 250L), delays(RetryBackoff.standard(), FixedRandom.LOWEST, 3));
  }

  @Test
  void aResetStartsOverFromTheFirstDelay() {
    RetryBackoff b = RetryBackoff.standard();
    delays(b, FixedRandom.HIGHEST, 3);
    b.reset();
    assertEquals(750L, b.next(FixedRandom.HIGHEST).toMillis());
  }

  @Test
  void everyDelayIsWithinFirstAndCap() {
    SplittableRandom random = new SplittableRandom(7);
    RetryBackoff b = RetryBackoff.standard();
    for (long d : delays(b, random, 10_000)) assertTrue(d >= 250 && d <= 2000, "delay " + d);
  }

  /** The storm of issue 20: connections that lost one owner together must not ask again together. */
  @Test
  void connectionsThatStartTogetherSpreadTheirRequests() {
    SplittableRandom random = new SplittableRandom(11);
    int connections = 3000;
    long[] at = new long[connections];
    for (int i = 0; i < connections; i++) {
      RetryBackoff b = RetryBackoff.standard();
      for (int k = 0; k < 3; k++) at[i] += b.next(random).toMillis();
    }
    Set<Long> distinctMillis = new HashSet<>();
    for (long t : at) distinctMillis.add(t);
    long busiestSecond = IntStream.range(0, connections).mapToLong(i -> at[i] / 1000).boxed()
        .collect(java.util.stream.Collectors.groupingBy(s -> s, java.util.stream.Collectors.counting()))
        .values().stream().mapToLong(Long::longValue).max().orElseThrow();
    assertTrue(distinctMillis.size() > 1000, "third requests at " + distinctMillis.size() + " distinct instants");
    assertTrue(busiestSecond < connections * 0.6, "the busiest second takes " + busiestSecond + " of " + connections);
  }

  @Test
  void aCapBelowTheFirstDelayIsRefused() {
    assertThrows(IllegalArgumentException.class, () -> new RetryBackoff(Duration.ofSeconds(2), Duration.ofSeconds(1)));
  }
}
