package io.scopecast.actors.connection;

import io.scopecast.actors.metrics.ScopecastMetrics;
import java.util.function.Function;
import org.apache.pekko.stream.Attributes;
import org.apache.pekko.stream.Outlet;
import org.apache.pekko.stream.SourceShape;
import org.apache.pekko.stream.stage.AbstractOutHandler;
import org.apache.pekko.stream.stage.AsyncCallback;
import org.apache.pekko.stream.stage.GraphStageLogic;
import org.apache.pekko.stream.stage.GraphStageWithMaterializedValue;
import scala.Tuple2;

/**
 * The source stage of one socket's frames: each materialization creates its {@link Outbound}
 * handle. It pushes one frame per pull from the handle's lanes, sleeps when they are empty (an
 * offer wakes it through an async callback), completes after the closing frame and fails when the
 * handle is aborted. Downstream cancelling (the socket closed) aborts the handle.
 */
final class OutboundStage<T> extends GraphStageWithMaterializedValue<SourceShape<T>, Outbound> {
  private final Outlet<T> out = Outlet.create("Outbound.out");
  private final SourceShape<T> shape = SourceShape.of(out);
  private final int capacity;
  private final long maxBytes;
  private final ScopecastMetrics metrics;
  private final Function<String, T> wrap;

  OutboundStage(int capacity, long maxBytes, ScopecastMetrics metrics, Function<String, T> wrap) {
    this.capacity = capacity;
    this.maxBytes = maxBytes;
    this.metrics = metrics;
    this.wrap = wrap;
  }

  @Override
  public SourceShape<T> shape() {
    return shape;
  }

  @Override
  public Tuple2<GraphStageLogic, Outbound> createLogicAndMaterializedValue(Attributes attrs) {
    Outbound handle = new Outbound(capacity, maxBytes, metrics);
    GraphStageLogic logic = new GraphStageLogic(shape) {
      {
        setHandler(out, new AbstractOutHandler() {
          @Override
          public void onPull() {
            pushNext();
          }

          @Override
          public void onDownstreamFinish(Throwable cause) {
            handle.abort();
            completeStage();
          }
        });
      }

      @Override
      public void preStart() {
        AsyncCallback<Boolean> wakeUp = createAsyncCallback(proceed -> {
          if (!proceed) failStage(new Outbound.ConnectionAborted());
          else if (isAvailable(out)) pushNext();
        });
        if (handle.started(wakeUp)) failStage(new Outbound.ConnectionAborted());
      }

      private void pushNext() {
        SendLanes.Frame next = handle.next();
        if (next != null) {
          metrics.framesSent.inc();
          if (next.publishedAt > 0) {
            metrics.publishToSend.observe(Math.max(0, System.currentTimeMillis() - next.publishedAt) / 1000.0);
          }
          push(out, wrap.apply(next.json));
        }
        if (handle.ended()) completeStage();
      }
    };
    return Tuple2.apply(logic, handle);
  }
}
