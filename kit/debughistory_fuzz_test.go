package kit

import (
	"encoding/json"
	"math"
	"testing"
)

// FuzzHistoryJSON: the history's JSON form (?format=json, read back by
// tools and tests) decodes from any input without a panic, and what
// decodes encodes and decodes again to the same values, null as NaN.
func FuzzHistoryJSON(f *testing.F) {
	for _, seed := range []string{
		`{"step":"1s","window":"5m0s","times":[1,2],"server":{"calls_per_second":[null,3.5]},"balancers":[{"name":"a","target":"a","endpoints":[{"addresses":"x","share":[0.5,1e308]}],"marks":[{"time":2,"event":"ejection","endpoint":"x"}]}],"clients":[{"name":"c","target":"c","breakers":[{"method":"/m","states":[null,"open"]}],"throttles":[{"target":"c","refusing":[0,null]}]}]}`,
		`{"times":[],"balancers":null}`,
		`{"server":{"limit":[1,-0,null,2]}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var h DebugHistory
		if json.Unmarshal(b, &h) != nil {
			return
		}
		out, err := json.Marshal(h)
		if err != nil {
			t.Fatalf("a decoded history does not encode: %v", err)
		}
		var again DebugHistory
		if err := json.Unmarshal(out, &again); err != nil {
			t.Fatalf("the history's own encoding does not decode: %v\n%s", err, out)
		}
		out2, err := json.Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != string(out2) {
			t.Errorf("the encoding changed through a decoding:\n%s\n%s", out, out2)
		}
	})
}

// TestHistorySeriesJSON: NaN and the infinities are written null and read
// back as NaN; numbers keep six significant digits.
func TestHistorySeriesJSON(t *testing.T) {
	b, err := json.Marshal(HistorySeries{1, math.NaN(), math.Inf(1), 0.1234567})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "[1,null,null,0.123457]" {
		t.Errorf("encoded %s", b)
	}
	var s HistorySeries
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	if len(s) != 4 || s[0] != 1 || !math.IsNaN(s[1]) || !math.IsNaN(s[2]) || s[3] != 0.123457 {
		t.Errorf("decoded %v", s)
	}
}
