package io.scopecast.actors.presence;

import io.scopecast.actors.protocol.ServerFrames;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Who is present in one scope (§6) and what its connections have been told (§13.19). Changes are
 * collected until {@link #flush()}, which yields the frames for everything that happened since,
 * per user in order: a leave for a user the connections were told about whose last connection
 * went (even if the user came back within the batch, which then is a leave and a join), a join
 * carrying the current status, or one update for several status changes. A user who joined and
 * left within one batch was never announced and is left out. Above {@code maxDetailed} members a
 * flush yields a single count frame instead, so big scopes do not pay for an N² storm of per-user
 * frames.
 *
 * <p>A {@code presence} reply must agree with the frames: the owner flushes before it answers
 * with {@link #members()}, so a user in a reply was announced, and a later leave is owed.
 *
 * @param <C> what identifies a connection: the one that caused a change does not get its frame
 */
public final class PresenceTracker<C> {

  /**
   * A frame to send to the scope's connections except {@code except} (null: everyone);
   * {@code leave}: a presence.leave, which a send buffer never sheds (§13.21).
   */
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

  /** What happened to one user since the last flush, and who caused it. */
  private static final class Change<C> {
    boolean left;
    C joinedBy;
    C leftBy;
    C statusBy;
  }

  private final String scope;
  private final int maxDetailed;
  private final Map<String, Member> members = new HashMap<>();
  /** What the connections were told, as of the last flush. */
  private final Map<String, Seen> announced = new HashMap<>();
  private final Map<String, Change<C>> changes = new LinkedHashMap<>();

  public PresenceTracker(String scope, int maxDetailed) {
    this.scope = scope;
    this.maxDetailed = maxDetailed;
  }

  /** A connection of {@code user} subscribed; true when the user was not present before. */
  public boolean connectionAdded(String user, C conn, String status, String text) {
    Member m = members.get(user);
    if (m == null) {
      m = new Member(status == null ? "online" : status, text == null ? "" : text);
      members.put(user, m);
    }
    if (++m.connections > 1) return false;
    change(user).joinedBy = conn;
    return true;
  }

  /** A connection of {@code user} left; true when it was the user's last one. */
  public boolean connectionRemoved(String user, C conn) {
    Member m = members.get(user);
    if (m == null || --m.connections > 0) return false;
    members.remove(user);
    Change<C> c = change(user);
    c.left = true;
    c.leftBy = conn;
    return true;
  }

  /** The user's status changed through {@code origin}'s status frame; false when absent or unchanged. */
  public boolean statusChanged(String user, C origin, String status, String text) {
    Member m = members.get(user);
    if (m == null || (m.status.equals(status) && m.text.equals(text))) return false;
    m.status = status;
    m.text = text;
    change(user).statusBy = origin;
    return true;
  }

  private Change<C> change(String user) {
    return changes.computeIfAbsent(user, u -> new Change<>());
  }

  public boolean hasChanges() {
    return !changes.isEmpty();
  }

  /** The frames for every change since the last flush; afterwards the connections know the members as they are. */
  public List<Announcement<C>> flush() {
    List<Announcement<C>> out = new ArrayList<>();
    if (changes.isEmpty()) return out;
    boolean detailed = members.size() <= maxDetailed;
    int joined = 0;
    int left = 0;
    for (Map.Entry<String, Change<C>> e : changes.entrySet()) {
      String user = e.getKey();
      Change<C> c = e.getValue();
      Member now = members.get(user);
      Seen before = announced.get(user);
      if (before != null && (now == null || c.left)) {
        left++;
        if (detailed) out.add(new Announcement<>(ServerFrames.presenceChange("presence.leave", scope, user, null, null), c.leftBy, true));
        before = null;
      }
      if (now == null) {
        announced.remove(user);
        continue;
      }
      if (before == null) {
        joined++;
        if (detailed) out.add(new Announcement<>(ServerFrames.presenceChange("presence.join", scope, user, now.status, now.text), c.joinedBy, false));
      } else if (!now.status.equals(before.status()) || !now.text.equals(before.text())) {
        if (detailed) out.add(new Announcement<>(ServerFrames.presenceChange("presence.update", scope, user, now.status, now.text), c.statusBy, false));
      }
      announced.put(user, new Seen(now.status, now.text));
    }
    changes.clear();
    if (!detailed && (joined > 0 || left > 0)) {
      out.add(new Announcement<>(ServerFrames.presenceCount(scope, members.size(), joined, left), null, false));
    }
    return out;
  }

  /** The members as they are now (flush first, so that they agree with what was announced). */
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
