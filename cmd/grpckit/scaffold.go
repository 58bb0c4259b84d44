package main

import (
	"bytes"
	"embed"
	"fmt"
	"go/format"
	"path"
	"strings"
	"text/template"

	"golang.org/x/mod/modfile"
)

// templates holds the files `grpckit new` and `grpckit add` write, as text/template sources
// executed with a [scaffoldData] (templates/project/ with a [projectData]).
// templates/project/pre-annotations/ holds the buf files as grpckit wrote
// them before projects vendored the google.api.http annotations, which
// `grpckit add` upgrades.
//
//go:embed templates/*.tmpl templates/project/*.tmpl templates/project/pre-annotations/*.tmpl
var templates embed.FS

// scaffoldData is what the templates see.
type scaffoldData struct {
	Name      string // service name, e.g. "orders"; also the Go package and the config section
	Title     string // Name with a capital first letter: the config field, e.g. "Orders"
	Service   string // proto service, e.g. "OrdersService"
	GoPkg     string // Go package of the generated code, e.g. "ordersv1"
	Module    string // Go module path
	EnvPrefix string // environment prefix of the service's own section, e.g. "GRPCKIT_ORDERS"
	InRepo    bool   // the service is one of this repository's (a workspace with the kit module)
}

func newScaffoldData(module, name string, inRepo bool) scaffoldData {
	title := strings.ToUpper(name[:1]) + name[1:]
	return scaffoldData{
		Name:      name,
		Title:     title,
		Service:   title + "Service",
		GoPkg:     name + "v1",
		Module:    module,
		EnvPrefix: "GRPCKIT_" + strings.ToUpper(name),
		InRepo:    inRepo,
	}
}

// scaffoldFile is one file of a new service. Paths are slash-separated and
// relative to the module root.
type scaffoldFile struct {
	path string
	tmpl string // template under templates/; "" for the generated code
}

// serviceFiles lists the files a new service consists of, in the order
// they are written; the generated ones come after the .proto file they are
// generated from.
func serviceFiles(name string) []scaffoldFile {
	proto := path.Join("proto", name, "v1")
	svc := path.Join("services", name)
	cmd := path.Join(svc, "cmd", name)
	return []scaffoldFile{
		{path.Join(proto, name+".proto"), "service.proto.tmpl"},
		{path.Join(proto, name+".pb.go"), ""},
		{path.Join(proto, name+"_grpc.pb.go"), ""},
		{path.Join(svc, "doc.go"), "doc.go.tmpl"},
		{path.Join(svc, "server.go"), "server.go.tmpl"},
		{path.Join(svc, "server_test.go"), "server_test.go.tmpl"},
		{path.Join(cmd, "main.go"), "main.go.tmpl"},
		{path.Join(cmd, "config.go"), "config.go.tmpl"},
		{path.Join(svc, "Dockerfile"), "Dockerfile.tmpl"},
	}
}

// serviceDirs are the directories a new service owns; none may exist yet.
func serviceDirs(name string) []string {
	return []string{path.Join("proto", name), path.Join("services", name)}
}

// templateFuncs are the functions templates may call.
var templateFuncs = template.FuncMap{
	// trimv drops a version's v: v1.20.6 gives 1.20.6.
	"trimv": func(v string) string { return strings.TrimPrefix(v, "v") },
	// indent indents every non-empty line of s by n spaces.
	"indent": func(n int, s string) string {
		pad := strings.Repeat(" ", n)
		lines := strings.Split(s, "\n")
		for i, l := range lines {
			if l != "" {
				lines[i] = pad + l
			}
		}
		return strings.Join(lines, "\n")
	},
	// aclInitScript is the script of the compose stack's consul-acl-<name>
	// containers.
	"aclInitScript": func() string { return aclInitScript },
	// modpath quotes a go.mod path when it needs quotes (spaces).
	"modpath": modfile.AutoQuote,
}

// render executes the template name with data; Go sources are gofmt'ed,
// which also proves that they parse.
func render(name string, data any) ([]byte, error) {
	t, err := template.New(path.Base(name)).Option("missingkey=error").Funcs(templateFuncs).ParseFS(templates, "templates/"+name)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return nil, err
	}
	if !strings.HasSuffix(name, ".go.tmpl") {
		return b.Bytes(), nil
	}
	src, err := format.Source(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("template %s does not give valid Go: %w", name, err)
	}
	return src, nil
}
