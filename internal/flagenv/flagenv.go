// Package flagenv binds command-line flags to environment variables: every
// flag has an environment equivalent, a flag given on the command line wins
// over the environment, and the environment wins over the default.
package flagenv

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Set is a flag set whose flags have environment equivalents.
type Set struct {
	fs     *flag.FlagSet
	env    map[string]string // flag name → env var
	secret map[string]bool   // never print the value
	lookup func(string) (string, bool)
	about  string
}

// New returns a set for one subcommand; about is printed atop --help.
func New(name, about string) *Set {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	s := &Set{fs: fs, env: map[string]string{}, secret: map[string]bool{}, lookup: os.LookupEnv, about: about}
	fs.Usage = func() { s.PrintUsage(fs.Output()) }
	return s
}

// SetLookup replaces os.LookupEnv (for tests).
func (s *Set) SetLookup(f func(string) (string, bool)) { s.lookup = f }

// FlagSet exposes the underlying flag set.
func (s *Set) FlagSet() *flag.FlagSet { return s.fs }

func (s *Set) bind(name, env string) {
	if env != "" {
		s.env[name] = env
	}
}

// String defines a string flag.
func (s *Set) String(p *string, name, env, def, usage string) {
	s.fs.StringVar(p, name, def, usage)
	s.bind(name, env)
}

// Secret defines a string flag whose value is never shown in help or errors.
func (s *Set) Secret(p *string, name, env, usage string) {
	s.fs.StringVar(p, name, "", usage)
	s.bind(name, env)
	s.secret[name] = true
}

// Int defines an int flag.
func (s *Set) Int(p *int, name, env string, def int, usage string) {
	s.fs.IntVar(p, name, def, usage)
	s.bind(name, env)
}

// Int64 defines an int64 flag.
func (s *Set) Int64(p *int64, name, env string, def int64, usage string) {
	s.fs.Int64Var(p, name, def, usage)
	s.bind(name, env)
}

// Float defines a float64 flag.
func (s *Set) Float(p *float64, name, env string, def float64, usage string) {
	s.fs.Float64Var(p, name, def, usage)
	s.bind(name, env)
}

// Bool defines a bool flag.
func (s *Set) Bool(p *bool, name, env string, def bool, usage string) {
	s.fs.BoolVar(p, name, def, usage)
	s.bind(name, env)
}

// Duration defines a duration flag.
func (s *Set) Duration(p *time.Duration, name, env string, def time.Duration, usage string) {
	s.fs.DurationVar(p, name, def, usage)
	s.bind(name, env)
}

// List defines a comma-separated list flag.
func (s *Set) List(p *[]string, name, env string, def []string, usage string) {
	*p = def
	s.fs.Func(name, usage, func(v string) error {
		*p = SplitList(v)
		return nil
	})
	s.bind(name, env)
}

// SplitList splits a comma-separated list, dropping empty items.
func SplitList(v string) []string {
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// Parse parses args, then fills every flag not given on the command line
// from its environment variable.
func (s *Set) Parse(args []string) error {
	if err := s.fs.Parse(args); err != nil {
		return err
	}
	given := map[string]bool{}
	s.fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	names := make([]string, 0, len(s.env))
	for name := range s.env {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if given[name] {
			continue
		}
		env := s.env[name]
		v, ok := s.lookup(env)
		if !ok {
			continue
		}
		if err := s.fs.Set(name, v); err != nil {
			if s.secret[name] {
				return fmt.Errorf("environment %s: invalid value", env)
			}
			return fmt.Errorf("environment %s=%q: %v", env, v, err)
		}
	}
	return nil
}

// Args returns the positional arguments left after parsing.
func (s *Set) Args() []string { return s.fs.Args() }

// PrintUsage writes the help text: every flag with its environment variable
// and default.
func (s *Set) PrintUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: keyfleet %s [flags]\n\n%s\n\nFlags (each also read from the environment variable shown):\n", s.fs.Name(), s.about)
	s.fs.VisitAll(func(f *flag.Flag) {
		line := "  --" + f.Name
		if env, ok := s.env[f.Name]; ok {
			line += "  (env " + env + ")"
		}
		fmt.Fprintln(w, line)
		fmt.Fprintf(w, "        %s", f.Usage)
		if def := f.DefValue; def != "" && def != "[]" && !s.secret[f.Name] {
			if _, err := strconv.ParseBool(def); err == nil && def == "false" {
				fmt.Fprintln(w)
				return
			}
			fmt.Fprintf(w, " (default %s)", def)
		}
		fmt.Fprintln(w)
	})
}
