package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/grpckit/grpckit/kit/middleware/auth"
)

// secretEnv is where the services of a stack, and grpckit token, find the
// stack's HMAC secret.
const secretEnv = "GRPCKIT_AUTH_HMAC_SECRET"

// runToken prints an HS256 token signed with the secret of $GRPCKIT_AUTH_HMAC_SECRET,
// for the services of a stack that share it (compose, or scripts).
func runToken(args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("grpckit token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sub := fs.String("sub", "dev", "the token's subject: a user id to act as that user")
	admin := fs.Bool("admin", true, "add the claim admin: true (may change every user)")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
	iss := fs.String("iss", "", "the iss claim, when the services check auth.issuer")
	aud := fs.String("aud", "", "the aud claim, when the services check auth.audience")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: %s=... grpckit token [flags]\n\nPrints a bearer token (HS256) signed with the stack's secret, from the\nenvironment only (a command line is public on its host).\n\n", secretEnv)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	secret, ok := lookup(secretEnv)
	if !ok || secret == "" {
		return errors.New(secretEnv + " is not set: give the secret the services check tokens with (docker-compose.yml's default, or your own)")
	}
	var opts []auth.IssueOption
	if *admin {
		opts = append(opts, auth.WithClaim(auth.AdminClaim, true))
	}
	if *iss != "" {
		opts = append(opts, auth.WithIssuer(*iss))
	}
	if *aud != "" {
		opts = append(opts, auth.WithAudience(*aud))
	}
	tok, err := auth.IssueHS256(secret, *sub, *ttl, opts...)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}

// osLookup is os.LookupEnv, for runToken.
var osLookup = os.LookupEnv
