package gateway

import (
	"bytes"
	_ "embed"
	"encoding/json"
)

// openAPISource is the OpenAPI 3 document of the routes, served compacted
// at GET /openapi.json. TestOpenAPI checks that it documents every route
// and no other, with the proto messages' fields.
//
//go:embed openapi.json
var openAPISource []byte

// openAPIDocument is openAPISource without white space.
var openAPIDocument = func() []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, openAPISource); err != nil {
		panic("gateway: openapi.json is not valid JSON: " + err.Error())
	}
	return buf.Bytes()
}()
