package io.scopecast.actors.connection;

/** A token bucket: {@code ratePerSecond} tokens a second, at most {@code burst} saved up. Not thread-safe. */
public final class TokenBucket {
  private final double ratePerNano;
  private final double burst;
  private double tokens;
  private long last;

  public TokenBucket(double ratePerSecond, int burst) {
    this.ratePerNano = ratePerSecond / 1e9;
    this.burst = Math.max(1, burst);
    this.tokens = this.burst;
    this.last = System.nanoTime();
  }

  public boolean tryTake() {
    return tryTake(System.nanoTime());
  }

  /** For tests: takes a token at the given {@link System#nanoTime()} reading. */
  public boolean tryTake(long nowNanos) {
    tokens = Math.min(burst, tokens + (nowNanos - last) * ratePerNano);
    last = nowNanos;
    if (tokens >= 1) {
      tokens -= 1;
      return true;
    }
    return false;
  }
}
