package kit

import (
	"html/template"
	"time"

	"github.com/grpckit/grpckit/kit/balancer"
	"github.com/grpckit/grpckit/kit/internal/chart"
)

// debugPageData is what the /debug/kit template draws: the document, and
// the charts of its history (none when the history is off).
type debugPageData struct {
	DebugKit
	// MarkKinds and BreakerStates are the keys of the marks and bands.
	MarkKinds, BreakerStates []string
	ServerCharts             []template.HTML
	TargetCharts             map[string][]template.HTML // by balancer name
	ClientCharts             map[string][]template.HTML // by client name
}

func newDebugPage(doc DebugKit) debugPageData {
	p := debugPageData{DebugKit: doc, TargetCharts: map[string][]template.HTML{}, ClientCharts: map[string][]template.HTML{},
		MarkKinds: markKinds, BreakerStates: breakerStates}
	h := doc.History
	if h == nil || len(h.Times) == 0 {
		return p
	}
	// Every chart spans the whole window, so that they line up and the
	// newest sample is at the right edge.
	to := h.Times[len(h.Times)-1]
	base := chart.Chart{Times: h.Times, From: to - time.Duration(h.Window).Milliseconds(), To: to}
	draw := func(c chart.Chart) template.HTML {
		c.Times, c.From, c.To = base.Times, base.From, base.To
		return template.HTML(c.SVG()) // the chart escapes every text it writes
	}

	srv := h.Server
	if srv.CallsPerSecond != nil || srv.RefusedPerSecond != nil {
		c := chart.Chart{ID: "server-calls", Title: "inbound calls", Unit: "calls/s"}
		if srv.CallsPerSecond != nil {
			c.Lines = append(c.Lines, chart.Line{Key: "ended", Values: srv.CallsPerSecond})
		}
		if srv.RefusedPerSecond != nil {
			c.Lines = append(c.Lines, chart.Line{Key: "refused (overload)", Values: srv.RefusedPerSecond})
		}
		p.ServerCharts = append(p.ServerCharts, draw(c))
	}
	if srv.InFlight != nil {
		p.ServerCharts = append(p.ServerCharts, draw(chart.Chart{ID: "server-concurrency", Title: "concurrency: calls in flight and the limit",
			Unit: "calls", Lines: []chart.Line{{Key: "in flight", Values: srv.InFlight}, {Key: "limit", Values: srv.Limit}}}))
	}

	for _, t := range h.Balancers {
		var marks []chart.Mark
		for _, m := range t.Marks {
			title := time.UnixMilli(m.Time).Format(time.TimeOnly) + " " + m.Event
			if m.Endpoint != "" {
				title += " of " + m.Endpoint
			}
			if m.Detail != "" {
				title += ": " + m.Detail
			}
			marks = append(marks, chart.Mark{Time: m.Time, Event: m.Event, Key: m.Endpoint, Title: title})
		}
		lines := func(series func(EndpointHistory) HistorySeries, scale float64) []chart.Line {
			out := make([]chart.Line, 0, len(t.Endpoints))
			for _, e := range t.Endpoints {
				vs := series(e)
				if scale != 1 {
					vs = scaled(vs, scale)
				}
				out = append(out, chart.Line{Key: e.Addresses, Values: vs})
			}
			return out
		}
		p.TargetCharts[t.Name] = []template.HTML{
			draw(chart.Chart{ID: "calls-" + t.Name, Title: "calls per endpoint", Unit: "calls/s", Marks: marks,
				Lines: lines(func(e EndpointHistory) HistorySeries { return e.CallsPerSecond }, 1)}),
			draw(chart.Chart{ID: "share-" + t.Name, Title: "share of the calls per endpoint", Unit: "%", Max: 100, Marks: marks,
				Lines: lines(func(e EndpointHistory) HistorySeries { return e.Share }, 100)}),
			draw(chart.Chart{ID: "latency-" + t.Name, Title: "latency estimate per endpoint", Unit: "ms", Marks: marks,
				Lines: lines(func(e EndpointHistory) HistorySeries { return e.LatencyMS }, 1)}),
			draw(chart.Chart{ID: "weight-" + t.Name, Title: "effective weight per endpoint", Unit: "weight", Marks: marks,
				Lines: lines(func(e EndpointHistory) HistorySeries { return e.Weight }, 1)}),
		}
	}

	for _, c := range h.Clients {
		var charts []template.HTML
		if len(c.Breakers) > 0 {
			bands := make([]chart.Band, 0, len(c.Breakers))
			for _, b := range c.Breakers {
				bands = append(bands, chart.Band{Key: b.Method, States: b.States})
			}
			charts = append(charts, draw(chart.Chart{ID: "breakers-" + c.Name, Title: "circuit breakers by method: closed, half-open, open", Bands: bands}))
		}
		if len(c.Throttles) > 0 {
			lines := make([]chart.Line, 0, len(c.Throttles))
			for _, th := range c.Throttles {
				lines = append(lines, chart.Line{Key: th.Target, Values: scaled(th.Refusing, 100)})
			}
			charts = append(charts, draw(chart.Chart{ID: "throttles-" + c.Name, Title: "adaptive throttle: calls refused locally",
				Unit: "%", Max: 100, Lines: lines}))
		}
		p.ClientCharts[c.Name] = charts
	}
	return p
}

// markKinds are the events of [HistoryMark], each with its style on the
// page.
var markKinds = []string{string(balancer.EventEjection), string(balancer.EventReadmission), string(balancer.EventDemotion),
	markJoined, markLeft, string(balancer.EventPanic), markPanicEnd, markFailover}

// scaled returns s times f.
func scaled(s HistorySeries, f float64) HistorySeries {
	out := make(HistorySeries, len(s))
	for i, v := range s {
		out[i] = v * f
	}
	return out
}
