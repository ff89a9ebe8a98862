package io.scopecast.app.testing;

import com.fasterxml.jackson.databind.JsonNode;
import java.net.URI;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;

/**
 * A client that behaves like a good SDK: it remembers its position in every scope, reconnects
 * (to any node) with {@code resume}, and checks the no-silent-loss rule of §5 on every frame: per
 * scope, each event is the next offset after the last known position, except right after a
 * {@code resync} or a {@code recovered:false}, which set the position anew.
 */
public final class ResumingClient {
  public record Position(String epoch, long offset) {}

  private final String token;
  private final String connectFields;
  private final Map<String, Position> positions = new LinkedHashMap<>();
  private final List<String> violations = new ArrayList<>();
  private final Map<String, List<Long>> delivered = new LinkedHashMap<>();
  private final List<String> notable = new ArrayList<>();
  private final Set<String> stillPending = new LinkedHashSet<>();
  private int resyncs;
  private int pending;
  private int notRecovered;
  private WsClient current;
  private int checkedFrames;

  public ResumingClient(String token, String connectFields) {
    this.token = token;
    this.connectFields = connectFields;
  }

  /** Connects (again) to {@code uri}, resuming every known position. */
  public ResumingClient connect(URI uri) {
    if (current != null) {
      check();
      current.abort();
    }
    StringBuilder resume = new StringBuilder();
    positions.forEach((scope, p) -> {
      if (resume.length() > 0) resume.append(',');
      resume.append('"').append(scope).append("\":{\"epoch\":\"").append(p.epoch()).append("\",\"offset\":").append(p.offset()).append('}');
    });
    String fields = connectFields + (resume.length() == 0 ? "" : (connectFields.isEmpty() ? "" : ",") + "\"resume\":{" + resume + "}");
    current = WsClient.connect(uri, token, fields);
    checkedFrames = 0;
    check();
    return this;
  }

  public WsClient socket() {
    return current;
  }

  /** Applies every frame received so far to the positions, recording violations. */
  public synchronized ResumingClient check() {
    List<JsonNode> frames = current.seen();
    for (; checkedFrames < frames.size(); checkedFrames++) apply(frames.get(checkedFrames));
    return this;
  }

  private void apply(JsonNode f) {
    switch (f.path("type").asText()) {
      case "connected" -> f.get("scopes").forEach(this::entry);
      case "subscribed" -> entry(f);
      case "resync" -> {
        resyncs++;
        notable.add(f.toString());
        positions.put(f.get("scope").asText(), new Position(f.get("epoch").asText(), f.get("offset").asLong()));
      }
      case "event" -> {
        if (!f.has("offset")) return;
        String scope = f.get("scope").asText();
        long offset = f.get("offset").asLong();
        Position p = positions.get(scope);
        if (p == null) {
          violations.add("event " + scope + "#" + offset + " before any position");
          return;
        }
        if (offset != p.offset() + 1) violations.add(scope + ": expected offset " + (p.offset() + 1) + " in " + p.epoch() + ", got " + offset);
        positions.put(scope, new Position(p.epoch(), Math.max(offset, p.offset())));
        delivered.computeIfAbsent(scope + "@" + p.epoch(), k -> new ArrayList<>()).add(offset);
      }
      default -> { }
    }
  }

  private void entry(JsonNode e) {
    String scope = e.get("scope").asText();
    if (e.path("pending").asBoolean()) { // §13.18: the answer follows as an unsolicited subscribed
      pending++;
      stillPending.add(scope);
      return;
    }
    stillPending.remove(scope);
    Position known = positions.get(scope);
    boolean recovered = e.get("recovered").asBoolean();
    if (known == null || !recovered) {
      if (known != null) {
        notRecovered++;
        notable.add("not recovered: " + e + " (known " + known + ")");
      }
      positions.put(scope, new Position(e.get("epoch").asText(), e.get("offset").asLong()));
    } else if (!known.epoch().equals(e.get("epoch").asText())) {
      violations.add(scope + ": recovered:true with another epoch");
    }
  }

  /** Waits until the client's position in {@code scope} reaches {@code offset} (in whatever epoch). */
  public void awaitOffset(String scope, Supplier<Long> target, Duration within) {
    long deadline = System.nanoTime() + within.toNanos();
    while (true) {
      check();
      Position p = positions.get(scope);
      if (p != null && p.offset() >= target.get()) return;
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        throw new AssertionError("position in " + scope + " is " + p + ", expected " + target.get() + "; violations "
            + violations + "; still pending " + stillPending + "; its frames on this connection: " + framesAbout(scope));
      }
      try {
        current.expect(f -> scope.equals(f.path("scope").asText()), "frames of " + scope, Duration.ofNanos(left));
      } catch (AssertionError timeout) {
        // re-checked above
      }
    }
  }

  /** The frames about {@code scope} the current connection received (the connected frame's entry included). */
  private List<String> framesAbout(String scope) {
    List<String> out = new ArrayList<>();
    for (JsonNode f : current.seen()) {
      if (scope.equals(f.path("scope").asText())) out.add(f.toString());
      f.path("scopes").forEach(e -> {
        if (scope.equals(e.path("scope").asText())) out.add("connected: " + e);
      });
    }
    return out.size() > 20 ? out.subList(out.size() - 20, out.size()) : out;
  }

  public Position position(String scope) {
    check();
    return positions.get(scope);
  }

  public List<String> violations() {
    check();
    return violations;
  }

  /** The resync frames and not-recovered entries this client saw. */
  public List<String> notable() {
    return notable;
  }

  /** Pending entries and replies seen (§13.18): each is answered later by an unsolicited subscribed. */
  public int pending() {
    check();
    return pending;
  }

  /** Scopes told pending whose answer has not come (yet). */
  public Set<String> stillPending() {
    check();
    return Set.copyOf(stillPending);
  }

  public int resyncs() {
    return resyncs;
  }

  public int notRecovered() {
    return notRecovered;
  }

  /** Offsets delivered per scope and epoch, e.g. "workspace:1@Yq3k" -> [1, 2, 3]. */
  public Map<String, List<Long>> delivered() {
    check();
    return delivered;
  }
}
