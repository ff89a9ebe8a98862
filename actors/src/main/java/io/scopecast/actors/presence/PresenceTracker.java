package io.scopecast.actors.presence;

import io.scopecast.actors.protocol.ServerFrames;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Who is present in one scope (§6): users with at least one subscribed connection, how many, and
 * their status. Changes are not announced one by one: {@link #flush()} compares what the scope's
 * connections were last told with the current members and yields one frame per user whose
 * visible state changed since (a join and a leave within one batch cancel out; several updates
 * become one). Above {@code maxDetailed} members a flush yields a single count frame instead, so
 * big scopes do not pay for an N² storm of per-user frames.
 *
 * @param <C> what identifies the connection that caused a change (it does not get that frame)
 */
public final class PresenceTracker<C> {

  /** A frame to send to the scope's connections except {@code except} (null: everyone). */
  /** {@code leave}: a presence.leave, which a send buffer never sheds (§13.21). */
  public record Announcement<C>(String frame, C except, boolean leave) {}

  private static final class Member {
    int connections;
    String status;
    String text;

    Member(String status, String text) {
      this.status = status;
      this.text = text;
    }
  }

  private record Seen(String status, String text) {}

  private final String scope;
  private final int maxDetailed;
  private final Map<String, Member> members = new HashMap<>();
  private final Map<String, Seen> announced = new HashMap<>();
  private final Map<String, C> changed = new LinkedHashMap<>();

  public PresenceTracker(String scope, int maxDetailed) {
    this.scope = scope;
    this.maxDetailed = maxDetailed;
  }

  /** A connection of {@code user} subscribed; true when the user was not present before. */
  public boolean connectionAdded(String user, C cause, String status, String text) {
    Member m = members.get(user);
    if (m == null) {
      m = new Member(status == null ? "online" : status, text == null ? "" : text);
      members.put(user, m);
    }
    m.connections++;
    if (m.connections == 1) changed.put(user, cause);
    return m.connections == 1;
  }

  /** A connection of {@code user} left; true when it was the user's last one. */
  public boolean connectionRemoved(String user, C cause) {
    Member m = members.get(user);
    if (m == null) return false;
    if (--m.connections > 0) return false;
    members.remove(user);
    changed.put(user, cause);
    return true;
  }

  /** The user's status changed; false when it is not present or nothing changed. */
  public boolean statusChanged(String user, C cause, String status, String text) {
    Member m = members.get(user);
    if (m == null || (m.status.equals(status) && m.text.equals(text))) return false;
    m.status = status;
    m.text = text;
    changed.put(user, cause);
    return true;
  }

  public boolean hasChanges() {
    return !changed.isEmpty();
  }

  /** What to announce since the last flush. */
  public List<Announcement<C>> flush() {
    List<Announcement<C>> out = new ArrayList<>();
    if (changed.isEmpty()) return out;
    int joined = 0;
    int left = 0;
    for (Map.Entry<String, C> e : changed.entrySet()) {
      String user = e.getKey();
      Member now = members.get(user);
      Seen before = announced.get(user);
      String frame = null;
      boolean leave = false;
      if (now != null && before == null) {
        joined++;
        frame = ServerFrames.presenceChange("presence.join", scope, user, now.status, now.text);
      } else if (now == null && before != null) {
        left++;
        frame = ServerFrames.presenceChange("presence.leave", scope, user, null, null);
        leave = true;
      } else if (now != null && (!now.status.equals(before.status()) || !now.text.equals(before.text()))) {
        frame = ServerFrames.presenceChange("presence.update", scope, user, now.status, now.text);
      }
      if (now == null) announced.remove(user);
      else announced.put(user, new Seen(now.status, now.text));
      if (frame != null && members.size() <= maxDetailed) out.add(new Announcement<>(frame, e.getValue(), leave));
    }
    changed.clear();
    if (members.size() > maxDetailed && (joined > 0 || left > 0)) {
      out.add(new Announcement<>(ServerFrames.presenceCount(scope, members.size(), joined, left), null, false));
    }
    return out;
  }

  public List<ServerFrames.Member> members() {
    List<ServerFrames.Member> out = new ArrayList<>(members.size());
    members.forEach((user, m) -> out.add(new ServerFrames.Member(user, m.connections, m.status, m.text)));
    out.sort((a, b) -> a.user().compareTo(b.user()));
    return out;
  }

  public int size() {
    return members.size();
  }
}
