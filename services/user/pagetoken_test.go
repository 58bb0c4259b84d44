package user

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
)

func TestPageToken(t *testing.T) {
	id := uuid.Must(uuid.NewV7()).String()
	tok := encodePageToken(id)
	tests := []struct {
		name    string
		tok     string
		want    string
		wantErr bool
	}{
		{name: "round trip", tok: tok, want: id},
		{name: "empty", tok: "", wantErr: true},
		{name: "not base64", tok: "%%%", wantErr: true},
		{name: "padded", tok: tok + "==", wantErr: true},
		{name: "line break", tok: tok[:10] + "\n" + tok[10:], wantErr: true},
		{name: "no prefix", tok: pageTokenEncoding.EncodeToString([]byte(id)), wantErr: true},
		{name: "other version", tok: pageTokenEncoding.EncodeToString([]byte("u2:" + id)), wantErr: true},
		{name: "not a uuid", tok: encodePageToken("alice"), wantErr: true},
		{name: "upper-case uuid", tok: encodePageToken("0190A6B2-7C3D-7E4F-8A1B-2C3D4E5F6A7B"), wantErr: true},
		{name: "urn uuid", tok: encodePageToken("urn:uuid:" + id), wantErr: true},
		{name: "too long", tok: encodePageToken(id + string(make([]byte, 200))), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodePageToken(tt.tok)
			if (err != nil) != tt.wantErr {
				t.Fatalf("decodePageToken(%q) error = %v, want error %v", tt.tok, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("decodePageToken(%q) (-want +got):\n%s", tt.tok, diff)
			}
		})
	}
}

// FuzzPageToken checks that decodePageToken never panics and accepts only
// the tokens encodePageToken makes.
func FuzzPageToken(f *testing.F) {
	f.Add(encodePageToken(uuid.Must(uuid.NewV7()).String()))
	f.Add("")
	f.Add("garbage")
	f.Add(encodePageToken("x"))
	f.Fuzz(func(t *testing.T, tok string) {
		id, err := decodePageToken(tok)
		if err != nil {
			return
		}
		if got := encodePageToken(id); got != tok {
			t.Errorf("decodePageToken(%q) = %q, which encodes to %q", tok, id, got)
		}
		if _, err := uuid.Parse(id); err != nil {
			t.Errorf("decodePageToken(%q) = %q, not a UUID: %v", tok, id, err)
		}
	})
}
