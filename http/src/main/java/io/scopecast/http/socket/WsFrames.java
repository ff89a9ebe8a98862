package io.scopecast.http.socket;

import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.apache.pekko.util.ByteString;
import org.apache.pekko.util.ByteStringBuilder;

/**
 * RFC 6455 framing for the server side of a socket, without threads or streams (issue 22): a
 * {@link Decoder} turns the bytes a client sends into messages, enforcing every duty of the RFC
 * (masking, fragmentation, control frames between fragments, the size limit decided from the
 * header before the payload is buffered, UTF-8 validated incrementally), and {@link #frame}
 * renders the unmasked frames a server sends. Not wired yet: the socket's stage will use it.
 */
public final class WsFrames {
  private WsFrames() {}

  public static final int TEXT = 0x1;
  public static final int BINARY = 0x2;
  public static final int CLOSE = 0x8;
  public static final int PING = 0x9;
  public static final int PONG = 0xA;
  private static final int CONTINUATION = 0x0;

  /** What the client's bytes amount to. */
  public sealed interface Event {}

  /** A complete text message, valid UTF-8. */
  public record Text(String text) implements Event {}

  /** A complete binary message (its size only: the protocol has no use for its bytes). */
  public record Binary(int size) implements Event {}

  public record Ping(ByteString payload) implements Event {}

  public record Pong(ByteString payload) implements Event {}

  /** The client's close frame: its code (1005 when it has none) and reason. */
  public record Close(int code, String reason) implements Event {}

  /** The client broke the protocol: close with {@code code} (1002, 1007 or 1009) and stop reading. */
  public record Violation(int code, String reason) implements Event {}

  /** A server frame: FIN set, unmasked, the payload after the header. Rendered once, shared by every socket. */
  public static ByteString frame(int opcode, ByteString payload) {
    int n = payload.size();
    ByteStringBuilder b = new ByteStringBuilder();
    b.putByte((byte) (0x80 | opcode));
    if (n < 126) {
      b.putByte((byte) n);
    } else if (n <= 0xFFFF) {
      b.putByte((byte) 126);
      b.putByte((byte) (n >>> 8));
      b.putByte((byte) n);
    } else {
      b.putByte((byte) 127);
      for (int shift = 56; shift >= 0; shift -= 8) b.putByte((byte) ((long) n >>> shift));
    }
    return b.result().concat(payload);
  }

  public static ByteString text(String json) {
    return frame(TEXT, ByteString.fromString(json, StandardCharsets.UTF_8));
  }

  /** A close frame with {@code code} and a reason (cut to fit the 125 bytes of a control frame). */
  public static ByteString close(int code, String reason) {
    byte[] r = reason.getBytes(StandardCharsets.UTF_8);
    int len = Math.min(r.length, 123);
    while (len > 0 && len < r.length && (r[len] & 0xC0) == 0x80) len--; // not inside a character
    ByteStringBuilder b = new ByteStringBuilder();
    b.putByte((byte) (code >>> 8));
    b.putByte((byte) code);
    b.putBytes(r, 0, len);
    return frame(CLOSE, b.result());
  }

  /** Decodes one client's bytes, chunk by chunk; after a {@link Violation} or a {@link Close} it ignores the rest. */
  public static final class Decoder {
    private final long maxMessageBytes;
    private ByteString pending = ByteString.emptyByteString();
    private boolean done;
    // the message being assembled from fragments
    private int messageOpcode = -1;
    private long messageBytes;
    private final CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder()
        .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
    private final StringBuilder textSoFar = new StringBuilder();
    private ByteBuffer utf8Carry = ByteBuffer.allocate(0);

    /** @param maxMessageBytes the largest message a client may send, counted across its fragments */
    public Decoder(long maxMessageBytes) {
      this.maxMessageBytes = maxMessageBytes;
    }

    /** The events these bytes complete, in order. */
    public List<Event> feed(ByteString bytes) {
      List<Event> out = new ArrayList<>(1);
      if (done) return out;
      pending = pending.concat(bytes);
      while (!done) {
        Event e = next();
        if (e == null) break;
        if (e != NOTHING) out.add(e);
      }
      return out;
    }

    private static final Event NOTHING = new Binary(-1);

    /** One frame from {@link #pending}, or null when more bytes are needed. */
    private Event next() {
      if (pending.size() < 2) return null;
      int b0 = pending.apply(0) & 0xFF;
      int b1 = pending.apply(1) & 0xFF;
      boolean fin = (b0 & 0x80) != 0;
      int opcode = b0 & 0x0F;
      boolean masked = (b1 & 0x80) != 0;
      int len7 = b1 & 0x7F;
      int headerBytes = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4;
      if ((b0 & 0x70) != 0) return violation(1002, "reserved bits set without an extension");
      if (!masked) return violation(1002, "client frames must be masked");
      boolean control = (opcode & 0x08) != 0;
      if (opcode != CONTINUATION && opcode != TEXT && opcode != BINARY && opcode != CLOSE && opcode != PING && opcode != PONG) {
        return violation(1002, "unknown opcode " + opcode);
      }
      if (control && (!fin || len7 > 125)) return violation(1002, "a control frame must be whole and at most 125 bytes");
      long length = len7;
      if (len7 == 126) {
        if (pending.size() < 4) return null;
        length = ((pending.apply(2) & 0xFF) << 8) | (pending.apply(3) & 0xFF);
      } else if (len7 == 127) {
        if (pending.size() < 10) return null;
        length = 0;
        for (int i = 2; i < 10; i++) length = (length << 8) | (pending.apply(i) & 0xFF);
        if (length < 0) return violation(1002, "a frame length must fit 63 bits");
      }
      // the size decision is made from the header, before any of the payload is kept
      if (!control && (opcode != CONTINUATION ? 0 : messageBytes) + length > maxMessageBytes) {
        return violation(1009, "message larger than " + maxMessageBytes + " bytes");
      }
      if (!control && opcode == CONTINUATION && messageOpcode < 0) return violation(1002, "a continuation without a message");
      if (!control && opcode != CONTINUATION && messageOpcode >= 0) return violation(1002, "a new message before the last one ended");
      if (pending.size() < headerBytes + length) return null;
      byte[] mask = pending.slice(headerBytes - 4, headerBytes).toArray();
      byte[] payload = pending.slice(headerBytes, (int) (headerBytes + length)).toArray();
      for (int i = 0; i < payload.length; i++) payload[i] ^= mask[i & 3];
      pending = pending.drop((int) (headerBytes + length));
      if (control) return controlFrame(opcode, payload);
      return dataFrame(opcode, fin, payload);
    }

    private Event controlFrame(int opcode, byte[] payload) {
      ByteString p = ByteString.fromArrayUnsafe(payload);
      if (opcode == PING) return new Ping(p);
      if (opcode == PONG) return new Pong(p);
      done = true;
      if (payload.length == 0) return new Close(1005, "");
      if (payload.length == 1) return violation(1002, "a close frame's code takes two bytes");
      int code = ((payload[0] & 0xFF) << 8) | (payload[1] & 0xFF);
      String reason;
      try {
        reason = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
            .decode(ByteBuffer.wrap(payload, 2, payload.length - 2)).toString();
      } catch (CharacterCodingException e) {
        return violation(1007, "a close reason must be UTF-8");
      }
      return new Close(code, reason);
    }

    private Event dataFrame(int opcode, boolean fin, byte[] payload) {
      if (opcode != CONTINUATION) {
        messageOpcode = opcode;
        messageBytes = 0;
        utf8.reset();
        textSoFar.setLength(0);
        utf8Carry = ByteBuffer.allocate(0);
      }
      messageBytes += payload.length;
      if (messageOpcode == TEXT) {
        // UTF-8 checked as it arrives: a bad sequence fails here, not after the whole message
        ByteBuffer in = ByteBuffer.allocate(utf8Carry.remaining() + payload.length);
        in.put(utf8Carry).put(payload).flip();
        CharBuffer chars = CharBuffer.allocate(in.remaining() + 1);
        CoderResult r = utf8.decode(in, chars, fin);
        if (r.isError()) return violation(1007, "a text message must be UTF-8");
        if (fin) {
          r = utf8.flush(chars);
          if (r.isError() || in.hasRemaining()) return violation(1007, "a text message must be UTF-8");
        }
        chars.flip();
        textSoFar.append(chars);
        utf8Carry = in.slice();
      }
      if (!fin) return NOTHING;
      int type = messageOpcode;
      messageOpcode = -1;
      if (type == TEXT) {
        String text = textSoFar.toString();
        textSoFar.setLength(0);
        return new Text(text);
      }
      return new Binary((int) messageBytes);
    }

    private Event violation(int code, String reason) {
      done = true;
      return new Violation(code, reason);
    }
  }
}
