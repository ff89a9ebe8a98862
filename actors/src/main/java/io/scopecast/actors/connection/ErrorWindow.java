package io.scopecast.actors.connection;

import java.util.ArrayDeque;

/** Counts errors in a sliding window; {@link #record} says whether the limit is now exceeded. */
public final class ErrorWindow {
  private final int maxErrors;
  private final long windowMillis;
  private final ArrayDeque<Long> times = new ArrayDeque<>();

  public ErrorWindow(int maxErrors, long windowMillis) {
    this.maxErrors = maxErrors;
    this.windowMillis = windowMillis;
  }

  /** Records one error at {@code nowMillis}; true when more than {@code maxErrors} fall in the window. */
  public boolean record(long nowMillis) {
    while (!times.isEmpty() && nowMillis - times.peekFirst() > windowMillis) times.removeFirst();
    times.addLast(nowMillis);
    if (times.size() > maxErrors + 1) times.removeFirst();
    return times.size() > maxErrors;
  }
}
