package io.scopecast.actors.connection;

import java.util.ArrayDeque;

/** Counts errors in a sliding window; {@link #record} says whether the limit is now exceeded. */
public final class ErrorWindow {
  private final int maxErrors;
  private final long windowNanos;
  private final ArrayDeque<Long> times = new ArrayDeque<>();

  public ErrorWindow(int maxErrors, long windowNanos) {
    this.maxErrors = maxErrors;
    this.windowNanos = windowNanos;
  }

  /** Records one error at {@code nowNanos}; true when more than {@code maxErrors} fall in the window. */
  public boolean record(long nowNanos) {
    while (!times.isEmpty() && nowNanos - times.peekFirst() > windowNanos) times.removeFirst();
    times.addLast(nowNanos);
    if (times.size() > maxErrors + 1) times.removeFirst();
    return times.size() > maxErrors;
  }
}
