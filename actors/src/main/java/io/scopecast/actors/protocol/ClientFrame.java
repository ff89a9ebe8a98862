package io.scopecast.actors.protocol;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;

/**
 * A frame from a client (§4), decoded and validated. {@code id} is the client's own id (any JSON
 * value, echoed as given) or {@code null}.
 */
public sealed interface ClientFrame {
  JsonNode id();

  /** {@code connect}: token, workspace and resume entries as given. */
  record Connect(JsonNode id, String token, String workspace, List<ResumeEntry> resume) implements ClientFrame {}

  /** One entry of {@code connect.resume}: either a usable scope and position, or the error it gets. */
  record ResumeEntry(String scopeText, ScopeId scope, Position since, ProtocolError error) {}

  record Subscribe(JsonNode id, ScopeId scope, Position since, String token) implements ClientFrame {}

  record Unsubscribe(JsonNode id, ScopeId scope) implements ClientFrame {}

  /** A client event (§7): an ephemeral event for the scope's other connections. */
  record Publish(JsonNode id, ScopeId scope, String event, String payloadJson) implements ClientFrame {}

  record PresenceQuery(JsonNode id, ScopeId scope) implements ClientFrame {}

  record Status(JsonNode id, String status, String text) implements ClientFrame {}

  record Ping(JsonNode id) implements ClientFrame {}

  record Pong(JsonNode id) implements ClientFrame {}

  /** A frame refused while decoding; answered with an {@code error} frame. */
  record Refused(JsonNode id, ProtocolError error) implements ClientFrame {}

  /** A {@code connect} frame whose shape is a protocol violation (4400), e.g. resume not an object. */
  record MalformedConnect(JsonNode id, String reason) implements ClientFrame {}
}
