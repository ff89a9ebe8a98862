package io.scopecast.app;

import com.typesafe.config.ConfigFactory;
import io.scopecast.actors.auth.TokenMinter;
import io.scopecast.actors.protocol.ScopeId;
import java.io.PrintStream;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;

/** {@code gentoken}: prints a connection (or subscription) token signed with the configured HS256 secret. */
final class GenToken {
  private GenToken() {}

  static int run(List<String> args, PrintStream out, PrintStream err) {
    String user = null;
    String scope = null;
    List<String> workspaces = List.of();
    Duration ttl = Duration.ofHours(24);
    try {
      for (int i = 0; i < args.size(); i++) {
        String a = args.get(i);
        String v = i + 1 < args.size() ? args.get(i + 1) : null;
        switch (a) {
          case "--user" -> user = required(a, v);
          case "--workspaces", "--workspace" -> workspaces =
              Arrays.stream(required(a, v).split(",")).map(String::trim).filter(s -> !s.isEmpty()).toList();
          case "--scope" -> scope = required(a, v);
          case "--ttl" -> ttl = ConfigFactory.parseString("d = " + required(a, v)).getDuration("d");
          default -> throw new IllegalArgumentException("unknown option " + a);
        }
        i++;
      }
      if (user == null || !ScopeId.isValidId(user)) throw new IllegalArgumentException("--user must be a user id");
      if (scope != null && ScopeId.parseOrNull(scope) == null) throw new IllegalArgumentException("--scope must be TYPE:ID");
      String secret = NodeConfig.load().settings().auth().jwtSecret();
      TokenMinter minter = new TokenMinter(secret);
      out.println(scope == null ? minter.userToken(user, workspaces, ttl) : minter.scopeToken(user, scope, ttl));
      return 0;
    } catch (IllegalArgumentException e) {
      err.println("gentoken: " + e.getMessage());
      err.println("usage: gentoken --user U [--workspaces 1,2] [--scope TYPE:ID] [--ttl 24h]");
      return 2;
    }
  }

  private static String required(String option, String value) {
    if (value == null) throw new IllegalArgumentException(option + " needs a value");
    return value;
  }
}
