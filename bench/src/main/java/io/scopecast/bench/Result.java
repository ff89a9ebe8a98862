package io.scopecast.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.Map;
import org.HdrHistogram.Histogram;

/** The figures of one run: printed as one JSON line (appended to the results file) and a human summary. */
final class Result {
  static final ObjectMapper JSON = new ObjectMapper();

  final ObjectNode json = JSON.createObjectNode();

  Result(String workload, Options o) {
    json.put("workload", workload);
    json.put("label", o.string("label", workload));
    json.put("target", Target.of(o).id);
    if (o.has("comparison")) json.put("comparison", o.string("comparison", ""));
    json.put("at", Instant.now().toString());
    json.put("redis", o.flag("redis"));
    ObjectNode params = json.putObject("params");
    for (Map.Entry<String, String> e : o.all().entrySet()) params.put(e.getKey(), e.getValue());
    json.put("machine_cpus", machineCpus());
    json.put("machine", machine());
  }

  /** CPUs of the machine (not of this process, which may be pinned). */
  static int machineCpus() {
    try {
      return (int) Files.readAllLines(Path.of("/proc/cpuinfo")).stream().filter(l -> l.startsWith("processor")).count();
    } catch (IOException e) {
      return Runtime.getRuntime().availableProcessors();
    }
  }

  static String machine() {
    try {
      String model = Files.readAllLines(Path.of("/proc/cpuinfo")).stream().filter(l -> l.startsWith("model name"))
          .findFirst().map(l -> l.substring(l.indexOf(':') + 1).trim()).orElse("?");
      return model + ", " + machineCpus() + " CPUs, Java " + System.getProperty("java.version");
    } catch (IOException e) {
      return "?";
    }
  }

  Result put(String key, double value) {
    json.put(key, Math.round(value * 1000) / 1000.0);
    return this;
  }

  Result put(String key, long value) {
    json.put(key, value);
    return this;
  }

  Result put(String key, String value) {
    json.put(key, value);
    return this;
  }

  /** Latency percentiles in milliseconds from a histogram of microseconds. */
  Result latency(String key, Histogram us) {
    ObjectNode l = json.putObject(key);
    l.put("count", us.getTotalCount());
    for (double p : new double[] {50, 90, 99, 99.9}) {
      String name = "p" + (p == 99.9 ? "999" : Integer.toString((int) p));
      l.put(name, Math.round(us.getValueAtPercentile(p) / 10.0) / 100.0);
    }
    l.put("max", Math.round(us.getMaxValue() / 10.0) / 100.0);
    l.put("mean", Math.round(us.getMean() / 10.0) / 100.0);
    return this;
  }

  /** Prints the JSON line (and appends it to {@code out}) and the summary; returns this result. */
  Result emit(Path out) {
    String line;
    try {
      line = JSON.writeValueAsString(json);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    System.out.println(line);
    if (out != null) {
      try {
        if (out.getParent() != null) Files.createDirectories(out.getParent());
        Files.writeString(out, line + "\n", StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    System.out.println(summary());
    return this;
  }

  String summary() {
    StringBuilder b = new StringBuilder("== ").append(json.get("label").asText()).append(" (").append(json.get("workload").asText())
        .append(", ").append(Target.of(json.get("target").asText()).title)
        .append(json.get("redis").asBoolean() ? ", redis" : "").append(")\n");
    json.fields().forEachRemaining(e -> {
      if (e.getKey().equals("params") || e.getKey().equals("workload") || e.getKey().equals("label") || e.getKey().equals("at")
          || e.getKey().equals("target")) return;
      b.append(String.format("  %-34s %s%n", e.getKey(), e.getValue()));
    });
    return b.toString();
  }
}
