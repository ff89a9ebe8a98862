package io.scopecast.actors.connection;

import java.time.Duration;
import java.util.random.RandomGenerator;

/**
 * Delays between requests to a scope's owner that does not answer (§13.18), with decorrelated
 * jitter (the AWS architecture note "Exponential Backoff And Jitter"): each delay is drawn from
 * {@code [first, 3 × previous]}, capped. Connections that lost the same owner at the same moment
 * spread their requests over the interval instead of arriving in lock-step at the next owner, and
 * no delay exceeds the cap, so a subscription is asked for at least every {@code cap}.
 */
public final class RetryBackoff {

  /** §13.18: 250 ms at first, then growing, never more than 2 s apart. */
  public static final Duration FIRST = Duration.ofMillis(250);
  public static final Duration CAP = Duration.ofSeconds(2);

  private final long firstMillis;
  private final long capMillis;
  private long previousMillis;

  public RetryBackoff(Duration first, Duration cap) {
    if (first.isNegative() || first.isZero() || cap.compareTo(first) < 0) {
      throw new IllegalArgumentException("need 0 < first <= cap, got " + first + " and " + cap);
    }
    this.firstMillis = first.toMillis();
    this.capMillis = cap.toMillis();
    this.previousMillis = firstMillis;
  }

  public static RetryBackoff standard() {
    return new RetryBackoff(FIRST, CAP);
  }

  /** The next delay, drawn with {@code random}. */
  public Duration next(RandomGenerator random) {
    long upper = Math.min(capMillis, previousMillis * 3);
    long millis = upper <= firstMillis ? firstMillis : random.nextLong(firstMillis, upper + 1);
    previousMillis = millis;
    return Duration.ofMillis(millis);
  }

  /** Starts over from the first delay (a new question to the owner). */
  public void reset() {
    previousMillis = firstMillis;
  }
}
