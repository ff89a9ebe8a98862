package io.scopecast.app;

import io.scopecast.actors.auth.TokenMinter;
import io.scopecast.actors.settings.ScopecastSettings;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import org.apache.pekko.Done;
import org.apache.pekko.actor.CoordinatedShutdown;
import org.apache.pekko.actor.typed.ActorSystem;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The command line: {@code serve} (the default) starts a node; {@code gentoken --user U
 * [--workspaces 1,2] [--scope task:9] [--ttl 3600s]} prints a token signed with the configured secret.
 */
public final class Main {
  private static final Logger log = LoggerFactory.getLogger(Main.class);

  private Main() {}

  public static void main(String[] args) {
    String command = args.length == 0 ? "serve" : args[0];
    switch (command) {
      case "serve" -> serve();
      case "gentoken" -> System.exit(GenToken.run(List.of(args).subList(1, args.length), System.out, System.err));
      case "help", "--help", "-h" -> usage();
      default -> {
        System.err.println("unknown command " + command);
        usage();
        System.exit(2);
      }
    }
  }

  private static void usage() {
    System.out.println("""
        usage: java -jar scopecast.jar [serve]
               java -jar scopecast.jar gentoken --user U [--workspaces 1,2] [--scope TYPE:ID] [--ttl 24h]
        Configuration: HOCON keys under scopecast { } as -D system properties, and the SCOPECAST_* environment
        variables (docs/configuration.md).""");
  }

  static void serve() {
    NodeConfig node = NodeConfig.load();
    ScopecastSettings settings = withGeneratedCredentials(node.settings());
    ActorSystem<Guardian.Command> system = ActorSystem.create(
        Guardian.create(settings, () -> new Thread(() -> System.exit(3)).start()), NodeConfig.SYSTEM_NAME, node.config());
    exitCleanlyOnSigterm(system);
    CoordinatedShutdown.get(system).addTask(CoordinatedShutdown.PhaseBeforeServiceUnbind(), "scopecast-watchdog", () -> {
      startWatchdog(system, settings.shutdownTimeout());
      return CompletableFuture.completedFuture(Done.getInstance());
    });
  }

  /** The process exits within scopecast.shutdown-timeout of the start of a shutdown, whatever happens. */
  private static void startWatchdog(ActorSystem<?> system, Duration timeout) {
    Thread t = new Thread(() -> {
      try {
        system.getWhenTerminated().toCompletableFuture().get(timeout.toMillis(), TimeUnit.MILLISECONDS);
      } catch (TimeoutException e) {
        log.warn("shutdown took longer than {}; halting", timeout);
        Runtime.getRuntime().halt(1);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      } catch (ExecutionException e) {
        // terminated with a failure: the JVM exits on its own
      }
    }, "scopecast-shutdown-watchdog");
    t.setDaemon(true);
    t.start();
  }

  /** The reason a node stops on SIGTERM. */
  private enum Sigterm implements CoordinatedShutdown.Reason { INSTANCE }

  /**
   * SIGTERM runs the coordinated shutdown (close clients with 1001, hand off shards, leave the
   * cluster) and then exits with status 0, instead of the JVM's 143 for a signal.
   */
  private static void exitCleanlyOnSigterm(ActorSystem<?> system) {
    try {
      sun.misc.Signal.handle(new sun.misc.Signal("TERM"), sig -> CoordinatedShutdown.get(system).run(Sigterm.INSTANCE));
    } catch (IllegalArgumentException e) {
      log.debug("SIGTERM cannot be handled here; the JVM shutdown hook runs the shutdown instead");
    }
  }

  /**
   * A newcomer's first start needs no configuration: a missing JWT secret and API key are generated
   * and printed together with a sample token (only then: configured secrets are never logged).
   */
  static ScopecastSettings withGeneratedCredentials(ScopecastSettings s) {
    ScopecastSettings.Auth a = s.auth();
    boolean noKeys = a.jwtSecret().isEmpty() && a.jwtPublicKey().isBlank();
    String secret = noKeys ? randomSecret() : a.jwtSecret();
    String apiKey = a.apiKey().isEmpty() ? randomSecret() : a.apiKey();
    List<String> lines = new ArrayList<>();
    if (noKeys) {
      String token = new TokenMinter(secret).userToken("demo", List.of("1"), Duration.ofHours(24));
      lines.add("No JWT secret configured: generated one for this run.");
      lines.add("  SCOPECAST_JWT_SECRET=" + secret);
      lines.add("  sample token (user demo, workspace 1, valid 24 h): " + token);
    }
    if (a.apiKey().isEmpty()) {
      lines.add("No API key configured: generated one for this run.");
      lines.add("  SCOPECAST_API_KEY=" + apiKey);
    }
    if (!lines.isEmpty()) log.info("\n{}", String.join("\n", lines));
    return s.withAuth(new ScopecastSettings.Auth(secret, a.jwtPublicKey(), apiKey, a.clockSkew(), a.hookUrl(), a.hook()));
  }

  private static String randomSecret() {
    byte[] b = new byte[32];
    new SecureRandom().nextBytes(b);
    return Base64.getUrlEncoder().withoutPadding().encodeToString(b);
  }
}
