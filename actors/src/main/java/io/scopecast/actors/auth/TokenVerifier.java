package io.scopecast.actors.auth;

import com.auth0.jwt.JWT;
import com.auth0.jwt.JWTVerifier;
import com.auth0.jwt.algorithms.Algorithm;
import com.auth0.jwt.exceptions.JWTVerificationException;
import com.auth0.jwt.interfaces.Claim;
import com.auth0.jwt.interfaces.DecodedJWT;
import io.scopecast.actors.protocol.ScopeId;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.interfaces.RSAPublicKey;
import java.security.spec.X509EncodedKeySpec;
import java.time.Duration;
import java.util.Base64;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Verifies JWTs (§9) with java-jwt: HS256 with the shared secret, RS256 with the public key. The
 * token's {@code alg} selects the key; an {@code alg} without a configured key (and {@code none})
 * is invalid. {@code exp} is required and allows at most the configured clock skew.
 */
public final class TokenVerifier {
  private static final long MAX_SKEW_SECONDS = 30;

  private final JWTVerifier hs256;
  private final JWTVerifier rs256;

  public TokenVerifier(String hmacSecret, String rsaPublicKey, Duration clockSkew) {
    long skew = Math.min(MAX_SKEW_SECONDS, Math.max(0, clockSkew.toSeconds()));
    this.hs256 = hmacSecret == null || hmacSecret.isEmpty() ? null
        : JWT.require(Algorithm.HMAC256(hmacSecret)).acceptLeeway(skew).withClaimPresence("exp").build();
    this.rs256 = rsaPublicKey == null || rsaPublicKey.isBlank() ? null
        : JWT.require(Algorithm.RSA256(parseRsaPublicKey(rsaPublicKey), null)).acceptLeeway(skew)
            .withClaimPresence("exp").build();
  }

  /** A connection token: {@code sub} (a valid user id), {@code exp}, optional {@code workspaces}. */
  public UserClaims verifyUser(String token) throws InvalidTokenException {
    DecodedJWT jwt = verify(token);
    String sub = jwt.getSubject();
    if (!ScopeId.isValidId(sub)) throw new InvalidTokenException("sub must be a user id of [A-Za-z0-9_.-]{1,128}");
    return new UserClaims(sub, workspaces(jwt.getClaim("workspaces")));
  }

  /** True when {@code token} is a valid subscription token of {@code user} for exactly {@code scope}. */
  public boolean grantsScope(String token, String user, ScopeId scope) {
    try {
      DecodedJWT jwt = verify(token);
      return user.equals(jwt.getSubject()) && scope.toString().equals(jwt.getClaim("scope").asString());
    } catch (InvalidTokenException e) {
      return false;
    }
  }

  private DecodedJWT verify(String token) throws InvalidTokenException {
    if (token == null || token.isEmpty() || token.length() > 8192) throw new InvalidTokenException("no token");
    try {
      String alg = JWT.decode(token).getAlgorithm();
      JWTVerifier verifier = "HS256".equals(alg) ? hs256 : "RS256".equals(alg) ? rs256 : null;
      if (verifier == null) throw new InvalidTokenException("no key for alg " + alg);
      return verifier.verify(token);
    } catch (JWTVerificationException e) {
      throw new InvalidTokenException(e.getClass().getSimpleName());
    }
  }

  /** Workspace ids compare as strings; numbers in the claim are accepted (§13.5). */
  private static Set<String> workspaces(Claim claim) throws InvalidTokenException {
    if (claim == null || claim.isMissing() || claim.isNull()) return Set.of();
    List<Object> raw = claim.asList(Object.class);
    if (raw == null) throw new InvalidTokenException("workspaces must be an array");
    Set<String> out = new HashSet<>();
    for (Object o : raw) {
      if (o instanceof String s) out.add(s);
      else if (o instanceof Number n) out.add(new BigDecimal(n.toString()).stripTrailingZeros().toPlainString());
    }
    return out;
  }

  /** PEM text ({@code -----BEGIN PUBLIC KEY-----}) or a path to a PEM file. */
  static RSAPublicKey parseRsaPublicKey(String pemOrPath) {
    try {
      String pem = pemOrPath.contains("-----BEGIN") ? pemOrPath
          : Files.readString(Path.of(pemOrPath.trim()), StandardCharsets.US_ASCII);
      String base64 = pem.replaceAll("-----[A-Z ]+-----", "").replaceAll("\\s", "");
      byte[] der = Base64.getDecoder().decode(base64);
      return (RSAPublicKey) KeyFactory.getInstance("RSA").generatePublic(new X509EncodedKeySpec(der));
    } catch (Exception e) {
      throw new IllegalArgumentException("scopecast.auth.jwt-public-key is not an RSA public key in PEM form: " + e.getMessage(), e);
    }
  }
}
