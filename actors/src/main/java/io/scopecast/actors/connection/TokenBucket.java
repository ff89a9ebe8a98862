package io.scopecast.actors.connection;

import java.time.Clock;

/** A token bucket: {@code ratePerSecond} tokens a second, at most {@code burst} saved up, timed by {@code clock}. Not thread-safe. */
public final class TokenBucket {
  private final double ratePerMilli;
  private final double burst;
  private final Clock clock;
  private double tokens;
  private long last;

  public TokenBucket(double ratePerSecond, int burst, Clock clock) {
    this.ratePerMilli = ratePerSecond / 1e3;
    this.burst = Math.max(1, burst);
    this.clock = clock;
    this.tokens = this.burst;
    this.last = clock.millis();
  }

  /** Takes a token now; false when none is left. */
  public boolean tryTake() {
    long now = clock.millis();
    tokens = Math.min(burst, tokens + Math.max(0, now - last) * ratePerMilli);
    last = Math.max(last, now);
    if (tokens >= 1) {
      tokens -= 1;
      return true;
    }
    return false;
  }
}
