package io.scopecast.actors.testing;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;

/**
 * A real {@code redis-server} on a free loopback port, started and stopped by a test. Tests that
 * need it call {@link #requireInstalled()}: without {@code redis-server} they are skipped, and say
 * so (scripts/setup.sh installs it).
 */
public final class RedisServer implements AutoCloseable {
  private final int port;
  private final Path dir;
  private Process process;

  private RedisServer(int port, Path dir) {
    this.port = port;
    this.dir = dir;
  }

  public static boolean installed() {
    try {
      Process p = new ProcessBuilder("redis-server", "--version").redirectErrorStream(true).start();
      p.getInputStream().readAllBytes();
      return p.waitFor(10, TimeUnit.SECONDS) && p.exitValue() == 0;
    } catch (IOException e) {
      return false;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    }
  }

  public static void requireInstalled() {
    boolean ok = installed();
    if (!ok) System.err.println("SKIPPED: redis-server is not installed, so the Redis tests do not run (scripts/setup.sh installs it)");
    Assumptions.assumeTrue(ok, "redis-server is not installed (scripts/setup.sh installs it with apt-get)");
  }

  public static RedisServer start() {
    int port;
    try (ServerSocket s = new ServerSocket(0)) {
      port = s.getLocalPort();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    try {
      RedisServer r = new RedisServer(port, Files.createTempDirectory("scopecast-redis"));
      r.restart();
      return r;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  public String url() {
    return "redis://127.0.0.1:" + port;
  }

  public int port() {
    return port;
  }

  /** Starts (again, on the same port) and waits until it accepts connections. */
  public void restart() {
    try {
      process = new ProcessBuilder("redis-server", "--port", Integer.toString(port), "--bind", "127.0.0.1",
          "--save", "", "--appendonly", "no", "--dir", dir.toString(), "--protected-mode", "no")
          .redirectErrorStream(true).start();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    CompletableFuture<Void> ready = new CompletableFuture<>();
    Process p = process;
    Thread reader = new Thread(() -> {
      try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
        String line;
        while ((line = r.readLine()) != null) {
          if (line.contains("Ready to accept connections")) ready.complete(null);
        }
      } catch (IOException ignored) {
        // stopped
      }
      ready.completeExceptionally(new IllegalStateException("redis-server exited during start"));
    }, "redis-server-output");
    reader.setDaemon(true);
    reader.start();
    ready.orTimeout(20, TimeUnit.SECONDS).join();
  }

  /** Kills it (SIGKILL): an outage, not a shutdown. */
  public void kill() {
    if (process == null) return;
    process.destroyForcibly();
    try {
      process.waitFor(10, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    process = null;
  }

  /** Freezes it (SIGSTOP): connections stay open and nothing answers, like a hung server. */
  public void pause() {
    signal("STOP");
  }

  /** Thaws a {@link #pause()}d server (SIGCONT). */
  public void resume() {
    signal("CONT");
  }

  private void signal(String name) {
    if (process == null) throw new IllegalStateException("redis-server is not running");
    try {
      Process kill = new ProcessBuilder("kill", "-" + name, Long.toString(process.pid())).inheritIO().start();
      if (!kill.waitFor(10, TimeUnit.SECONDS) || kill.exitValue() != 0) {
        throw new IllegalStateException("kill -" + name + " failed");
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  @Override
  public void close() {
    if (process != null) signal("CONT");
    kill();
  }
}
