package io.scopecast.actors.scope;

import io.scopecast.actors.NodeFanout;
import io.scopecast.actors.connection.ConnectionActor;
import java.util.HashMap;
import java.util.Map;
import org.apache.pekko.actor.typed.ActorRef;

/**
 * A scope's subscribed connections, on every node, and the nodes they are on: whatever the
 * number of subscribers, a message for all of them costs one message per node ({@link #broadcast}).
 */
public final class Subscribers {

  public record Subscriber(String user, ActorRef<NodeFanout.Command> fanout) {}

  private final Map<ActorRef<ConnectionActor.Command>, Subscriber> connections = new HashMap<>();
  /** Nodes with subscribers: their fanout and how many subscribers are there. */
  private final Map<ActorRef<NodeFanout.Command>, Integer> nodes = new HashMap<>();

  /** @return true when {@code conn} was not subscribed yet */
  public boolean add(ActorRef<ConnectionActor.Command> conn, String user, ActorRef<NodeFanout.Command> fanout) {
    Subscriber before = connections.put(conn, new Subscriber(user, fanout));
    if (before != null) {
      if (!before.fanout().equals(fanout)) {
        nodes.computeIfPresent(before.fanout(), (k, n) -> n > 1 ? n - 1 : null);
        nodes.merge(fanout, 1, Integer::sum);
      }
      return false;
    }
    nodes.merge(fanout, 1, Integer::sum);
    return true;
  }

  /** @return the subscriber that was removed, or null */
  public Subscriber remove(ActorRef<ConnectionActor.Command> conn) {
    Subscriber s = connections.remove(conn);
    if (s != null) nodes.computeIfPresent(s.fanout(), (k, n) -> n > 1 ? n - 1 : null);
    return s;
  }

  public Subscriber get(ActorRef<ConnectionActor.Command> conn) {
    return connections.get(conn);
  }

  public boolean contains(ActorRef<ConnectionActor.Command> conn) {
    return connections.containsKey(conn);
  }

  public int size() {
    return connections.size();
  }

  public boolean isEmpty() {
    return connections.isEmpty();
  }

  /** One message to every node with subscribers. */
  public void broadcast(NodeFanout.Remote message) {
    for (ActorRef<NodeFanout.Command> node : nodes.keySet()) node.tell(message);
  }
}
