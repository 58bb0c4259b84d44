package statuscode

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"google.golang.org/grpc/codes"
)

func TestNameAndParseRoundTrip(t *testing.T) {
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		name := Name(c)
		got, err := Parse(name)
		if err != nil || got != c {
			t.Errorf("Parse(Name(%v)=%q) = %v, %v", c, name, got, err)
		}
		// grpc-go's JSON reading of the same name agrees.
		var viaJSON codes.Code
		if err := viaJSON.UnmarshalJSON([]byte(`"` + name + `"`)); err != nil || viaJSON != c {
			t.Errorf("codes.Code.UnmarshalJSON(%q) = %v, %v", name, viaJSON, err)
		}
	}
	if got := Name(codes.Code(42)); got != "CODE(42)" {
		t.Errorf("Name(42) = %q", got)
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want codes.Code
		ok   bool
	}{
		{"UNAVAILABLE", codes.Unavailable, true},
		{" deadline_exceeded ", codes.DeadlineExceeded, true},
		{"Unavailable", codes.Unavailable, true},
		{"14", 0, false},
		{"", 0, false},
		{"CANCELED", 0, false},
		{"CODE(42)", 0, false},
	} {
		got, err := Parse(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("Parse(%q) = %v, %v; want %v, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestParseSet(t *testing.T) {
	s, err := ParseSet([]string{"UNAVAILABLE", "resource_exhausted"})
	if err != nil {
		t.Fatal(err)
	}
	for c := codes.OK; c < 32; c++ {
		want := c == codes.Unavailable || c == codes.ResourceExhausted
		if s.Has(c) != want {
			t.Errorf("Has(%v) = %v", c, !want)
		}
	}
	if s.Has(codes.Code(99)) {
		t.Error("Has(99)")
	}
	for _, bad := range [][]string{{"OK"}, {"UNAVAILABLE", "nope"}} {
		if _, err := ParseSet(bad); err == nil {
			t.Errorf("ParseSet(%q) accepted", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("UNAVAILABLE")
	f.Add("code(1)")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(s)
		if err != nil {
			return
		}
		if got, err := Parse(Name(c)); err != nil || got != c {
			t.Fatalf("Parse(%q) = %v, but Name does not round-trip: %v, %v", s, c, got, err)
		}
	})
}

func TestCodeName(t *testing.T) {
	got := map[string]string{}
	for c := codes.OK; c <= codes.Unauthenticated+1; c++ {
		got[c.String()] = Name(c)
	}
	want := map[string]string{
		"OK": "OK", "Canceled": "CANCELLED", "Unknown": "UNKNOWN", "InvalidArgument": "INVALID_ARGUMENT",
		"DeadlineExceeded": "DEADLINE_EXCEEDED", "NotFound": "NOT_FOUND", "AlreadyExists": "ALREADY_EXISTS",
		"PermissionDenied": "PERMISSION_DENIED", "ResourceExhausted": "RESOURCE_EXHAUSTED",
		"FailedPrecondition": "FAILED_PRECONDITION", "Aborted": "ABORTED", "OutOfRange": "OUT_OF_RANGE",
		"Unimplemented": "UNIMPLEMENTED", "Internal": "INTERNAL", "Unavailable": "UNAVAILABLE",
		"DataLoss": "DATA_LOSS", "Unauthenticated": "UNAUTHENTICATED", "Code(17)": "CODE(17)",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("codeName (-want +got):\n%s", diff)
	}
}

func TestIsAnswer(t *testing.T) {
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		want := c != codes.Unavailable && c != codes.DeadlineExceeded && c != codes.Canceled
		if got := IsAnswer(c); got != want {
			t.Errorf("IsAnswer(%v) = %v, want %v", c, got, want)
		}
	}
	if !IsAnswer(codes.ResourceExhausted) {
		t.Error("RESOURCE_EXHAUSTED is the server's answer")
	}
}

func TestDeadlineRuleValidate(t *testing.T) {
	for _, r := range []DeadlineRule{DeadlineWhenSilent, DeadlineFailure, DeadlineIgnore} {
		if err := r.Validate(); err != nil {
			t.Errorf("Validate(%q) = %v", r, err)
		}
	}
	for _, r := range []DeadlineRule{"", "WHEN_SILENT", "fail", "when silent"} {
		err := r.Validate()
		if err == nil || !strings.Contains(err.Error(), "when_silent, failure, ignore") {
			t.Errorf("Validate(%q) = %v, want an error listing the values", r, err)
		}
	}
}
