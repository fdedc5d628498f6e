// Package cli is what every binary of the project does the same way: one table of
// settings per command, each a flag and the environment variable that gives its default
// (the flag wins), the -h it prints, NAME or NAME_FILE secrets, and one exit-code
// convention (see Exit). It uses the standard library only.
//
// A command declares its settings once:
//
//	cmd := cli.Command{Name: "service1", Settings: []cli.Setting{
//		{Flag: "addr", Env: "ADDR", Default: ":8080", Usage: "listen address", Set: cli.Addr(&c.Addr)},
//	}}
//	if err := cmd.Parse(args, getenv, stdout); err != nil { return err }
//
// Parse applies the defaults, then the environment, then the flags, and reports every bad
// value at once in a *UsageError naming the flag or the variable.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
)

// Setting is one row of a command's settings table.
type Setting struct {
	// Flag is the flag's name without its dash; "" for a setting that is an
	// environment variable only.
	Flag string
	// Env is the environment variable whose value is the flag's default; "" for a
	// flag only. With Secret, Env names the secret and Env_FILE a file holding it.
	Env string
	// Default is the value when neither the flag nor Env is set, as a user would
	// write it: Parse passes it to Set before anything else. "" means no default.
	Default string
	// DefaultText is shown in -h instead of Default when the default is not a value
	// (e.g. "host name"); then Set is not called with a default.
	DefaultText string
	// Usage says what the setting means, for -h.
	Usage string
	// Bool makes the flag one that takes no value (-check, -healthcheck=false).
	Bool bool
	// Secret reads the value from Env or from the file named by Env_FILE (a Docker
	// secret under /run/secrets), never from a flag; with Flag set, the flag names
	// the file. See ReadSecret.
	Secret bool
	// Set parses v and stores it. Its error says what to write instead; Parse adds
	// which flag or variable held v (for a Secret, whose value must never show, Set's
	// error is the whole message, and Set is called with "" when the secret is unset).
	// A nil Set documents a setting the command reads itself.
	Set func(v string) error
}

// Command is a binary's name, its settings and the text around them in -h.
type Command struct {
	// Name is the command as the user types it ("service1", "proxy", "make run"):
	// it starts -h and the hints of the error messages.
	Name string
	// Intro is printed by -h after the usage line and before the table.
	Intro string
	// Settings in the order -h lists them.
	Settings []Setting
	// Footer is printed by -h after the table: configuration keys, signals.
	Footer string
	// ArgsHint is added to the error for a stray argument, e.g. "settings are
	// variables, e.g. make lab CLIENTS=30".
	ArgsHint string
}

// UsageError is a bad flag, environment variable or configuration: the binary exits
// ExitUsage. Its text names every bad setting and how to fix it.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usage returns a *UsageError joining errs, or nil when every err is nil.
func Usage(errs ...error) error {
	if err := errors.Join(errs...); err != nil {
		return &UsageError{err}
	}
	return nil
}

// Parse reads the settings from args (flags) and getenv (the environment): the
// defaults first, then every variable that is set and not empty, then the flags, so
// a flag wins over its variable (and a good flag hides a bad variable). Every bad value
// is reported together in a *UsageError, in table order. -h or -help print the table
// to help and give flag.ErrHelp.
func (c *Command) Parse(args []string, getenv func(string) string, help io.Writer) error {
	for _, s := range c.Settings {
		if s.Default != "" && s.DefaultText == "" && s.Set != nil && !s.Secret {
			if err := s.Set(s.Default); err != nil {
				panic(fmt.Sprintf("cli: %s: bad default %q for %s: %v", c.Name, s.Default, s.name(), err))
			}
		}
	}

	envErrs := map[int]error{}
	for i, s := range c.Settings {
		if s.Env == "" || s.Set == nil || s.Secret {
			continue
		}
		if v := getenv(s.Env); v != "" {
			if err := s.Set(v); err != nil {
				envErrs[i] = fmt.Errorf("%s=%q: %w", s.Env, v, err)
			}
		}
	}

	fs := flag.NewFlagSet(c.Name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors come back in the UsageError, -h is printed below
	fs.Usage = func() {}
	secretFiles := map[int]*string{}
	for i, s := range c.Settings {
		switch {
		case s.Flag == "":
		case s.Secret:
			file := getenv(s.Env + "_FILE")
			secretFiles[i] = &file
			fs.StringVar(&file, s.Flag, file, s.Usage)
		default:
			fs.Var(flagValue{s}, s.Flag, s.Usage)
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			c.PrintHelp(help)
			return flag.ErrHelp
		}
		return &UsageError{fmt.Errorf("%w (run %s -h to list the settings)", err, c.Name)}
	}
	if fs.NArg() > 0 {
		hint := c.ArgsHint
		if hint == "" {
			hint = "run " + c.Name + " -h to list the settings"
		}
		return &UsageError{fmt.Errorf("unexpected argument %q; %s", fs.Arg(0), hint)}
	}
	fs.Visit(func(f *flag.Flag) { // the flag wins over its variable
		for i, s := range c.Settings {
			if s.Flag == f.Name {
				delete(envErrs, i)
			}
		}
	})

	var errs []error
	for i, s := range c.Settings {
		if err, ok := envErrs[i]; ok {
			errs = append(errs, err)
		}
		if !s.Secret || s.Set == nil {
			continue
		}
		file := getenv(s.Env + "_FILE")
		if f, ok := secretFiles[i]; ok {
			file = *f
		}
		v, err := ReadSecret(s.Env, getenv(s.Env), file)
		if err == nil {
			err = s.Set(v) // "" too: the command decides whether the secret is required
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return Usage(errs...)
}

func (s Setting) name() string {
	if s.Flag != "" {
		return "-" + s.Flag
	}
	return s.Env
}

// flagValue makes a Setting a flag.Value. String shows nothing: -h prints its own table.
type flagValue struct{ s Setting }

func (f flagValue) String() string { return "" }
func (f flagValue) Set(v string) error {
	if f.s.Set == nil {
		return nil
	}
	return f.s.Set(v)
}
func (f flagValue) IsBoolFlag() bool { return f.s.Bool }

// PrintHelp writes what -h shows: the usage line, Intro, the table of settings (flag,
// variable, default, meaning) and Footer.
func (c *Command) PrintHelp(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s [flags]\n\n", c.Name)
	if c.Intro != "" {
		fmt.Fprintf(w, "%s\n\n", strings.TrimRight(c.Intro, "\n"))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  FLAG\tENV\tDEFAULT\tMEANING")
	for _, s := range c.Settings {
		flagName, env, def := "(env only)", s.Env, s.Default
		if s.Flag != "" {
			flagName = "-" + s.Flag
		}
		if s.Secret {
			env = s.Env + ", " + s.Env + "_FILE"
		}
		if env == "" {
			env = "-"
		}
		if s.DefaultText != "" {
			def = s.DefaultText
		}
		if def == "" {
			def = "(none)"
		}
		lines := strings.Split(s.Usage, "\n")
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", flagName, env, def, lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintf(tw, "  \t\t\t%s\n", l)
		}
	}
	tw.Flush()
	if c.Footer != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimRight(c.Footer, "\n"))
	}
}

// ReadSecret returns the secret called name: value when it is set, else the content of
// file (a final newline, as echo and editors write, is not part of it), else "". Both
// set is an error: the user must say which one counts.
func ReadSecret(name, value, file string) (string, error) {
	switch {
	case value != "" && file != "":
		return "", fmt.Errorf("%s and %s_FILE are both set; set only one", name, name)
	case file == "":
		return value, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s_FILE: %w", name, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}
