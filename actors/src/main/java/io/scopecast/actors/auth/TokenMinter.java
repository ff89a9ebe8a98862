package io.scopecast.actors.auth;

import com.auth0.jwt.JWT;
import com.auth0.jwt.JWTCreator;
import com.auth0.jwt.algorithms.Algorithm;
import java.time.Duration;
import java.time.Instant;
import java.util.List;

/** Signs HS256 tokens with the configured secret: connection tokens and subscription tokens (§9). */
public final class TokenMinter {
  private final Algorithm hs256;

  public TokenMinter(String secret) {
    if (secret == null || secret.isEmpty()) {
      throw new IllegalArgumentException("no HS256 secret configured (scopecast.auth.jwt-secret / SCOPECAST_JWT_SECRET)");
    }
    this.hs256 = Algorithm.HMAC256(secret);
  }

  /** A connection token for {@code user}, granting {@code workspaces}. */
  public String userToken(String user, List<String> workspaces, Duration ttl) {
    JWTCreator.Builder b = JWT.create().withSubject(user).withIssuedAt(Instant.now()).withExpiresAt(Instant.now().plus(ttl));
    if (!workspaces.isEmpty()) b.withClaim("workspaces", workspaces);
    return b.sign(hs256);
  }

  /** A subscription token granting {@code user} exactly {@code scope}. */
  public String scopeToken(String user, String scope, Duration ttl) {
    return JWT.create().withSubject(user).withClaim("scope", scope).withIssuedAt(Instant.now())
        .withExpiresAt(Instant.now().plus(ttl)).sign(hs256);
  }
}
