package io.scopecast.bench;

import java.net.URI;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The server a run measures: Scopecast itself, or one of the comparison servers of
 * {@code bench/servers/} (Socket.IO 4, bare {@code ws}) run with {@code node}. Rooms of the
 * comparison servers are named like Scopecast's scopes ({@code workspace:bench}, {@code user:s1}),
 * so a workload publishes to and counts the same names on every target.
 */
enum Target {
  SCOPECAST("scopecast", "Scopecast", null),
  SOCKETIO("socketio", "Socket.IO", "socket.io"),
  WS("ws", "ws", "ws");

  final String id;
  final String title;
  /** The npm package the comparison server is built on (its version goes into the results). */
  final String npmPackage;

  Target(String id, String title, String npmPackage) {
    this.id = id;
    this.title = title;
    this.npmPackage = npmPackage;
  }

  static Target of(String id) {
    for (Target t : values()) if (t.id.equals(id.trim())) return t;
    throw new IllegalArgumentException("unknown target " + id + " (scopecast, socketio or ws)");
  }

  /** {@code scopecast,socketio,ws} → the targets, in that order. */
  static List<Target> list(String csv) {
    List<Target> out = new ArrayList<>();
    for (String id : csv.split(",")) if (!id.isBlank()) out.add(of(id));
    return out;
  }

  static Target of(Options o) {
    return of(o.string("target", SCOPECAST.id));
  }

  boolean isNode() {
    return this != SCOPECAST;
  }

  String publishPath() {
    return this == SCOPECAST ? "/api/publish" : "/publish";
  }

  /** The body of one publish; {@code payload} is JSON. */
  String publishBody(String scope, String event, String payload) {
    String field = this == SCOPECAST ? "scope" : "room";
    return "{\"" + field + "\":\"" + scope + "\",\"event\":\"" + event + "\",\"payload\":" + payload + "}";
  }

  /** The WebSocket address of a comparison server for a client joining {@code rooms} in its handshake. */
  URI nodeUri(String base, List<String> rooms) {
    String ws = base.replaceFirst("^http", "ws");
    String query = "rooms=" + URLEncoder.encode(String.join(",", rooms), StandardCharsets.UTF_8);
    return URI.create(this == SOCKETIO ? ws + "/socket.io/?EIO=4&transport=websocket&" + query : ws + "/?" + query);
  }

  /**
   * What one client sends to join: the WebSocket address, Scopecast's connect frame (null for the
   * comparison servers) and the rooms a comparison server puts it in from the handshake query.
   */
  record Hello(URI uri, String frame, List<String> rooms) {
    static Hello scopecast(URI uri, String frame) {
      return new Hello(uri, frame, List.of());
    }

    /** A comparison server's client in its user room and, unless null, a workspace's room, as on Scopecast. */
    static Hello node(Target t, String base, String user, String workspace) {
      List<String> rooms = workspace == null ? List.of("user:" + user) : Arrays.asList("user:" + user, "workspace:" + workspace);
      return new Hello(t.nodeUri(base, rooms), null, rooms);
    }
  }
}
