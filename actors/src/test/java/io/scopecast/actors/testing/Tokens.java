package io.scopecast.actors.testing;

import com.auth0.jwt.JWT;
import com.auth0.jwt.algorithms.Algorithm;
import java.time.Duration;
import java.time.Instant;
import java.util.List;

/** HS256 tokens signed with {@link TestSettings#SECRET} (or another secret). */
public final class Tokens {
  private Tokens() {}

  public static String user(String user, String... workspaces) {
    return user(TestSettings.SECRET, user, Instant.now().plus(Duration.ofHours(1)), workspaces);
  }

  public static String user(String secret, String user, Instant exp, String... workspaces) {
    var b = JWT.create().withSubject(user).withExpiresAt(exp);
    if (workspaces.length > 0) b.withClaim("workspaces", List.of(workspaces));
    return b.sign(Algorithm.HMAC256(secret));
  }

  public static String scope(String user, String scope) {
    return JWT.create().withSubject(user).withClaim("scope", scope)
        .withExpiresAt(Instant.now().plus(Duration.ofHours(1))).sign(Algorithm.HMAC256(TestSettings.SECRET));
  }
}
