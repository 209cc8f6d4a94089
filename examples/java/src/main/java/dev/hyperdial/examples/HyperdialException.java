package dev.hyperdial.examples;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.BadRequest;
import com.google.rpc.RetryInfo;
import dev.hyperdial.examples.rpc.ErrorInfo;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/**
 * A failed call of the tuning service, with what its {@code grpc-status-details-bin} trailer
 * says: the {@code google.rpc.ErrorInfo} reason and metadata, the fields a {@code
 * google.rpc.BadRequest} names, and the delay of a {@code google.rpc.RetryInfo}.
 *
 * <p>Branch on {@link #reason()}, never on the message text (docs/protocol.md, "Errors").
 */
public final class HyperdialException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  /** The type URL of a google.rpc.ErrorInfo detail ends with this. */
  private static final String ERROR_INFO_TYPE = "/google.rpc.ErrorInfo";

  private final Status.Code code;
  private final String reason;
  private final String domain;
  private final Map<String, String> metadata;
  private final List<String> fields;
  private final Duration retryDelay;

  private HyperdialException(
      String method,
      StatusRuntimeException cause,
      String reason,
      String domain,
      Map<String, String> metadata,
      List<String> fields,
      Duration retryDelay) {
    super(method + ": " + cause.getStatus().getCode() + (reason.isEmpty() ? "" : " " + reason)
        + ": " + cause.getStatus().getDescription(), cause);
    this.code = cause.getStatus().getCode();
    this.reason = reason;
    this.domain = domain;
    this.metadata = metadata;
    this.fields = fields;
    this.retryDelay = retryDelay;
  }

  /**
   * Decodes the status details of a failed call: {@link StatusProto#fromThrowable} reads the
   * {@code google.rpc.Status} from the trailer, whose details are {@code Any} messages.
   *
   * @param method the RPC's name, for the message
   * @param error what the stub threw
   * @return the error with its reason (empty when the details have no ErrorInfo: gRPC's own
   *     errors, such as a refused connection or a deadline)
   */
  public static HyperdialException decode(String method, StatusRuntimeException error) {
    String reason = "";
    String domain = "";
    Map<String, String> metadata = Collections.emptyMap();
    List<String> fields = new ArrayList<>();
    Duration retryDelay = Duration.ZERO;
    com.google.rpc.Status status = StatusProto.fromThrowable(error);
    if (status != null) {
      for (Any detail : status.getDetailsList()) {
        try {
          if (detail.getTypeUrl().endsWith(ERROR_INFO_TYPE)) {
            ErrorInfo info = ErrorInfo.parseFrom(detail.getValue());
            reason = info.getReason();
            domain = info.getDomain();
            metadata = info.getMetadataMap();
          } else if (detail.is(BadRequest.class)) {
            for (BadRequest.FieldViolation v : detail.unpack(BadRequest.class)
                .getFieldViolationsList()) {
              fields.add(v.getField());
            }
          } else if (detail.is(RetryInfo.class)) {
            com.google.protobuf.Duration d = detail.unpack(RetryInfo.class).getRetryDelay();
            retryDelay = Duration.ofSeconds(d.getSeconds(), d.getNanos());
          }
        } catch (InvalidProtocolBufferException e) {
          // A detail that does not parse tells nothing; the status code still holds.
        }
      }
    }
    return new HyperdialException(
        method, error, reason, domain, metadata, Collections.unmodifiableList(fields), retryDelay);
  }

  /** The gRPC status code. */
  public Status.Code code() {
    return code;
  }

  /** {@code ErrorInfo.reason}, e.g. {@code STUDY_COMPLETE}; empty without an ErrorInfo. */
  public String reason() {
    return reason;
  }

  /** {@code ErrorInfo.domain}: {@code hyperdial.dev} for the service's own errors. */
  public String domain() {
    return domain;
  }

  /** {@code ErrorInfo.metadata}, e.g. {@code pending} of STUDY_COMPLETE. */
  public Map<String, String> metadata() {
    return metadata;
  }

  /** The fields {@code BadRequest} names, e.g. {@code spec.parameters[0].name}. */
  public List<String> fields() {
    return fields;
  }

  /** The least wait before a retry, from {@code RetryInfo}; zero without one. */
  public Duration retryDelay() {
    return retryDelay;
  }
}
