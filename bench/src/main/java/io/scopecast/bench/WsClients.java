package io.scopecast.bench;

import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.codec.http.DefaultHttpHeaders;
import io.netty.handler.codec.http.HttpClientCodec;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.websocketx.TextWebSocketFrame;
import io.netty.handler.codec.http.websocketx.WebSocketClientProtocolConfig;
import io.netty.handler.codec.http.websocketx.WebSocketClientProtocolHandler;
import io.netty.handler.codec.http.websocketx.WebSocketFrame;
import io.netty.handler.codec.http.websocketx.WebSocketVersion;
import java.net.InetSocketAddress;
import java.net.URI;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import org.HdrHistogram.ConcurrentHistogram;

/**
 * Many WebSocket clients on a few Netty event-loop threads: cheap enough per connection that the
 * generator is not what limits the server. Frames are scanned, not parsed: the offset, the scope and
 * the send time ({@code "t"} in the payload, System.nanoTime of this JVM) are all a run needs.
 * Every client answers server pings and checks, per scope, that offsets arrive in order without gaps.
 * Clients of the comparison servers ({@link Target}) speak their protocol (Engine.IO v4 over a raw
 * WebSocket for Socket.IO, plain JSON messages for {@code ws}); those servers have no offsets, so
 * their clients only count, per room, what arrives.
 */
final class WsClients implements AutoCloseable {
  final ConcurrentHistogram latencyMicros = new ConcurrentHistogram(3);
  final LongAdder events = new LongAdder();
  final LongAdder gaps = new LongAdder();
  final LongAdder duplicates = new LongAdder();
  final LongAdder resyncs = new LongAdder();
  final LongAdder disconnects = new LongAdder();
  final LongAdder failedConnects = new LongAdder();
  private final EventLoopGroup group;
  private final Bootstrap bootstrap;
  private final AtomicLong connections = new AtomicLong();

  /** Per scope: the last offset, the epoch and how many events arrived. */
  static final class Track {
    String epoch;
    long last;
    long count;
  }

  /** One client connection. */
  final class Conn {
    final Channel channel;
    final CompletableFuture<String> connected = new CompletableFuture<>();
    final Map<String, Track> scopes = new HashMap<>();
    volatile boolean closed;

    Conn(Channel channel) {
      this.channel = channel;
    }

    synchronized Track track(String scope) {
      return scopes.computeIfAbsent(scope, s -> new Track());
    }

    /** Starts from another connection's position in {@code scope} (a client that reconnects). */
    synchronized void seed(String scope, Track from) {
      Track t = track(scope);
      t.epoch = from.epoch;
      t.last = from.last;
    }

    /** The connection's resume object for every scope it has seen. */
    synchronized String resume() {
      StringBuilder b = new StringBuilder("{");
      scopes.forEach((scope, t) -> {
        if (t.epoch == null) return;
        if (b.length() > 1) b.append(',');
        b.append('"').append(scope).append("\":{\"epoch\":\"").append(t.epoch).append("\",\"offset\":").append(t.last).append('}');
      });
      return b.append('}').toString();
    }

    void close() {
      channel.close();
    }
  }

  WsClients(int threads) {
    group = new MultiThreadIoEventLoopGroup(threads, NioIoHandler.newFactory());
    bootstrap = new Bootstrap().group(group).channel(NioSocketChannel.class)
        .option(ChannelOption.TCP_NODELAY, true)
        .option(ChannelOption.SO_REUSEADDR, true)
        .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, 30_000);
  }

  /**
   * Opens a connection to {@code target}; on Scopecast it sends the hello's connect frame once
   * upgraded, and {@link Conn#connected} completes with the {@code connected} frame (on the
   * comparison servers: once the server has taken the client in). {@code local}: the local address
   * to bind (null: any).
   */
  Conn open(Target target, Target.Hello hello, InetSocketAddress local) {
    URI uri = hello.uri();
    WebSocketClientProtocolConfig config = WebSocketClientProtocolConfig.newBuilder()
        .webSocketUri(uri).version(WebSocketVersion.V13).customHeaders(new DefaultHttpHeaders())
        .maxFramePayloadLength(4 * 1024 * 1024).handleCloseFrames(true).build();
    Conn[] holder = new Conn[1];
    CompletableFuture<Conn> ready = new CompletableFuture<>();
    Bootstrap b = bootstrap.clone().handler(new ChannelInitializer<SocketChannel>() {
      @Override
      protected void initChannel(SocketChannel ch) {
        Conn conn = new Conn(ch);
        holder[0] = conn;
        ready.complete(conn);
        ch.pipeline().addLast(new HttpClientCodec(), new HttpObjectAggregator(65536),
            new WebSocketClientProtocolHandler(config), target == Target.SCOPECAST ? new ScopecastHandler(conn, hello.frame())
                : new NodeHandler(conn, hello.rooms(), target == Target.SOCKETIO));
      }
    });
    var f = local == null ? b.connect(uri.getHost(), uri.getPort()) : b.connect(new InetSocketAddress(uri.getHost(), uri.getPort()), local);
    f.addListener(x -> {
      if (!x.isSuccess()) {
        if (!ready.isDone()) ready.completeExceptionally(x.cause());
        else holder[0].connected.completeExceptionally(x.cause());
      }
    });
    Conn conn = ready.join();
    connections.incrementAndGet();
    return conn;
  }

  long openConnections() {
    return connections.get();
  }

  /** What every client does whatever the server: closing and failing count the same everywhere. */
  private abstract class ConnHandler extends SimpleChannelInboundHandler<WebSocketFrame> {
    final Conn conn;

    ConnHandler(Conn conn) {
      this.conn = conn;
    }

    /** An event arrived: counts it and records its latency from the send time ({@code "t"}) in its payload. */
    void timed(String s) {
      int ti = s.indexOf("{\"t\":");
      if (ti > 0) latencyMicros.recordValue(Math.max(0, (System.nanoTime() - number(s, ti + 5)) / 1000));
      events.increment();
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) throws Exception {
      conn.closed = true;
      connections.decrementAndGet();
      conn.connected.completeExceptionally(new IllegalStateException("closed"));
      super.channelInactive(ctx);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      conn.connected.completeExceptionally(cause);
      ctx.close();
    }
  }

  /** A Scopecast client: connect frame, heartbeat, offsets checked per scope. */
  private final class ScopecastHandler extends ConnHandler {
    private final String connectFrame;

    ScopecastHandler(Conn conn, String connectFrame) {
      super(conn);
      this.connectFrame = connectFrame;
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) throws Exception {
      if (evt == WebSocketClientProtocolHandler.ClientHandshakeStateEvent.HANDSHAKE_COMPLETE) {
        ctx.writeAndFlush(new TextWebSocketFrame(connectFrame));
      }
      super.userEventTriggered(ctx, evt);
    }

    @Override
    protected void channelRead0(ChannelHandlerContext ctx, WebSocketFrame frame) {
      if (!(frame instanceof TextWebSocketFrame t)) return;
      String s = t.text();
      if (s.startsWith("{\"type\":\"event\"")) onEvent(s);
      else if (s.startsWith("{\"type\":\"ping\"")) ctx.writeAndFlush(new TextWebSocketFrame("{\"type\":\"pong\"}"));
      else if (s.startsWith("{\"type\":\"connected\"")) onConnected(s);
      else if (s.startsWith("{\"type\":\"resync\"")) onResync(s);
      else if (s.startsWith("{\"type\":\"disconnect\"")) disconnects.increment();
    }

    private void onEvent(String s) {
      int o = s.indexOf("\"offset\":");
      if (o < 0) return; // ephemeral
      long offset = number(s, o + 9);
      String scope = string(s, s.indexOf("\"scope\":\"") + 9);
      timed(s);
      Track tr = conn.track(scope);
      synchronized (conn) {
        if (offset <= tr.last) duplicates.increment();
        else {
          if (offset != tr.last + 1) gaps.add(offset - tr.last - 1);
          tr.last = offset;
          tr.count++;
        }
      }
    }

    private void onConnected(String s) {
      int i = 0;
      while ((i = s.indexOf("{\"scope\":\"", i)) >= 0) {
        String scope = string(s, i + 10);
        String epoch = string(s, s.indexOf("\"epoch\":\"", i) + 9);
        long offset = number(s, s.indexOf("\"offset\":", i) + 9);
        boolean recovered = s.startsWith("true", s.indexOf("\"recovered\":", i) + 12);
        Track tr = conn.track(scope);
        synchronized (conn) {
          if (!recovered || tr.epoch == null) {
            if (tr.epoch != null) resyncs.increment();
            tr.epoch = epoch;
            tr.last = offset;
          }
        }
        i++;
      }
      conn.connected.complete(s);
    }

    private void onResync(String s) {
      resyncs.increment();
      String scope = string(s, s.indexOf("\"scope\":\"") + 9);
      Track tr = conn.track(scope);
      synchronized (conn) {
        tr.epoch = string(s, s.indexOf("\"epoch\":\"") + 9);
        tr.last = number(s, s.indexOf("\"offset\":") + 9);
      }
    }
  }

  /**
   * A client of a comparison server. {@code ws}: the server took it into its rooms when it
   * upgraded; every message is {@code {"room":…,"event":…,"payload":…}}. Socket.IO (Engine.IO v4):
   * the server opens with {@code 0{…}}, the client connects the default namespace with {@code 40}
   * and is in its rooms once the server answers {@code 40{…}}; events arrive as
   * {@code 42["event",{"room":…,"payload":…}]}; the server's ping {@code 2} is answered with {@code 3}.
   * Nothing here carries an offset: each room's events are counted.
   */
  private final class NodeHandler extends ConnHandler {
    private final List<String> rooms;
    private final boolean socketIo;

    NodeHandler(Conn conn, List<String> rooms, boolean socketIo) {
      super(conn);
      this.rooms = rooms;
      this.socketIo = socketIo;
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) throws Exception {
      if (evt == WebSocketClientProtocolHandler.ClientHandshakeStateEvent.HANDSHAKE_COMPLETE && !socketIo) joined("upgraded");
      super.userEventTriggered(ctx, evt);
    }

    @Override
    protected void channelRead0(ChannelHandlerContext ctx, WebSocketFrame frame) {
      if (!(frame instanceof TextWebSocketFrame t)) return;
      String s = t.text();
      if (!socketIo || s.startsWith("42")) onEvent(s);
      else if (s.equals("2")) ctx.writeAndFlush(new TextWebSocketFrame("3"));
      else if (s.startsWith("0")) ctx.writeAndFlush(new TextWebSocketFrame("40"));
      else if (s.startsWith("40")) joined(s);
      else if (s.startsWith("44")) conn.connected.completeExceptionally(new IllegalStateException("refused: " + s));
      else if (s.startsWith("41") || s.equals("1")) disconnects.increment();
    }

    private void joined(String s) {
      synchronized (conn) {
        for (String room : rooms) conn.track(room).epoch = "joined";
      }
      conn.connected.complete(s);
    }

    private void onEvent(String s) {
      int r = s.indexOf("\"room\":\"");
      if (r < 0) return;
      String room = string(s, r + 8);
      timed(s);
      synchronized (conn) {
        conn.track(room).count++;
      }
    }
  }

  static long number(String s, int from) {
    long v = 0;
    boolean neg = false;
    int i = from;
    if (i < s.length() && s.charAt(i) == '-') {
      neg = true;
      i++;
    }
    for (; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c < '0' || c > '9') break;
      v = v * 10 + (c - '0');
    }
    return neg ? -v : v;
  }

  static String string(String s, int from) {
    return s.substring(from, s.indexOf('"', from));
  }

  @Override
  public void close() {
    group.shutdownGracefully(0, 2, java.util.concurrent.TimeUnit.SECONDS).syncUninterruptibly();
  }
}
