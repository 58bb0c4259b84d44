package kit

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/grpckit/grpckit/kit/config"
	"github.com/grpckit/grpckit/kit/middleware/telemetry"
)

// WithTelemetry makes a server or client use t for traces and metrics
// instead of one of its own. Pass a server's telemetry ([Server.Telemetry])
// to the clients its handlers use, so that one trace spans both hops and
// their metrics share the server's /metrics (such clients must not outlive
// the server, which flushes its telemetry on Shutdown). Otherwise the
// caller owns t.
func WithTelemetry(t *telemetry.Telemetry) Option { return WithLayer(LayerTelemetry, t) }

// serverTelemetry returns the telemetry of a server: the given one, else
// one made from std's telemetry section (owned: Shutdown flushes it), nil
// when the layer is off.
func serverTelemetry(c layerChoice, service string, logger *slog.Logger, std *config.Standard) (t, owned *telemetry.Telemetry, err error) {
	if c.without[LayerTelemetry] {
		return nil, nil, nil
	}
	if t, ok := c.given[LayerTelemetry].(*telemetry.Telemetry); ok {
		return t, nil, nil
	}
	cfg := telemetry.DefaultConfig()
	if std != nil {
		cfg = std.Telemetry
	}
	if cfg.ServiceName == "" {
		cfg.ServiceName = service
	}
	if t, err = telemetry.New(context.Background(), cfg, telemetry.WithLogger(logger)); err != nil {
		return nil, nil, fmt.Errorf("kit: telemetry: %w", err)
	}
	return t, t, nil
}

// clientTelemetry returns the telemetry of a client: the given one, else
// one of its own that records metrics but exports no spans (a
// *grpc.ClientConn gives kit no hook to flush an exporter when it closes;
// clients that should trace share a server's telemetry, and the caller's
// trace context passes through either way); nil when the layer is off.
func clientTelemetry(c layerChoice, logger *slog.Logger) (*telemetry.Telemetry, error) {
	if c.without[LayerTelemetry] {
		return nil, nil
	}
	if t, ok := c.given[LayerTelemetry].(*telemetry.Telemetry); ok {
		return t, nil
	}
	cfg := telemetry.DefaultConfig()
	cfg.ServiceName = "grpckit-client"
	t, err := telemetry.New(context.Background(), cfg, telemetry.WithLogger(logger), telemetry.WithEnv(noTraceExport))
	if err != nil {
		return nil, fmt.Errorf("kit: telemetry: %w", err)
	}
	return t, nil
}

// noTraceExport is the process environment with trace export turned off.
func noTraceExport(key string) string {
	if key == "OTEL_TRACES_EXPORTER" {
		return "none"
	}
	return os.Getenv(key)
}

// meterOf is the meter provider of t's metrics, or one that records nothing.
func meterOf(t *telemetry.Telemetry) metric.MeterProvider {
	if t == nil {
		return noop.NewMeterProvider()
	}
	return t.MeterProvider()
}
