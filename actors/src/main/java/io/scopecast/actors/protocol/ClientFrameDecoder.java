package io.scopecast.actors.protocol;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Predicate;

/**
 * Decodes client text frames (§4) into {@link ClientFrame}s. Every structural problem becomes a
 * {@link ClientFrame.Refused} with the code §13.1 and §13.17 prescribe; nothing here throws.
 */
public final class ClientFrameDecoder {
  private static final Set<String> STATUSES = Set.of("online", "away", "busy");
  public static final int MAX_STATUS_TEXT = 128;

  private final Predicate<String> knownType;

  public ClientFrameDecoder(Predicate<String> knownType) {
    this.knownType = knownType;
  }

  public ClientFrame decode(String text) {
    RawJson.Parsed parsed;
    try {
      parsed = RawJson.object(text);
    } catch (RawJson.PayloadRefused e) {
      return new ClientFrame.Refused(idOf(e.fieldsBefore()), ProtocolError.badRequest(e.getOriginalMessage()));
    } catch (RawJson.NotAnObject e) {
      return new ClientFrame.Refused(null, ProtocolError.badRequest("a frame must be a JSON object"));
    } catch (JsonProcessingException e) {
      return new ClientFrame.Refused(null, ProtocolError.badRequest("frame is not valid JSON"));
    }
    JsonNode root = parsed.fields();
    JsonNode id = idOf(root);
    JsonNode type = root.get("type");
    if (type == null || !type.isTextual()) {
      return new ClientFrame.Refused(id, ProtocolError.badRequest("frame needs a string 'type'"));
    }
    return switch (type.asText()) {
      case "connect" -> connect(id, root);
      case "subscribe" -> subscribe(id, root);
      case "unsubscribe" -> unsubscribe(id, root);
      case "publish" -> publish(id, root, parsed.payloadOrNull());
      case "presence" -> presence(id, root);
      case "status" -> status(id, root);
      case "ping" -> new ClientFrame.Ping(id);
      case "pong" -> new ClientFrame.Pong(id);
      default -> new ClientFrame.Refused(id, ProtocolError.badRequest("unknown frame type '" + shorten(type.asText()) + "'"));
    };
  }

  private ClientFrame connect(JsonNode id, JsonNode root) {
    JsonNode token = root.get("token");
    if (token != null && !token.isNull() && !token.isTextual()) {
      return new ClientFrame.MalformedConnect(id, "connect.token must be a string");
    }
    JsonNode ws = root.get("workspace");
    String workspace = null;
    if (ws != null && !ws.isNull()) {
      if (!(ws.isTextual() || ws.isIntegralNumber()) || !ScopeId.isValidId(ws.asText())) {
        return new ClientFrame.MalformedConnect(id, "connect.workspace must be a workspace id");
      }
      workspace = ws.asText();
    }
    JsonNode resume = root.get("resume");
    List<ClientFrame.ResumeEntry> entries = new ArrayList<>();
    if (resume != null && !resume.isNull()) {
      if (!resume.isObject()) return new ClientFrame.MalformedConnect(id, "connect.resume must be an object");
      for (Iterator<Map.Entry<String, JsonNode>> it = resume.fields(); it.hasNext(); ) {
        Map.Entry<String, JsonNode> e = it.next();
        entries.add(resumeEntry(e.getKey(), e.getValue()));
      }
    }
    return new ClientFrame.Connect(id, token == null || token.isNull() ? null : token.asText(), workspace, List.copyOf(entries));
  }

  private ClientFrame.ResumeEntry resumeEntry(String scopeText, JsonNode position) {
    Position since;
    try {
      since = position(position);
    } catch (IllegalArgumentException e) {
      return new ClientFrame.ResumeEntry(scopeText, null, null, ProtocolError.badRequest(e.getMessage()));
    }
    ScopeNames.Checked checked = ScopeNames.check(scopeText, knownType);
    if (!checked.ok()) return new ClientFrame.ResumeEntry(scopeText, null, null, checked.error());
    return new ClientFrame.ResumeEntry(scopeText, checked.scope(), since, null);
  }

  private ClientFrame subscribe(JsonNode id, JsonNode root) {
    JsonNode scopeField = root.get("scope");
    if (scopeField == null || !scopeField.isTextual()) {
      return new ClientFrame.Refused(id, ProtocolError.badRequest("subscribe needs a string 'scope'"));
    }
    Position since = null;
    JsonNode sinceField = root.get("since");
    if (sinceField != null && !sinceField.isNull()) {
      try {
        since = position(sinceField);
      } catch (IllegalArgumentException e) {
        return new ClientFrame.Refused(id, ProtocolError.badRequest(e.getMessage()));
      }
    }
    JsonNode token = root.get("token");
    if (token != null && !token.isNull() && !token.isTextual()) {
      return new ClientFrame.Refused(id, ProtocolError.badRequest("token must be a string"));
    }
    ScopeNames.Checked checked = ScopeNames.check(scopeField, knownType);
    if (!checked.ok()) return new ClientFrame.Refused(id, checked.error());
    return new ClientFrame.Subscribe(id, checked.scope(), since, token == null || token.isNull() ? null : token.asText());
  }

  private ClientFrame unsubscribe(JsonNode id, JsonNode root) {
    ScopeNames.Checked checked = ScopeNames.check(root.get("scope"), knownType);
    if (!checked.ok()) return new ClientFrame.Refused(id, checked.error());
    return new ClientFrame.Unsubscribe(id, checked.scope());
  }

  private static JsonNode idOf(JsonNode fields) {
    JsonNode id = fields.get("id");
    return id == null || id.isNull() ? null : id;
  }

  /** @param payload the payload's own text (§13.23) */
  private ClientFrame publish(JsonNode id, JsonNode root, String payload) {
    JsonNode scopeField = root.get("scope");
    if (scopeField == null || !scopeField.isTextual()) {
      return new ClientFrame.Refused(id, ProtocolError.badRequest("publish needs a string 'scope'"));
    }
    JsonNode event = root.get("event");
    if (event == null || !event.isTextual() || !EventNames.isValid(event.asText())) {
      return new ClientFrame.Refused(id, ProtocolError.badRequest("event must be 1..64 characters of [A-Za-z0-9_.:-]"));
    }
    ScopeNames.Checked checked = ScopeNames.check(scopeField, knownType);
    if (!checked.ok()) return new ClientFrame.Refused(id, checked.error());
    return new ClientFrame.Publish(id, checked.scope(), event.asText(), payload);
  }

  private ClientFrame presence(JsonNode id, JsonNode root) {
    ScopeNames.Checked checked = ScopeNames.check(root.get("scope"), knownType);
    if (!checked.ok()) return new ClientFrame.Refused(id, checked.error());
    return new ClientFrame.PresenceQuery(id, checked.scope());
  }

  private ClientFrame status(JsonNode id, JsonNode root) {
    JsonNode status = root.get("status");
    if (status == null || !status.isTextual() || !STATUSES.contains(status.asText())) {
      return new ClientFrame.Refused(id, ProtocolError.badRequest("status must be one of online, away, busy"));
    }
    JsonNode text = root.get("text");
    String t = "";
    if (text != null && !text.isNull()) {
      if (!text.isTextual()) return new ClientFrame.Refused(id, ProtocolError.badRequest("text must be a string"));
      t = text.asText();
      if (t.codePointCount(0, t.length()) > MAX_STATUS_TEXT) {
        return new ClientFrame.Refused(id, ProtocolError.badRequest("text is limited to " + MAX_STATUS_TEXT + " characters"));
      }
    }
    return new ClientFrame.Status(id, status.asText(), t);
  }

  /** {@code {epoch: string, offset: integer >= 0}}; anything else is an IllegalArgumentException. */
  static Position position(JsonNode node) {
    if (node == null || !node.isObject()) throw new IllegalArgumentException("a position is {\"epoch\", \"offset\"}");
    JsonNode epoch = node.get("epoch");
    JsonNode offset = node.get("offset");
    if (epoch == null || !epoch.isTextual() || epoch.asText().isEmpty() || epoch.asText().length() > 64) {
      throw new IllegalArgumentException("position.epoch must be a non-empty string");
    }
    if (offset == null || !offset.isIntegralNumber() || !offset.canConvertToLong() || offset.asLong() < 0) {
      throw new IllegalArgumentException("position.offset must be an integer >= 0");
    }
    return new Position(epoch.asText(), offset.asLong());
  }

  private static String shorten(String s) {
    return s.length() > 32 ? s.substring(0, 32) + "…" : s;
  }
}
