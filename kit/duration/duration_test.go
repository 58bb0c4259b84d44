package duration

import (
	"encoding/json"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestTextJSONAndYAML(t *testing.T) {
	var v struct {
		D Duration `json:"d" yaml:"d"`
	}
	if err := json.Unmarshal([]byte(`{"d":"1.5s"}`), &v); err != nil || time.Duration(v.D) != 1500*time.Millisecond {
		t.Fatalf("JSON: %v, %v", v.D, err)
	}
	if err := json.Unmarshal([]byte(`{"d":15}`), &v); err == nil {
		t.Error("JSON accepted a number")
	}
	if err := yaml.Unmarshal([]byte("d: 250ms"), &v); err != nil || time.Duration(v.D) != 250*time.Millisecond {
		t.Fatalf("YAML: %v, %v", v.D, err)
	}
	if err := yaml.Unmarshal([]byte("d: soon"), &v); err == nil {
		t.Error("YAML accepted soon")
	}
	b, err := json.Marshal(v)
	if err != nil || string(b) != `{"d":"250ms"}` {
		t.Errorf("Marshal = %s, %v", b, err)
	}
}
