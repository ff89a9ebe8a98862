package io.scopecast.app.testing;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** The packaged {@code app/target/scopecast.jar} run as a process, with its output captured. */
public final class JarProcess implements AutoCloseable {
  public static final Path JAR = Path.of("target", "scopecast.jar");

  public final Process process;
  public final int httpPort;
  public final int clusterPort;
  private final StringBuffer out = new StringBuffer();
  private volatile boolean outputEnded;

  private JarProcess(Process process, int httpPort, int clusterPort) {
    this.process = process;
    this.httpPort = httpPort;
    this.clusterPort = clusterPort;
    Thread t = new Thread(() -> {
      try (BufferedReader r = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
        String line;
        while ((line = r.readLine()) != null) {
          synchronized (out) {
            out.append(line).append('\n');
            out.notifyAll();
          }
        }
      } catch (IOException ignored) {
        // the process ended
      }
      synchronized (out) {
        outputEnded = true;
        out.notifyAll();
      }
    }, "jar-output");
    t.setDaemon(true);
    t.start();
  }

  /** Starts the jar with {@code env} (SCOPECAST_* variables) on free loopback ports. */
  public static JarProcess start(Map<String, String> env, String... args) {
    if (!Files.exists(JAR)) throw new IllegalStateException(JAR.toAbsolutePath() + " is missing: run mvn package first");
    int http = TestNode.freePort();
    int cluster = TestNode.freePort();
    List<String> cmd = new ArrayList<>(List.of(javaBin(), "-Xmx256m", "-jar", JAR.toString()));
    cmd.addAll(List.of(args));
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
    pb.environment().keySet().removeIf(k -> k.startsWith("SCOPECAST_") || k.equals("JAVA_TOOL_OPTIONS"));
    pb.environment().put("SCOPECAST_HOST", "127.0.0.1");
    pb.environment().put("SCOPECAST_PORT", Integer.toString(http));
    pb.environment().put("SCOPECAST_CLUSTER_HOST", "127.0.0.1");
    pb.environment().put("SCOPECAST_CLUSTER_PORT", Integer.toString(cluster));
    pb.environment().putAll(env);
    try {
      return new JarProcess(pb.start(), http, cluster);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static String javaBin() {
    return Path.of(System.getProperty("java.home"), "bin", "java").toString();
  }

  public String output() {
    return out.toString();
  }

  /** Waits for a line of output matching {@code regex}; returns its first group (or the whole match). */
  public String awaitOutput(String regex, Duration within) {
    Pattern p = Pattern.compile(regex);
    long deadline = System.nanoTime() + within.toNanos();
    synchronized (out) {
      while (true) {
        Matcher m = p.matcher(out);
        if (m.find()) return m.groupCount() > 0 ? m.group(1) : m.group();
        long left = deadline - System.nanoTime();
        if (left <= 0) throw new AssertionError("no output matching " + regex + " within " + within + ":\n" + out);
        if (outputEnded) throw new AssertionError("the jar exited without printing " + regex + ":\n" + out);
        try {
          out.wait(Math.max(1, Math.min(TimeUnit.NANOSECONDS.toMillis(left), 1000)));
        } catch (InterruptedException e) {
          throw new AssertionError(e);
        }
      }
    }
  }

  public URI ws(String query) {
    return URI.create("ws://127.0.0.1:" + httpPort + "/ws" + (query.isEmpty() ? "" : "?" + query));
  }

  /** SIGTERM, then the exit code (waits at most {@code within}). */
  public int terminate(Duration within) {
    process.destroy();
    try {
      if (!process.waitFor(within.toMillis(), TimeUnit.MILLISECONDS)) {
        process.destroyForcibly();
        throw new AssertionError("did not exit within " + within + " of SIGTERM:\n" + output());
      }
      return process.exitValue();
    } catch (InterruptedException e) {
      throw new AssertionError(e);
    }
  }

  @Override
  public void close() {
    if (process.isAlive()) process.destroyForcibly();
  }
}
