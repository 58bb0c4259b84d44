package balancer

import (
	"reflect"
	"regexp"
	"testing"
)

// One tag set serves the service config (JSON) and kit/config's balancer
// section (YAML): every field has the same snake_case key in both.
func TestConfigKeysSameInJSONAndYAML(t *testing.T) {
	snake := regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	typ := reflect.TypeFor[Config]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		if !f.IsExported() || f.Anonymous {
			continue
		}
		js, yml := f.Tag.Get("json"), f.Tag.Get("yaml")
		if js != yml || !snake.MatchString(js) {
			t.Errorf("Config.%s: json key %q, yaml key %q; want one snake_case key", f.Name, js, yml)
		}
	}
}
