package io.scopecast.actors.testing;

import java.util.random.RandomGenerator;

/** A random generator that always draws the lowest (or highest) value of a range: jitter made predictable. */
public enum FixedRandom implements RandomGenerator {
  LOWEST, HIGHEST;

  @Override
  public long nextLong() {
    return this == LOWEST ? Long.MIN_VALUE : Long.MAX_VALUE;
  }

  @Override
  public long nextLong(long origin, long bound) {
    return this == LOWEST ? origin : bound - 1;
  }
}
