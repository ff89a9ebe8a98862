package io.scopecast.actors.protocol;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParseException;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.exc.StreamConstraintsException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectReader;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * A JSON object whose {@code payload} is kept as its own text (§13.23): the object is read with a
 * streaming parser, its other fields become a small tree, and the payload is checked token by
 * token and cut out of the input unchanged. Its numbers are never converted (any length, any
 * form), its key order and escapes stay; it is refused only for invalid UTF-8, a lone surrogate
 * or nesting deeper than {@link #MAX_DEPTH}, with a message that says which.
 */
public final class RawJson {
  private RawJson() {}

  /** How deep any JSON we read may nest (the whole document, payload included). */
  public static final int MAX_DEPTH = 256;

  /** A payload's numbers are not parsed, so their length is bounded only by the input's. */
  private static final JsonFactory FACTORY = JsonFactory.builder()
      .streamReadConstraints(StreamReadConstraints.builder()
          .maxNestingDepth(MAX_DEPTH)
          .maxNumberLength(Integer.MAX_VALUE)
          .build())
      .build();

  /** Reads one value where the parser is, leaving it at the value's last token. */
  private static final ObjectReader TREE = Json.MAPPER.readerFor(JsonNode.class)
      .without(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

  /**
   * The object's fields but {@code payload}, and the payload's text (null when there is none). At
   * the top level an {@code items} array is read the same way, item by item ({@link #items}: null
   * when there is no such array; an item that is not an object is null in it).
   */
  public record Parsed(ObjectNode fields, String payload, List<Parsed> items) {
    public Parsed(ObjectNode fields, String payload) {
      this(fields, payload, null);
    }

    /** The payload's text, or {@code null} (the JSON literal) when the object has none. */
    public String payloadOrNull() {
      return payload == null ? "null" : payload;
    }
  }

  /** The input is JSON, but its payload cannot travel verbatim; the fields read before it are kept (to echo an id). */
  public static final class PayloadRefused extends JsonProcessingException {
    private final transient ObjectNode fieldsBefore;

    PayloadRefused(String message, ObjectNode fieldsBefore) {
      super(message);
      this.fieldsBefore = fieldsBefore;
    }

    public ObjectNode fieldsBefore() {
      return fieldsBefore;
    }
  }

  /** The input is one JSON value, but not an object. */
  public static final class NotAnObject extends JsonProcessingException {
    NotAnObject() {
      super("not a JSON object");
    }
  }

  /** Reads one JSON object from UTF-8 bytes. */
  public static Parsed object(byte[] utf8) throws JsonProcessingException {
    try (JsonParser p = FACTORY.createParser(utf8)) {
      return read(p, (from, to) -> new String(utf8, (int) from, (int) (to - from), StandardCharsets.UTF_8), true);
    } catch (JsonProcessingException e) {
      throw e;
    } catch (IOException e) {
      throw new UncheckedIOException(e); // no I/O on an array
    }
  }

  /** Reads one JSON object from text. */
  public static Parsed object(String text) throws JsonProcessingException {
    try (JsonParser p = FACTORY.createParser(text)) {
      return read(p, (from, to) -> text.substring((int) from, (int) to), false);
    } catch (JsonProcessingException e) {
      throw e;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private interface Slicer {
    String slice(long from, long to);
  }

  private static Parsed read(JsonParser p, Slicer input, boolean bytes) throws IOException {
    JsonToken first = p.nextToken();
    if (first == null) throw new JsonParseException(p, "empty document");
    if (first != JsonToken.START_OBJECT) {
      p.skipChildren();
      if (p.nextToken() != null) throw new JsonParseException(p, "trailing content after the value");
      throw new NotAnObject();
    }
    Parsed parsed = readObject(p, input, bytes, true);
    if (p.nextToken() != null) throw new JsonParseException(p, "trailing content after the object");
    return parsed;
  }

  /** The object the parser is at (its START_OBJECT), to its END_OBJECT. */
  private static Parsed readObject(JsonParser p, Slicer input, boolean bytes, boolean top) throws IOException {
    ObjectNode fields = JsonNodeFactory.instance.objectNode();
    String payload = null;
    List<Parsed> items = null;
    JsonToken t = p.nextToken();
    while (t == JsonToken.FIELD_NAME) {
      String name = p.currentName();
      JsonToken value = p.nextToken();
      if (name.equals("payload")) {
        long from = offset(p.currentTokenLocation(), bytes);
        walk(p, fields);
        t = p.nextToken(); // the next field or the object's end: the payload's text ends before it
        payload = trimEnd(input.slice(from, offset(p.currentTokenLocation(), bytes)));
        continue;
      }
      if (top && name.equals("items") && value == JsonToken.START_ARRAY) {
        items = new ArrayList<>();
        for (JsonToken e = p.nextToken(); e != JsonToken.END_ARRAY; e = p.nextToken()) {
          if (e == JsonToken.START_OBJECT) {
            items.add(readObject(p, input, bytes, false));
          } else {
            p.skipChildren();
            items.add(null);
          }
        }
      } else {
        fields.set(name, TREE.<JsonNode>readValue(p));
      }
      t = p.nextToken();
    }
    if (t != JsonToken.END_OBJECT) throw new JsonParseException(p, "unexpected " + t);
    return new Parsed(fields, payload, items);
  }

  /** Goes through the value the parser is at, to its last token, checking its strings and depth. */
  private static void walk(JsonParser p, ObjectNode fieldsBefore) throws IOException {
    int depth = 0;
    try {
      for (JsonToken t = p.currentToken(); t != null; t = p.nextToken()) {
        switch (t) {
          case START_OBJECT, START_ARRAY -> depth++;
          case END_OBJECT, END_ARRAY -> depth--;
          case FIELD_NAME, VALUE_STRING -> {
            if (hasLoneSurrogate(p.getTextCharacters(), p.getTextOffset(), p.getTextLength())) throw loneSurrogate(fieldsBefore);
          }
          default -> { }
        }
        if (depth == 0) return;
      }
    } catch (StreamConstraintsException e) {
      throw new PayloadRefused("payload is nested deeper than " + MAX_DEPTH, fieldsBefore);
    } catch (JsonParseException e) {
      String why = e.getOriginalMessage() == null ? "" : e.getOriginalMessage();
      if (why.startsWith("Invalid UTF-8")) throw new PayloadRefused("payload is not valid UTF-8", fieldsBefore);
      if (why.contains("surrogate")) throw loneSurrogate(fieldsBefore); // the parser's own check, in field names
      throw e;
    }
  }

  private static PayloadRefused loneSurrogate(ObjectNode fieldsBefore) {
    return new PayloadRefused("payload has a string with a lone surrogate (an unpaired \\ud800-\\udfff)", fieldsBefore);
  }

  static boolean hasLoneSurrogate(char[] text, int offset, int length) {
    for (int i = offset, end = offset + length; i < end; i++) {
      char c = text[i];
      if (Character.isHighSurrogate(c)) {
        if (i + 1 >= end || !Character.isLowSurrogate(text[i + 1])) return true;
        i++;
      } else if (Character.isLowSurrogate(c)) {
        return true;
      }
    }
    return false;
  }

  private static long offset(JsonLocation at, boolean bytes) {
    return bytes ? at.getByteOffset() : at.getCharOffset();
  }

  /** The value's text without the whitespace and the comma that separate it from what follows. */
  private static String trimEnd(String s) {
    int end = s.length();
    while (end > 0 && isJsonSpace(s.charAt(end - 1))) end--;
    if (end > 0 && s.charAt(end - 1) == ',') end--;
    while (end > 0 && isJsonSpace(s.charAt(end - 1))) end--;
    return s.substring(0, end);
  }

  private static boolean isJsonSpace(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
  }
}
