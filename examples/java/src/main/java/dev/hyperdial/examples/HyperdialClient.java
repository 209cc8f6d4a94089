package dev.hyperdial.examples;

import dev.hyperdial.v1.AddTrialMeasurementRequest;
import dev.hyperdial.v1.AddTrialMeasurementResponse;
import dev.hyperdial.v1.CompleteTrialRequest;
import dev.hyperdial.v1.CreateStudyRequest;
import dev.hyperdial.v1.GetStudyRequest;
import dev.hyperdial.v1.HeartbeatTrialRequest;
import dev.hyperdial.v1.Measurement;
import dev.hyperdial.v1.Study;
import dev.hyperdial.v1.StudySpec;
import dev.hyperdial.v1.SuggestTrialsRequest;
import dev.hyperdial.v1.Trial;
import dev.hyperdial.v1.TuningServiceGrpc;
import dev.hyperdial.v1.TuningServiceGrpc.TuningServiceBlockingStub;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.NettyChannelBuilder;
import io.netty.channel.ChannelOption;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;

/**
 * A small, thread-safe client of {@code hyperdial.v1.TuningService} on one channel, following
 * "Deadlines, retries and keepalive for other languages" in docs/protocol.md:
 *
 * <ul>
 *   <li>every attempt has its own short deadline (20 s for an ask, 5 s for the rest), within an
 *       overall deadline per call;
 *   <li>every mutating call carries a {@code request_id} made once per call and sent unchanged
 *       on each of its attempts, so a retry is answered what the first attempt did;
 *   <li>UNAVAILABLE and DEADLINE_EXCEEDED are retried whatever the reason, and the reasons
 *       REQUEST_IN_PROGRESS, TOO_MANY_REQUESTS, STORE_OUT_OF_MEMORY and CLAIM_EXPIRED whatever
 *       the code, after a full-jitter backoff (a uniform wait up to {@code min(10 s, 0.2 s ×
 *       2^(n-1))}) plus the server's RetryInfo delay;
 *   <li>keepalive pings every 10 s (5 s to answer, idle connections too), round-robin over the
 *       target's addresses, and a connection attempt given up after 5 s.
 * </ul>
 *
 * Every other error is thrown at once as a {@link HyperdialException} with its decoded reason.
 */
public final class HyperdialClient implements AutoCloseable {
  /** Deadline of one attempt of SuggestTrials (it may fit a model on a loaded replica). */
  public static final Duration ASK_ATTEMPT = Duration.ofSeconds(20);
  /** Deadline of one attempt of every other call used here (answered in milliseconds). */
  public static final Duration CALL_ATTEMPT = Duration.ofSeconds(5);

  private static final Set<String> RETRIED_REASONS =
      Set.of("REQUEST_IN_PROGRESS", "TOO_MANY_REQUESTS", "STORE_OUT_OF_MEMORY", "CLAIM_EXPIRED");

  private final ManagedChannel channel;
  private final TuningServiceBlockingStub stub;
  private final Duration overall;
  private final Duration attemptLimit;
  private final boolean verbose;
  private final AtomicLong retries = new AtomicLong();

  /**
   * Opens a plaintext channel.
   *
   * @param target {@code host:port}, or any gRPC target ({@code dns:///name:port}, {@code
   *     ipv4:a:p,b:q})
   * @param overall overall deadline of one call, retries included
   * @param attemptLimit the longest deadline of one attempt (the per-method deadlines above are
   *     cut to it)
   * @param verbose log every retry on stderr
   */
  public HyperdialClient(String target, Duration overall, Duration attemptLimit, boolean verbose) {
    this.channel =
        NettyChannelBuilder.forTarget(target)
            .usePlaintext()
            .keepAliveTime(10, TimeUnit.SECONDS)
            .keepAliveTimeout(5, TimeUnit.SECONDS)
            .keepAliveWithoutCalls(true)
            .defaultLoadBalancingPolicy("round_robin")
            .withOption(ChannelOption.CONNECT_TIMEOUT_MILLIS, 5000)
            .build();
    this.stub = TuningServiceGrpc.newBlockingStub(channel);
    this.overall = overall;
    this.attemptLimit = attemptLimit;
    this.verbose = verbose;
  }

  /** How many attempts were retried so far, over all calls. */
  public long retries() {
    return retries.get();
  }

  /** A fresh request id: one per distinct call, kept for all its attempts. */
  public static String newRequestId() {
    return UUID.randomUUID().toString();
  }

  /** CreateStudy, with a request id. */
  public Study createStudy(String studyId, StudySpec spec) {
    CreateStudyRequest request =
        CreateStudyRequest.newBuilder()
            .setStudyId(studyId)
            .setSpec(spec)
            .setRequestId(newRequestId())
            .build();
    return call("CreateStudy", CALL_ATTEMPT, overall, request.getRequestId(),
        s -> s.createStudy(request).getStudy());
  }

  /** GetStudy: the study with its resolved spec (its lease among others). */
  public Study getStudy(String name) {
    GetStudyRequest request = GetStudyRequest.newBuilder().setName(name).build();
    return call("GetStudy", CALL_ATTEMPT, overall, "", s -> s.getStudy(request).getStudy());
  }

  /** SuggestTrials for one trial, with a request id; throws STUDY_COMPLETE when none is left. */
  public List<Trial> suggest(String study, String clientId) {
    SuggestTrialsRequest request =
        SuggestTrialsRequest.newBuilder()
            .setParent(study)
            .setCount(1)
            .setClientId(clientId)
            .setRequestId(newRequestId())
            .build();
    return call("SuggestTrials", ASK_ATTEMPT, overall, request.getRequestId(),
        s -> s.suggestTrials(request).getTrialsList());
  }

  /** AddTrialMeasurement, with a request id: the policy's answer and the trial. */
  public AddTrialMeasurementResponse report(String trial, Measurement measurement) {
    AddTrialMeasurementRequest request =
        AddTrialMeasurementRequest.newBuilder()
            .setName(trial)
            .setMeasurement(measurement)
            .setRequestId(newRequestId())
            .build();
    return call("AddTrialMeasurement", CALL_ATTEMPT, overall, request.getRequestId(),
        s -> s.addTrialMeasurement(request));
  }

  /** CompleteTrial with a final measurement, with a request id. */
  public Trial complete(String trial, Measurement finalMeasurement) {
    CompleteTrialRequest request =
        CompleteTrialRequest.newBuilder()
            .setName(trial)
            .setFinalMeasurement(finalMeasurement)
            .setRequestId(newRequestId())
            .build();
    return call("CompleteTrial", CALL_ATTEMPT, overall, request.getRequestId(),
        s -> s.completeTrial(request).getTrial());
  }

  /**
   * HeartbeatTrial: renews the trial's lease. It takes no request id (renewing twice is
   * harmless); its overall deadline is the caller's, as a late heartbeat is worth nothing.
   */
  public Trial heartbeat(String trial, Duration within) {
    HeartbeatTrialRequest request = HeartbeatTrialRequest.newBuilder().setName(trial).build();
    return call("HeartbeatTrial", CALL_ATTEMPT, within, "",
        s -> s.heartbeatTrial(request).getTrial());
  }

  /**
   * One call with its retries: each attempt sends the same request (so the same request id)
   * with a deadline of {@code attempt}, cut to what is left of {@code within}.
   */
  private <T> T call(
      String method,
      Duration attempt,
      Duration within,
      String requestId,
      Function<TuningServiceBlockingStub, T> send) {
    long end = System.nanoTime() + within.toNanos();
    long attemptNanos = Math.min(attempt.toNanos(), attemptLimit.toNanos());
    for (int n = 1; ; n++) {
      long left = end - System.nanoTime();
      try {
        return send.apply(
            stub.withDeadlineAfter(Math.max(1, Math.min(attemptNanos, left)), TimeUnit.NANOSECONDS));
      } catch (StatusRuntimeException e) {
        HyperdialException error = HyperdialException.decode(method, e);
        if (!retried(error)) {
          throw error;
        }
        double cap = Math.min(10.0, 0.2 * Math.pow(2, n - 1));
        long waitNanos =
            (long) (ThreadLocalRandom.current().nextDouble(cap) * 1e9)
                + error.retryDelay().toNanos();
        if (System.nanoTime() + waitNanos >= end) {
          throw error; // out of time: the last error tells why
        }
        retries.incrementAndGet();
        if (verbose) {
          System.err.printf(
              "hyperdial: retry %s attempt=%d request_id=%s after %s%s (wait %d ms)%n",
              method, n + 1, requestId.isEmpty() ? "-" : requestId, error.code(),
              error.reason().isEmpty() ? "" : " " + error.reason(), waitNanos / 1_000_000);
        }
        try {
          TimeUnit.NANOSECONDS.sleep(waitNanos);
        } catch (InterruptedException interrupted) {
          Thread.currentThread().interrupt();
          throw error;
        }
      }
    }
  }

  private static boolean retried(HyperdialException error) {
    return error.code() == Status.Code.UNAVAILABLE
        || error.code() == Status.Code.DEADLINE_EXCEEDED
        || RETRIED_REASONS.contains(error.reason());
  }

  @Override
  public void close() throws InterruptedException {
    channel.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
  }
}
