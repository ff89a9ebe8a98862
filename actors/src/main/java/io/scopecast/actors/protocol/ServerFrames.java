package io.scopecast.actors.protocol;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.util.Collection;

/** Encoders for the frames of §3. Each returns the frame's JSON text. */
public final class ServerFrames {
  private ServerFrames() {}

  /** One entry of {@code connected.scopes}; a pending one (§13.18) has only the scope. */
  public record ScopeEntry(String scope, String epoch, long offset, boolean recovered) {
    public static ScopeEntry pending(String scope) {
      return new ScopeEntry(scope, null, 0, false);
    }

    public boolean isPending() {
      return epoch == null;
    }
  }

  /** One presence member (§6). */
  public record Member(String user, int connections, String status, String text) {}

  public static final String PING = "{\"type\":\"ping\"}";

  public static String connected(String conn, String user, String node, long intervalMs, long timeoutMs,
      Collection<ScopeEntry> scopes) {
    return Json.object(g -> {
      g.writeStringField("type", "connected");
      g.writeStringField("conn", conn);
      g.writeStringField("user", user);
      g.writeStringField("node", node);
      g.writeObjectFieldStart("heartbeat");
      g.writeNumberField("interval_ms", intervalMs);
      g.writeNumberField("timeout_ms", timeoutMs);
      g.writeEndObject();
      g.writeArrayFieldStart("scopes");
      for (ScopeEntry e : scopes) {
        g.writeStartObject();
        g.writeStringField("scope", e.scope());
        if (e.isPending()) {
          g.writeBooleanField("pending", true);
        } else {
          g.writeStringField("epoch", e.epoch());
          g.writeNumberField("offset", e.offset());
          g.writeBooleanField("recovered", e.recovered());
        }
        g.writeEndObject();
      }
      g.writeEndArray();
    });
  }

  /** A durable event; {@code payloadJson} is written verbatim. Encoded once per event. */
  public static String event(String scope, long offset, String event, String payloadJson, long ts) {
    return Json.object(g -> {
      g.writeStringField("type", "event");
      g.writeStringField("scope", scope);
      g.writeNumberField("offset", offset);
      g.writeStringField("event", event);
      g.writeFieldName("payload");
      g.writeRawValue(payloadJson);
      g.writeNumberField("ts", ts);
    });
  }

  /** An ephemeral client event (§7): no offset, with the sender. */
  public static String ephemeral(String scope, String event, String payloadJson, long ts, String from) {
    return Json.object(g -> {
      g.writeStringField("type", "event");
      g.writeStringField("scope", scope);
      g.writeStringField("event", event);
      g.writeFieldName("payload");
      g.writeRawValue(payloadJson);
      g.writeNumberField("ts", ts);
      g.writeStringField("from", from);
    });
  }

  public static String subscribed(JsonNode id, String scope, String epoch, long offset, boolean recovered) {
    return Json.object(g -> {
      g.writeStringField("type", "subscribed");
      writeId(g, id);
      g.writeStringField("scope", scope);
      g.writeStringField("epoch", epoch);
      g.writeNumberField("offset", offset);
      g.writeBooleanField("recovered", recovered);
    });
  }

  /** §13.18: the owner has not answered yet; an unsolicited {@code subscribed} follows when it does. */
  public static String subscribedPending(JsonNode id, String scope) {
    return Json.object(g -> {
      g.writeStringField("type", "subscribed");
      writeId(g, id);
      g.writeStringField("scope", scope);
      g.writeBooleanField("pending", true);
    });
  }

  public static String unsubscribed(JsonNode id, String scope) {
    return Json.object(g -> {
      g.writeStringField("type", "unsubscribed");
      writeId(g, id);
      g.writeStringField("scope", scope);
    });
  }

  public static String resync(String scope, String epoch, long offset, String reason) {
    return Json.object(g -> {
      g.writeStringField("type", "resync");
      g.writeStringField("scope", scope);
      g.writeStringField("epoch", epoch);
      g.writeNumberField("offset", offset);
      g.writeStringField("reason", reason);
    });
  }

  public static String ack(JsonNode id) {
    return Json.object(g -> {
      g.writeStringField("type", "ack");
      writeId(g, id);
    });
  }

  public static String pong(JsonNode id) {
    return Json.object(g -> {
      g.writeStringField("type", "pong");
      writeId(g, id);
    });
  }

  public static String error(JsonNode id, ProtocolError error) {
    return error(id, error, null);
  }

  /** An error frame; {@code scope} is set for refused {@code resume} entries (§13.3). */
  public static String error(JsonNode id, ProtocolError error, String scope) {
    return Json.object(g -> {
      g.writeStringField("type", "error");
      writeId(g, id);
      g.writeStringField("code", error.code().wire());
      g.writeStringField("message", error.message());
      if (scope != null) g.writeStringField("scope", scope);
    });
  }

  public static String disconnect(int code, String reason, boolean reconnect) {
    return Json.object(g -> {
      g.writeStringField("type", "disconnect");
      g.writeNumberField("code", code);
      g.writeStringField("reason", reason);
      g.writeBooleanField("reconnect", reconnect);
    });
  }

  public static String presence(JsonNode id, String scope, Collection<Member> members) {
    return Json.object(g -> {
      g.writeStringField("type", "presence");
      writeId(g, id);
      g.writeStringField("scope", scope);
      g.writeArrayFieldStart("members");
      for (Member m : members) writeMember(g, m);
      g.writeEndArray();
    });
  }

  public static void writeMember(JsonGenerator g, Member m) throws IOException {
    g.writeStartObject();
    g.writeStringField("user", m.user());
    g.writeNumberField("connections", m.connections());
    g.writeStringField("status", m.status());
    g.writeStringField("text", m.text());
    g.writeEndObject();
  }

  /** presence.join / presence.update ({@code status, text}) or presence.leave (status null). */
  public static String presenceChange(String type, String scope, String user, String status, String text) {
    return Json.object(g -> {
      g.writeStringField("type", type);
      g.writeStringField("scope", scope);
      g.writeStringField("user", user);
      if (status != null) {
        g.writeStringField("status", status);
        g.writeStringField("text", text);
      }
    });
  }

  /** The count-only presence frame large scopes send instead of per-user frames. */
  public static String presenceCount(String scope, int members, int joined, int left) {
    return Json.object(g -> {
      g.writeStringField("type", "presence.count");
      g.writeStringField("scope", scope);
      g.writeNumberField("members", members);
      g.writeNumberField("joined", joined);
      g.writeNumberField("left", left);
    });
  }

  private static void writeId(JsonGenerator g, JsonNode id) throws IOException {
    if (id != null) {
      g.writeFieldName("id");
      g.writeTree(id);
    }
  }
}
