package e2e

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"image"
	"image/png"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/kit"
	"github.com/grpckit/grpckit/kit/registry"
	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
	"github.com/grpckit/grpckit/services/greeter"
)

// historyStep is the sampling step of the page under test: short, so that
// the test sees many samples in a few seconds.
const historyStep = 100 * time.Millisecond

// TestDebugHistoryInChromium: two greeter instances take a caller's
// traffic; one starts failing and kit_weighted ejects it. The caller's
// /debug/kit page, loaded in a real browser, draws that endpoint's share
// with the ejection marked and the share falling to 0 after it; the JSON
// history has the same points; a screenshot shows the charts, in light and
// in dark mode.
func TestDebugHistoryInChromium(t *testing.T) {
	browser := chromium(t)
	s := newStack(t)
	var fail atomic.Bool
	failing := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if fail.Load() && strings.HasSuffix(info.FullMethod, "/SayHello") { // not the health checks: the instance stays
			return nil, status.Error(codes.Unavailable, "fault injected")
		}
		return h(ctx, req)
	}
	start := func(opts ...kit.ServerOption) string {
		srv, err := kit.NewServer(append([]kit.ServerOption{kit.WithRegistrar(s.reg, registry.Instance{Name: "greeter"}),
			kit.WithDrain(0), kit.WithAdminAddress(""), kit.WithLogger(quiet)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		greeterv1.RegisterGreeterServiceServer(srv, greeter.NewServer(nil))
		return serveOn(t, srv, false)
	}
	start()
	bad := start(kit.WithGRPCServerOptions(grpc.UnaryInterceptor(failing)))
	s.waitInstances("greeter", 2)

	front, err := kit.NewServer(kit.WithServiceName("front"), kit.WithDrain(0), kit.WithLogger(quiet),
		kit.WithDebugHistory(time.Minute, historyStep))
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, front, true)
	cc, err := kit.NewClient("consul:///greeter", kit.WithDiscovery(s.reg), kit.WithAdminOf(front),
		// Each call goes to one endpoint, and the breaker, whose 5 failures
		// in a row may come with the 5 that eject the endpoint when the
		// caller's calls follow one another, does not fail the calls to
		// the healthy one meanwhile: this test is about the balancer.
		kit.WithoutLayers(kit.LayerRetry, kit.LayerBreaker))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	target := "consul:///greeter"

	// Steady traffic, paced, until the test ends.
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		stop()
		wg.Wait()
	})
	wg.Go(func() {
		c := greeterv1.NewGreeterServiceClient(cc)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				c.SayHello(ctx, &greeterv1.SayHelloRequest{Name: "chart"})
			}
		}
	})

	page := "http://" + front.AdminAddr().String() + "/debug/kit"
	waitHistory(t, page, "both endpoints sharing the calls", func(h *kit.DebugHistory) bool {
		return countShares(h, target, bad, func(v float64) bool { return v > 0.2 }) >= 5
	})
	fail.Store(true)
	var ejected int64
	waitHistory(t, page, "the ejection, then the endpoint without calls", func(h *kit.DebugHistory) bool {
		ejected = 0
		for _, th := range h.Balancers {
			for _, m := range th.Marks {
				if th.Target == target && m.Event == "ejection" && m.Endpoint == bad && ejected == 0 {
					ejected = m.Time
				}
			}
		}
		return ejected != 0 && countShares(h, target, bad, func(v float64) bool { return v == 0 }) >= 5
	})

	dom := renderedDOM(t, browser, page)
	svg := regexp.MustCompile(`(?s)<svg [^>]*id="share-` + regexp.QuoteMeta(target) + `".*?</svg>`).FindString(dom)
	if svg == "" {
		t.Fatalf("the page has no share chart for %s:\n%s", target, dom)
	}
	drawn := readChart(t, svg)
	if !drawn.hasMark("ejection", bad) {
		t.Errorf("the share chart has no ejection mark of %s: %+v", bad, drawn.marks)
	}
	// The JSON, read after the page, holds the points drawn that are still
	// in its window, at the same times.
	h := fetchHistory(t, page)
	var share kit.HistorySeries
	for _, th := range h.Balancers {
		for _, e := range th.Endpoints {
			if th.Target == target && e.Addresses == bad {
				share = e.Share
			}
		}
	}
	matched := 0
	for _, p := range drawn.lines[bad] {
		i := nearest(h.Times, p.t)
		if i < 0 || math.Abs(float64(h.Times[i]-p.t)) > float64(historyStep/time.Millisecond)/4 {
			continue // gone from the window since
		}
		matched++
		if got := share[i] * 100; math.IsNaN(got) || math.Abs(got-p.v) > 1.5 {
			t.Errorf("at %d the chart draws %.1f%%, the JSON says %.1f%%", p.t, p.v, got)
		}
	}
	if matched < len(drawn.lines[bad])/2 {
		t.Errorf("only %d of the %d points drawn are in the JSON", matched, len(drawn.lines[bad]))
	}

	// After the ejection and until its re-admission (a loaded machine
	// may render the page after it: the endpoint then gets calls again
	// until its next ejection).
	var readmitted int64
	for _, th := range h.Balancers {
		for _, m := range th.Marks {
			if th.Target == target && m.Event == "readmission" && m.Endpoint == bad && m.Time > ejected && readmitted == 0 {
				readmitted = m.Time
			}
		}
	}
	var before, after []float64
	for _, p := range drawn.lines[bad] {
		switch {
		case p.t < ejected-int64(2*historyStep/time.Millisecond):
			before = append(before, p.v)
		case p.t > ejected && (readmitted == 0 || p.t < readmitted):
			after = append(after, p.v)
		}
	}
	// The first sample after the ejection may still count calls that
	// ended on it just before: most of the points after it are 0.
	zero := 0
	for _, v := range after {
		if v == 0 {
			zero++
		}
	}
	if len(before) < 3 || len(after) < 3 || mean(before) < 20 || zero < len(after)*4/5 {
		t.Errorf("the share of %s drawn: %.1f%% on average before the ejection (%d points); after it (until its re-admission) %v, want over 20%% and then 0",
			bad, mean(before), len(before), after)
	}

	for _, mode := range []string{"light", "dark"} {
		img := screenshot(t, browser, page, mode == "dark")
		checkScreenshot(t, mode, img)
	}
}

// waitHistory polls the page's JSON history until ok, for up to 30 s.
func waitHistory(t *testing.T, page, what string, ok func(*kit.DebugHistory) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		h := fetchHistory(t, page)
		if ok(h) {
			return
		}
		if time.Now().After(deadline) {
			b, _ := json.Marshal(h)
			t.Fatalf("no %s in the history after 30 s:\n%s", what, b)
		}
		time.Sleep(historyStep)
	}
}

func fetchHistory(t *testing.T, page string) *kit.DebugHistory {
	t.Helper()
	resp, err := http.Get(page + "?format=json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc kit.DebugKit
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc.History == nil {
		t.Fatal("the document has no history")
	}
	return doc.History
}

// countShares counts the points of the share of endpoint addr of target
// for which ok holds.
func countShares(h *kit.DebugHistory, target, addr string, ok func(float64) bool) int {
	n := 0
	for _, th := range h.Balancers {
		for _, e := range th.Endpoints {
			if th.Target != target || e.Addresses != addr {
				continue
			}
			for _, v := range e.Share {
				if !math.IsNaN(v) && ok(v) {
					n++
				}
			}
		}
	}
	return n
}

// drawnChart is what an SVG chart of the page draws: the points of its
// lines, turned back into times (Unix ms) and values with the scales the
// chart states in its data attributes, and its marks.
type drawnChart struct {
	lines map[string][]drawnPoint
	marks []struct{ event, key string }
}

type drawnPoint struct {
	t int64
	v float64
}

func (d drawnChart) hasMark(event, key string) bool {
	for _, m := range d.marks {
		if m.event == event && m.key == key {
			return true
		}
	}
	return false
}

// readChart parses an svg element of the page as XML and reads it.
func readChart(t *testing.T, svg string) drawnChart {
	t.Helper()
	var e struct {
		T0    int64   `xml:"data-t0,attr"`
		T1    int64   `xml:"data-t1,attr"`
		V0    float64 `xml:"data-v0,attr"`
		V1    float64 `xml:"data-v1,attr"`
		X0    float64 `xml:"data-x0,attr"`
		X1    float64 `xml:"data-x1,attr"`
		Y0    float64 `xml:"data-y0,attr"`
		Y1    float64 `xml:"data-y1,attr"`
		Paths []struct {
			Series string `xml:"data-series,attr"`
			D      string `xml:"d,attr"`
		} `xml:"path"`
		Groups []struct {
			Event string `xml:"data-event,attr"`
			Key   string `xml:"data-key,attr"`
		} `xml:"g"`
	}
	if err := xml.Unmarshal([]byte(svg), &e); err != nil {
		t.Fatalf("the chart is not well-formed SVG: %v\n%s", err, svg)
	}
	d := drawnChart{lines: map[string][]drawnPoint{}}
	for _, p := range e.Paths {
		for _, xy := range regexp.MustCompile(`[ML]\s*([-0-9.]+)[ ,]([-0-9.]+)`).FindAllStringSubmatch(p.D, -1) {
			x, _ := strconv.ParseFloat(xy[1], 64)
			y, _ := strconv.ParseFloat(xy[2], 64)
			d.lines[p.Series] = append(d.lines[p.Series], drawnPoint{
				t: e.T0 + int64(math.Round((x-e.X0)/(e.X1-e.X0)*float64(e.T1-e.T0))),
				v: e.V0 + (e.Y1-y)/(e.Y1-e.Y0)*(e.V1-e.V0),
			})
		}
	}
	for _, g := range e.Groups {
		if g.Event != "" {
			d.marks = append(d.marks, struct{ event, key string }{g.Event, g.Key})
		}
	}
	return d
}

func mean(vs []float64) float64 {
	var sum float64
	for _, v := range vs {
		sum += v
	}
	return sum / float64(max(len(vs), 1))
}

// nearest returns the index of the time in times nearest to t, -1 if none.
func nearest(times []int64, t int64) int {
	best := -1
	for i, u := range times {
		if best < 0 || math.Abs(float64(u-t)) < math.Abs(float64(times[best]-t)) {
			best = i
		}
	}
	return best
}

// screenshot loads url in headless Chromium, in dark mode or not, and
// returns the picture of the page.
func screenshot(t *testing.T, browser, url string, dark bool) image.Image {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	file := filepath.Join(t.TempDir(), "page.png")
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--hide-scrollbars",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--window-size=1280,2000", "--screenshot=" + file}
	if dark {
		args = append(args, "--force-dark-mode", "--blink-settings=preferredColorScheme=0")
	}
	out, err := exec.CommandContext(ctx, browser, append(args, url)...).CombinedOutput()
	if err != nil {
		t.Fatalf("chromium --screenshot %s: %v\n%s", url, err, out)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// checkScreenshot checks that the picture is not blank, that its
// background is the one of the mode, and that the charts' lines are in it
// (pixels of a line color of the mode).
func checkScreenshot(t *testing.T, mode string, img image.Image) {
	t.Helper()
	colors := map[[3]uint8]int{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colors[[3]uint8{uint8(r >> 8), uint8(g >> 8), uint8(bl >> 8)}]++
		}
	}
	if len(colors) < 16 {
		t.Errorf("%s screenshot: %d colors, looks blank", mode, len(colors))
	}
	background, line := [3]uint8{0xff, 0xff, 0xff}, [2][3]uint8{{0x1f, 0x6f, 0xb4}, {0xd9, 0x73, 0x0d}}
	if mode == "dark" {
		background, line = [3]uint8{0x12, 0x12, 0x12}, [2][3]uint8{{0x6c, 0xb4, 0xf0}, {0xff, 0xa6, 0x4d}}
	}
	top, n := [3]uint8{}, 0
	for c, k := range colors {
		if k > n {
			top, n = c, k
		}
	}
	if top != background {
		t.Errorf("%s screenshot: the commonest color is %x, want the background %x", mode, top, background)
	}
	near := func(a, b [3]uint8) bool {
		for i := range a {
			if math.Abs(float64(a[i])-float64(b[i])) > 12 {
				return false
			}
		}
		return true
	}
	for _, want := range line {
		found := 0
		for c, k := range colors {
			if near(c, want) {
				found += k
			}
		}
		if found < 20 {
			t.Errorf("%s screenshot: %d pixels of the line color %x, want the charts' lines", mode, found, want)
		}
	}
	if t.Failed() || os.Getenv("GRPCKIT_KEEP_SCREENSHOTS") != "" {
		f, _ := os.CreateTemp("", fmt.Sprintf("debugkit-%s-*.png", mode))
		png.Encode(f, img)
		f.Close()
		t.Logf("%s screenshot kept in %s", mode, f.Name())
	}
}
