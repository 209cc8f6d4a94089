package dev.hyperdial.examples;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import dev.hyperdial.v1.AddTrialMeasurementResponse;
import dev.hyperdial.v1.Algorithm;
import dev.hyperdial.v1.CategoricalDomain;
import dev.hyperdial.v1.EarlyStoppingPolicy;
import dev.hyperdial.v1.FloatDomain;
import dev.hyperdial.v1.Goal;
import dev.hyperdial.v1.IntDomain;
import dev.hyperdial.v1.Measurement;
import dev.hyperdial.v1.MedianStoppingRule;
import dev.hyperdial.v1.ObjectiveSpec;
import dev.hyperdial.v1.ParameterSpec;
import dev.hyperdial.v1.ParameterValue;
import dev.hyperdial.v1.Scale;
import dev.hyperdial.v1.Study;
import dev.hyperdial.v1.StudySpec;
import dev.hyperdial.v1.Trial;
import io.grpc.Status;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A hyperdial worker in Java: creates a study (or joins it), then runs {@code --threads}
 * threads on one channel, each looping ask → train → report → tell until the study is complete
 * ({@code SuggestTrials} answers OUT_OF_RANGE, reason STUDY_COMPLETE). Prints one JSON line on
 * stdout at the end: trials completed, stopped and lost, reports, heartbeats, retries and the
 * best trial.
 *
 * <p>Each trial "trains" a toy objective for {@code --steps} steps and reports the loss after
 * each one ({@code AddTrialMeasurement}); when the study's early-stopping policy answers stop,
 * the trial is STOPPED already and the thread asks for the next. While a trial runs, a timer
 * renews its lease with {@code HeartbeatTrial} every third of the study's lease, so a step
 * longer than the lease keeps its trial.
 *
 * <p>{@code --probe-invalid} sends one CreateStudy whose parameter has an empty name, and prints
 * the decoded error (code, ErrorInfo reason, domain and metadata, BadRequest fields) as JSON.
 */
public final class Worker {
  private static final String USAGE =
      "usage: Worker [--target HOST:PORT] [--study ID] [--trials N] [--threads N] [--steps N]\n"
          + "              [--step-seconds S] [--lease-timeout S] [--early-stopping none|median]\n"
          + "              [--deadline S] [--attempt-deadline S] [--verbose] [--probe-invalid]\n";

  private final HyperdialClient client;
  private final Options options;
  private final ScheduledExecutorService timers;
  private final AtomicLong completed = new AtomicLong();
  private final AtomicLong stopped = new AtomicLong();
  private final AtomicLong lost = new AtomicLong();
  private final AtomicLong reports = new AtomicLong();
  private final AtomicLong heartbeats = new AtomicLong();
  private Trial best;
  private double bestLoss = Double.POSITIVE_INFINITY;

  private Worker(HyperdialClient client, Options options) {
    this.client = client;
    this.options = options;
    this.timers = Executors.newScheduledThreadPool(Math.max(1, options.threads));
  }

  public static void main(String[] args) throws Exception {
    Options options;
    try {
      options = Options.parse(args);
    } catch (IllegalArgumentException e) {
      System.err.print(e.getMessage() + "\n" + USAGE);
      System.exit(2);
      return;
    }
    int code;
    try (HyperdialClient client =
        new HyperdialClient(options.target, options.deadline, options.attemptDeadline,
            options.verbose)) {
      code = options.probeInvalid ? probeInvalid(client) : new Worker(client, options).run();
    } catch (HyperdialException e) {
      System.err.println("hyperdial worker: " + e.getMessage());
      code = 1;
    }
    System.exit(code);
  }

  /** The study, the loop on every thread, and the summary. */
  private int run() throws InterruptedException {
    Study study = createOrJoin();
    com.google.protobuf.Duration lease = study.getSpec().getLeaseTimeout();
    Duration leaseTimeout = Duration.ofSeconds(lease.getSeconds(), lease.getNanos());
    System.err.printf("hyperdial worker: %s on %s, lease %s, %d threads%n",
        study.getName(), options.target, leaseTimeout, options.threads);

    ExecutorService pool = Executors.newFixedThreadPool(options.threads);
    List<Future<?>> threads = new ArrayList<>();
    String host = hostName();
    for (int i = 0; i < options.threads; i++) {
      String clientId = "java-" + host + "-" + ProcessHandle.current().pid() + "-" + i;
      threads.add(pool.submit(() -> {
        loop(study.getName(), clientId, leaseTimeout);
        return null;
      }));
    }
    int code = 0;
    for (Future<?> thread : threads) {
      try {
        thread.get();
      } catch (ExecutionException e) {
        System.err.println("hyperdial worker: " + e.getCause().getMessage());
        code = 1;
      }
    }
    pool.shutdownNow();
    timers.shutdownNow();
    timers.awaitTermination(10, TimeUnit.SECONDS);

    JsonObject summary = new JsonObject();
    summary.addProperty("study", study.getName());
    summary.addProperty("threads", options.threads);
    summary.addProperty("completed", completed.get());
    summary.addProperty("stopped", stopped.get());
    summary.addProperty("lost", lost.get());
    summary.addProperty("reports", reports.get());
    summary.addProperty("heartbeats", heartbeats.get());
    summary.addProperty("retries", client.retries());
    synchronized (this) {
      if (best != null) {
        JsonObject b = new JsonObject();
        b.addProperty("name", best.getName());
        b.addProperty("loss", bestLoss);
        b.add("params", params(best));
        summary.add("best", b);
      }
    }
    System.out.println(summary);
    return code;
  }

  private Study createOrJoin() {
    StudySpec.Builder spec =
        StudySpec.newBuilder()
            .addParameters(ParameterSpec.newBuilder().setName("lr").setFloatDomain(
                FloatDomain.newBuilder().setMin(1e-4).setMax(1).setScale(Scale.SCALE_LOG)))
            .addParameters(ParameterSpec.newBuilder().setName("layers").setIntDomain(
                IntDomain.newBuilder().setMin(1).setMax(4)))
            .addParameters(ParameterSpec.newBuilder().setName("optimizer").setCategoricalDomain(
                CategoricalDomain.newBuilder().addValues("adam").addValues("sgd")))
            .addObjectives(ObjectiveSpec.newBuilder().setName("loss").setGoal(Goal.GOAL_MINIMIZE))
            .setAlgorithm(Algorithm.ALGORITHM_QUASI_RANDOM)
            .setMaxTrials(options.trials);
    if (options.leaseTimeout != null) {
      spec.setLeaseTimeout(com.google.protobuf.Duration.newBuilder()
          .setSeconds(options.leaseTimeout.getSeconds())
          .setNanos(options.leaseTimeout.getNano()));
    }
    if (options.earlyStopping.equals("median")) {
      spec.setEarlyStopping(EarlyStoppingPolicy.newBuilder()
          .setMedian(MedianStoppingRule.newBuilder().setWarmupSteps(1)));
    }
    try {
      return client.createStudy(options.study, spec.build());
    } catch (HyperdialException e) {
      if (!e.reason().equals("STUDY_ALREADY_EXISTS")) {
        throw e;
      }
      return client.getStudy("studies/" + options.study); // another worker created it: join
    }
  }

  /** One thread: ask → train → report → tell until the study is complete. */
  private void loop(String study, String clientId, Duration lease) throws InterruptedException {
    while (true) {
      List<Trial> trials;
      try {
        trials = client.suggest(study, clientId);
      } catch (HyperdialException e) {
        if (e.reason().equals("STUDY_COMPLETE")) {
          return;
        }
        throw e;
      }
      for (Trial trial : trials) {
        train(trial, lease);
      }
    }
  }

  /** Trains one trial with its lease renewed in the background; reports after every step. */
  private void train(Trial trial, Duration lease) throws InterruptedException {
    String name = trial.getName();
    AtomicBoolean gone = new AtomicBoolean();
    long period = Math.max(1, lease.toMillis() / 3);
    ScheduledFuture<?> beat = timers.scheduleAtFixedRate(() -> {
      try {
        client.heartbeat(name, Duration.ofMillis(period));
        heartbeats.incrementAndGet();
      } catch (HyperdialException e) {
        if (e.reason().equals("TRIAL_NOT_RUNNING")) {
          gone.set(true); // expired or stopped: its point is someone else's now
        } else {
          System.err.println("hyperdial worker: heartbeat: " + e.getMessage());
        }
      }
    }, period, period, TimeUnit.MILLISECONDS);
    try {
      long start = System.nanoTime();
      double loss = Double.NaN;
      for (int step = 1; step <= options.steps; step++) {
        TimeUnit.MILLISECONDS.sleep(options.stepMillis); // one step of "training"
        if (gone.get()) {
          lost.incrementAndGet();
          return;
        }
        loss = objective(trial, step);
        Measurement report = measurement(loss, step, System.nanoTime() - start);
        AddTrialMeasurementResponse answer;
        try {
          answer = client.report(name, report);
        } catch (HyperdialException e) {
          if (e.reason().equals("TRIAL_NOT_RUNNING")) {
            lost.incrementAndGet();
            return;
          }
          throw e;
        }
        reports.incrementAndGet();
        if (answer.getDecision().getShouldStop()) {
          stopped.incrementAndGet(); // STOPPED already: no CompleteTrial
          return;
        }
      }
      Trial told;
      try {
        told = client.complete(name, measurement(loss, options.steps, System.nanoTime() - start));
      } catch (HyperdialException e) {
        if (e.reason().equals("TRIAL_NOT_RUNNING")) {
          lost.incrementAndGet();
          return;
        }
        throw e;
      }
      completed.incrementAndGet();
      synchronized (this) {
        if (loss < bestLoss) {
          bestLoss = loss;
          best = told;
        }
      }
    } finally {
      beat.cancel(false);
    }
  }

  /** The toy objective: a loss that falls with the steps, lowest near lr = 10^-2.5. */
  static double objective(Trial trial, int step) {
    Map<String, ParameterValue> p = trial.getParametersMap();
    double lr = p.get("lr").getDoubleValue();
    long layers = p.get("layers").getIntValue();
    boolean sgd = p.get("optimizer").getStringValue().equals("sgd");
    double x = Math.log10(lr) + 2.5;
    return 0.2 * x * x + 0.05 * layers + (sgd ? 0.15 : 0.0) + 1.0 / step;
  }

  private static Measurement measurement(double loss, int step, long elapsedNanos) {
    return Measurement.newBuilder()
        .putValues("loss", loss)
        .setStep(step)
        .setElapsedDuration(com.google.protobuf.Duration.newBuilder()
            .setSeconds(elapsedNanos / 1_000_000_000L)
            .setNanos((int) (elapsedNanos % 1_000_000_000L)))
        .build();
  }

  private static JsonObject params(Trial trial) {
    JsonObject out = new JsonObject();
    for (Map.Entry<String, ParameterValue> e : trial.getParametersMap().entrySet()) {
      ParameterValue v = e.getValue();
      switch (v.getKindCase()) {
        case DOUBLE_VALUE -> out.addProperty(e.getKey(), v.getDoubleValue());
        case INT_VALUE -> out.addProperty(e.getKey(), v.getIntValue());
        case STRING_VALUE -> out.addProperty(e.getKey(), v.getStringValue());
        default -> { } // an inactive parameter is absent, not unset
      }
    }
    return out;
  }

  /** Sends a study spec with an empty parameter name; prints the decoded error as JSON. */
  private static int probeInvalid(HyperdialClient client) {
    StudySpec spec =
        StudySpec.newBuilder()
            .addParameters(ParameterSpec.newBuilder().setName("").setFloatDomain(
                FloatDomain.newBuilder().setMin(0).setMax(1)))
            .addObjectives(ObjectiveSpec.newBuilder().setName("loss").setGoal(Goal.GOAL_MINIMIZE))
            .build();
    try {
      Study study = client.createStudy("java-probe-" + UUID.randomUUID(), spec);
      System.err.println("hyperdial worker: the invalid spec was accepted: " + study.getName());
      return 1;
    } catch (HyperdialException e) {
      JsonObject out = new JsonObject();
      out.addProperty("probe", "CreateStudy");
      out.addProperty("code", e.code().name());
      out.addProperty("reason", e.reason());
      out.addProperty("domain", e.domain());
      JsonObject metadata = new JsonObject();
      new HashMap<>(e.metadata()).forEach(metadata::addProperty);
      out.add("metadata", metadata);
      JsonArray fields = new JsonArray();
      e.fields().forEach(fields::add);
      out.add("fields", fields);
      System.out.println(out);
      return e.code() == Status.Code.INVALID_ARGUMENT ? 0 : 1;
    }
  }

  private static String hostName() {
    try {
      return InetAddress.getLocalHost().getHostName();
    } catch (UnknownHostException e) {
      return "localhost";
    }
  }

  /** Command-line options, with the environment variables the Node.js example reads. */
  private static final class Options {
    String target = env("HYPERDIAL_TARGET", "localhost:50051");
    String study = env("HYPERDIAL_STUDY", "java-demo-" + UUID.randomUUID().toString().substring(0, 8));
    int trials = Integer.parseInt(env("HYPERDIAL_TRIALS", "20"));
    int threads = 4;
    int steps = 3;
    long stepMillis = 0;
    Duration leaseTimeout;
    String earlyStopping = "none";
    Duration deadline = Duration.ofSeconds(120);
    Duration attemptDeadline = HyperdialClient.ASK_ATTEMPT;
    boolean verbose;
    boolean probeInvalid;

    static Options parse(String[] args) {
      Options o = new Options();
      for (int i = 0; i < args.length; i++) {
        String flag = args[i];
        switch (flag) {
          case "--verbose" -> o.verbose = true;
          case "--probe-invalid" -> o.probeInvalid = true;
          case "--help" -> throw new IllegalArgumentException("");
          default -> {
            if (i + 1 >= args.length) {
              throw new IllegalArgumentException("missing value of " + flag);
            }
            String value = args[++i];
            try {
              switch (flag) {
                case "--target" -> o.target = value;
                case "--study" -> o.study = value;
                case "--trials" -> o.trials = positive(flag, Integer.parseInt(value));
                case "--threads" -> o.threads = positive(flag, Integer.parseInt(value));
                case "--steps" -> o.steps = positive(flag, Integer.parseInt(value));
                case "--step-seconds" -> o.stepMillis = millis(value).toMillis();
                case "--lease-timeout" -> o.leaseTimeout = millis(value);
                case "--early-stopping" -> {
                  if (!value.equals("none") && !value.equals("median")) {
                    throw new IllegalArgumentException("--early-stopping: none or median");
                  }
                  o.earlyStopping = value;
                }
                case "--deadline" -> o.deadline = millis(value);
                case "--attempt-deadline" -> o.attemptDeadline = millis(value);
                default -> throw new IllegalArgumentException("unknown option " + flag);
              }
            } catch (NumberFormatException e) {
              throw new IllegalArgumentException(flag + ": not a number: " + value);
            }
          }
        }
      }
      return o;
    }

    private static int positive(String flag, int n) {
      if (n < 1) {
        throw new IllegalArgumentException(flag + ": at least 1");
      }
      return n;
    }

    private static Duration millis(String seconds) {
      double s = Double.parseDouble(seconds);
      if (!(s >= 0)) {
        throw new IllegalArgumentException("seconds must be 0 or more: " + seconds);
      }
      return Duration.ofMillis(Math.round(s * 1000));
    }

    private static String env(String name, String fallback) {
      String value = System.getenv(name);
      return value == null || value.isEmpty() ? fallback : value;
    }
  }
}
