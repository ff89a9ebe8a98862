package io.scopecast.actors.protocol;

/** The last event a client has seen in a scope: {@code {epoch, offset}} (§1). */
public record Position(String epoch, long offset) {
  public Position {
    if (epoch == null) throw new IllegalArgumentException("epoch is required");
    if (offset < 0) throw new IllegalArgumentException("offset must be >= 0");
  }
}
