package io.scopecast.actors.connection;

import io.scopecast.actors.settings.ScopecastSettings;
import java.time.Clock;

/**
 * The flood limits of one connection (§13.11): frames per second with a burst, and refused frames
 * (errors, rate-limited publishes) per window. Each check says whether the connection must now be
 * closed with 4029. Not thread-safe: the connection actor owns it.
 */
public final class FrameGuard {
  private final TokenBucket frames;
  private final ErrorWindow errors;
  private final Clock clock;

  public FrameGuard(ScopecastSettings.Flood flood, Clock clock) {
    this.frames = new TokenBucket(flood.framesPerSecond(), flood.burst(), clock);
    this.errors = new ErrorWindow(flood.maxErrors(), flood.errorWindow().toMillis());
    this.clock = clock;
  }

  /** One more inbound frame; true when it is over the rate. */
  public boolean floods() {
    return !frames.tryTake();
  }

  /** One more refused frame; true when there were too many in the window. */
  public boolean tooManyErrors() {
    return errors.record(clock.millis());
  }
}
