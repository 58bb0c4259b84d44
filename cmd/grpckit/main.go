// Command grpckit is grpckit's developer tool.
//
//	grpckit new <module path>   create a standalone project with its first service
//	grpckit add <name>          add a service to the project
//	grpckit dev                 run the project's local stack: Consul and every service
//	grpckit token               print a dev token for the stack's secret
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: grpckit <command> [flags]

commands:
  new <module path>   create a standalone project in a folder named after the path's
                      last element, with its first service (grpckit new -h for details)
  add <name>          add the service <name> to the project this runs in: proto,
                      generated code, handler and test, main, Dockerfile, compose
                      and grpckit.yaml entries (grpckit add -h)
  dev                 run the project's local stack in the foreground: Consul and
                      every service of grpckit.yaml; Ctrl-C stops it (grpckit dev -h)
  token               print a bearer token signed with $GRPCKIT_AUTH_HMAC_SECRET, the
                      secret a stack's services share (grpckit token -h)
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C kills the process the default way
	}()
	var err error
	switch os.Args[1] {
	case "new":
		err = runNew(ctx, os.Args[2:], os.Stdout, os.Stderr)
	case "add":
		err = runAdd(ctx, os.Args[2:], os.Stdout, os.Stderr)
	case "dev":
		err = runDev(ctx, os.Args[2:])
	case "token":
		err = runToken(os.Args[2:], osLookup, os.Stdout, os.Stderr)
	case "help", "-h", "--help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "grpckit: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "grpckit %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
