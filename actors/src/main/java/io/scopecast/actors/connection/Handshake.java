package io.scopecast.actors.connection;

import io.scopecast.actors.protocol.ServerFrames;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What the handshake collects before the {@code connected} frame (§2, §13.3, §13.18): the scopes
 * in the order they are listed, each answered or still pending, how many resume entries are still
 * being authorized, and the error frames that follow {@code connected}.
 */
public final class Handshake {
  private final LinkedHashMap<String, ServerFrames.ScopeEntry> entries = new LinkedHashMap<>();
  private final List<String> errors = new ArrayList<>();
  private int unauthorized;

  /** A scope of the {@code connected} frame, in order; pending until answered. */
  public void expect(String scope) {
    entries.put(scope, null);
  }

  public void answered(String scope, ServerFrames.ScopeEntry entry) {
    if (entries.containsKey(scope)) entries.put(scope, entry);
  }

  /** A scope left out of {@code connected}, with the error frame that follows it. */
  public void refused(String scope, String errorFrame) {
    if (scope != null) entries.remove(scope);
    errors.add(errorFrame);
  }

  /** A resume entry is being authorized (its scope is expected in its place). */
  public void authorizing() {
    unauthorized++;
  }

  /** One authorization came back (allowed or refused). */
  public void authorized() {
    unauthorized--;
  }

  /** Every resume entry has been authorized or refused. */
  public boolean authorizationsDone() {
    return unauthorized <= 0;
  }

  /** {@code connected} can be sent: nothing is being authorized and every expected scope is answered. */
  public boolean complete() {
    return authorizationsDone() && allAnswered();
  }

  public boolean allAnswered() {
    return !entries.containsValue(null);
  }

  /** The entries of {@code connected}: those not answered yet are pending. */
  public List<ServerFrames.ScopeEntry> entries() {
    List<ServerFrames.ScopeEntry> out = new ArrayList<>(entries.size());
    for (Map.Entry<String, ServerFrames.ScopeEntry> e : entries.entrySet()) {
      out.add(e.getValue() != null ? e.getValue() : ServerFrames.ScopeEntry.pending(e.getKey()));
    }
    return out;
  }

  public List<String> errors() {
    return errors;
  }
}
