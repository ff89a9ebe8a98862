package io.scopecast.actors.protocol;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.io.IOException;
import java.io.StringWriter;
import java.io.UncheckedIOException;

/** The one Jackson mapper for wire JSON (client frames, server frames, the HTTP API). */
public final class Json {
  private Json() {}

  public static final ObjectMapper MAPPER = JsonMapper.builder(
          JsonFactory.builder()
              .streamReadConstraints(StreamReadConstraints.builder().maxNestingDepth(256).build())
              .build())
      .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
      .build();

  /** Parses one JSON value; throws {@link JsonProcessingException} on anything else. */
  public static JsonNode parse(String text) throws JsonProcessingException {
    JsonNode node = MAPPER.readTree(text);
    if (node == null || node.isMissingNode()) throw new JsonParseFailure("empty document");
    return node;
  }

  /** Compact JSON text of a value (payloads are stored and sent in this form). */
  public static String write(JsonNode node) {
    try {
      return MAPPER.writeValueAsString(node);
    } catch (JsonProcessingException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Writes one object with a generator; the lambda writes the fields. */
  public static String object(FieldWriter fields) {
    StringWriter out = new StringWriter(128);
    try (JsonGenerator g = MAPPER.getFactory().createGenerator(out)) {
      g.writeStartObject();
      fields.write(g);
      g.writeEndObject();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return out.toString();
  }

  @FunctionalInterface
  public interface FieldWriter {
    void write(JsonGenerator g) throws IOException;
  }

  static final class JsonParseFailure extends JsonProcessingException {
    JsonParseFailure(String msg) {
      super(msg);
    }
  }
}
