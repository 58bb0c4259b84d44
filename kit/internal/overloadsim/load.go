package overloadsim

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
)

// Call is the outcome of one call of a load.
type Call struct {
	Start   time.Duration // since the load began
	Latency time.Duration
	Code    codes.Code
	Server  string // the backend that answered OK
	Client  int    // the index of the client that made it
}

// Load is an open-loop load: calls start at the rate asked whether or not
// the earlier ones ended, as users' requests do.
type Load struct {
	// Rate is the calls per second to start at elapsed time t.
	Rate func(t time.Duration) float64
	// For is how long calls are started.
	For time.Duration
	// Deadline is every call's deadline.
	Deadline time.Duration
	// Every, when set, is called every 100ms while calls are started.
	Every func(t time.Duration)
}

// Run starts the load's calls over the clients in turn and returns every
// call's outcome once the last one ended.
func (l Load) Run(ctx context.Context, stubs []testpbv1.TestServiceClient) []Call {
	var (
		mu    sync.Mutex
		calls []Call
		wg    sync.WaitGroup
	)
	start := time.Now()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	var owed float64
	last, lastEvery, n := time.Duration(0), time.Duration(0), 0
	for ctx.Err() == nil {
		<-tick.C
		t := time.Since(start)
		if t >= l.For {
			break
		}
		owed += l.Rate(t) * (t - last).Seconds()
		last = t
		if l.Every != nil && t-lastEvery >= 100*time.Millisecond {
			lastEvery = t
			l.Every(t)
		}
		for ; owed >= 1; owed-- {
			client := n % len(stubs)
			n++
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := call(ctx, stubs[client], l.Deadline, start)
				c.Client = client
				mu.Lock()
				calls = append(calls, c)
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	slices.SortFunc(calls, func(a, b Call) int { return int(a.Start - b.Start) })
	return calls
}

func call(ctx context.Context, stub testpbv1.TestServiceClient, deadline time.Duration, start time.Time) Call {
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	t0 := time.Now()
	resp, err := stub.Echo(ctx, &testpbv1.EchoRequest{Message: "load"})
	c := Call{Start: t0.Sub(start), Latency: time.Since(t0), Code: status.Code(err)}
	if err == nil {
		c.Server = resp.GetServer()
	}
	return c
}

// Summary describes the calls that started within a span of a load.
type Summary struct {
	Span     time.Duration
	Calls    int
	OK       int
	Goodput  float64       // OK calls per second
	P50, P99 time.Duration // of OK calls
	Deadline int           // calls that ended with DEADLINE_EXCEEDED
	Codes    map[codes.Code]int
	FailP50  time.Duration // of failed calls: how fast a refusal comes
	FailP99  time.Duration
	// Share is the fewest OK calls any client got over the most any got:
	// 1 when every caller gets the same share of goodput.
	Share float64
}

// Summarize describes the calls that started in [from, to).
func Summarize(calls []Call, from, to time.Duration) Summary {
	s := Summary{Span: to - from, Codes: map[codes.Code]int{}}
	var ok, failed []time.Duration
	for _, c := range calls {
		if c.Start < from || c.Start >= to {
			continue
		}
		s.Calls++
		s.Codes[c.Code]++
		switch {
		case c.Code == codes.OK:
			ok = append(ok, c.Latency)
		default:
			failed = append(failed, c.Latency)
		}
		if c.Code == codes.DeadlineExceeded {
			s.Deadline++
		}
	}
	s.OK = len(ok)
	perClient := map[int]int{} // OK calls of every client that called, 0 included
	for _, c := range calls {
		if c.Start < from || c.Start >= to {
			continue
		}
		n := perClient[c.Client]
		if c.Code == codes.OK {
			n++
		}
		perClient[c.Client] = n
	}
	if len(perClient) > 0 {
		least, most := s.OK, 0
		for _, n := range perClient {
			least, most = min(least, n), max(most, n)
		}
		if most > 0 {
			s.Share = float64(least) / float64(most)
		}
	}
	s.Goodput = float64(s.OK) / s.Span.Seconds()
	s.P50, s.P99 = quantile(ok, 0.5), quantile(ok, 0.99)
	s.FailP50, s.FailP99 = quantile(failed, 0.5), quantile(failed, 0.99)
	return s
}

// DeadlineShare is the share of calls that ended with DEADLINE_EXCEEDED.
func (s Summary) DeadlineShare() float64 {
	if s.Calls == 0 {
		return 0
	}
	return float64(s.Deadline) / float64(s.Calls)
}

// CodesString lists the codes seen, most frequent first, with their shares.
func (s Summary) CodesString() string {
	keys := slices.Collect(maps.Keys(s.Codes))
	slices.SortFunc(keys, func(a, b codes.Code) int { return s.Codes[b] - s.Codes[a] })
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.0f%%", k, 100*float64(s.Codes[k])/float64(s.Calls)))
	}
	return strings.Join(parts, ", ")
}

func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[min(int(q*float64(len(d))), len(d)-1)]
}
