package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// setUsage makes fs's usage message the command's synopsis, notes, the
// names of its flags and their help. flag prints it after its own message
// for an unknown flag or a bad value, so that both name the allowed flags.
func setUsage(fs *flag.FlagSet, stderr io.Writer, synopsis string, notes ...string) {
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: %s\n", synopsis)
		for _, n := range notes {
			fmt.Fprintln(stderr, n)
		}
		fmt.Fprintf(stderr, "\nflags: %s\n\n", flagNames(fs))
		fs.PrintDefaults()
	}
}

// flagNames lists a command's flags, for messages.
func flagNames(fs *flag.FlagSet) string {
	var names []string
	fs.VisitAll(func(f *flag.Flag) {
		if len(f.Name) == 1 {
			names = append(names, "-"+f.Name)
		} else {
			names = append(names, "--"+f.Name)
		}
	})
	return strings.Join(names, ", ")
}

// parseFlags parses the flags of a command. false: stop with the exit code,
// exitOK after -h, exitUsage after an unknown flag or a bad value (flag has
// printed the message and the usage).
func parseFlags(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false
	}
	return exitOK, true
}
