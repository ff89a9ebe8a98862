package io.scopecast.actors.connection;

import io.scopecast.actors.metrics.ScopecastMetrics;
import org.apache.pekko.stream.BoundedSourceQueue;
import org.apache.pekko.stream.KillSwitches;
import org.apache.pekko.stream.QueueOfferResult;
import org.apache.pekko.stream.UniqueKillSwitch;
import org.apache.pekko.stream.javadsl.Keep;
import org.apache.pekko.stream.javadsl.Source;

/**
 * The send buffer of one connection: a bounded pekko-streams queue that the socket drains with
 * backpressure. It is the only buffer between a connection actor and its client; when it is full
 * the client is too slow. A closing frame takes an urgent lane that overtakes the queued frames,
 * ends the stream after it is written, and drops what was still queued (§13.8).
 */
public final class Outbound {

  /** What flows to the socket: text frames, and signals that run when the socket has taken the frames before them. */
  public sealed interface Item {}

  /** One frame; {@code publishedAt} (ms) is set on events, for the publish-to-send histogram. */
  public record Text(String json, long publishedAt) implements Item {}

  /** Not written: runs {@code onReached} once every frame offered before it was taken by the socket. */
  public record Signal(Runnable onReached) implements Item {}

  private record Last(String json) implements Item {}

  public enum Offer {
    ENQUEUED,
    FULL,
    CLOSED
  }

  private final BoundedSourceQueue<Item> queue;
  private final BoundedSourceQueue<Item> urgent;
  private final UniqueKillSwitch killSwitch;
  private final int capacity;
  private volatile boolean finishing;

  private Outbound(BoundedSourceQueue<Item> queue, BoundedSourceQueue<Item> urgent, UniqueKillSwitch killSwitch,
      int capacity) {
    this.queue = queue;
    this.urgent = urgent;
    this.killSwitch = killSwitch;
    this.capacity = capacity;
  }

  /**
   * The frames to write to one socket. Materializing it (as part of the socket's stream, so that
   * no extra async boundary or buffer sits in between) yields the {@link Outbound} handle the
   * connection actor offers frames to; the source completes after a closing frame.
   */
  public static Source<String, Outbound> source(int capacity, ScopecastMetrics metrics) {
    return Source.<Item>queue(capacity)
        .mergePreferredMat(Source.<Item>queue(2), true, true, Keep.both())
        .takeWhile(item -> !(item instanceof Last), true)
        .<String>mapConcat(item -> toFrame(item, metrics))
        .viaMat(KillSwitches.single(), Keep.both())
        .mapMaterializedValue(m -> new Outbound(m.first().first(), m.first().second(), m.second(), capacity));
  }

  private static java.util.List<String> toFrame(Item item, ScopecastMetrics metrics) {
    if (item instanceof Text t) {
      metrics.framesSent.inc();
      if (t.publishedAt() > 0) {
        metrics.publishToSend.observe(Math.max(0, System.currentTimeMillis() - t.publishedAt()) / 1000.0);
      }
      return java.util.List.of(t.json());
    }
    if (item instanceof Last l) {
      metrics.framesSent.inc();
      return java.util.List.of(l.json());
    }
    ((Signal) item).onReached().run();
    return java.util.List.of();
  }

  public Offer offer(Item item) {
    if (finishing) return Offer.CLOSED;
    QueueOfferResult r = queue.offer(item);
    if (r == QueueOfferResult.enqueued()) return Offer.ENQUEUED;
    if (r == QueueOfferResult.dropped()) return Offer.FULL;
    return Offer.CLOSED;
  }

  public Offer offer(String json) {
    return offer(new Text(json, 0));
  }

  /** Frames waiting to be written. */
  public int size() {
    return queue.size();
  }

  public int capacity() {
    return capacity;
  }

  /**
   * Writes {@code json} ahead of everything still queued, then ends the stream (the socket is
   * closed after it). Queued frames are dropped; returns how many.
   */
  public int finish(String json) {
    if (finishing) return 0;
    finishing = true;
    int dropped = queue.size();
    if (urgent.offer(new Last(json)) != QueueOfferResult.enqueued()) {
      killSwitch.shutdown();
    }
    return dropped;
  }

  /** Ends the stream at once, without a closing frame (the socket is cut). */
  public void abort() {
    finishing = true;
    killSwitch.abort(new ConnectionAborted());
  }

  /** The failure the socket stream ends with when a connection is cut. */
  public static final class ConnectionAborted extends RuntimeException {
    ConnectionAborted() {
      super("connection closed by the server", null, false, false);
    }
  }
}
