// Command grpckit is grpckit's developer tool.
//
//	grpckit new NAME   scaffold a service: proto, generated code, handler, tests, command, Dockerfile, compose entry
//	grpckit dev        run the local stack: Consul, 2 user and 2 greeter instances
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
  new <name> [-dir DIR]   scaffold the service <name> in the grpckit module at DIR (default .):
                          proto and generated code, handler and tests, command, Dockerfile,
                          docker-compose entry (grpckit new -h for details)
  dev                     run the local stack (Consul, 2 user and 2 greeter instances) in the foreground
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
	case "dev":
		err = runDev(ctx, os.Args[2:])
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
