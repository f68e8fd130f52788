package main

import (
	"flag"
	"fmt"
	"os"
)

// envFlags sets every flag of fs not given on the command line from its
// environment variable J1DS_<NAME> (upper case, '-' as '_'), except the
// flags named in commandLineOnly.
func envFlags(fs *flag.FlagSet, args []string, commandLineOnly ...string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	given := map[string]bool{}
	for _, name := range commandLineOnly {
		given[name] = true
	}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		name := envName(f.Name)
		if v, ok := os.LookupEnv(name); ok {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%w: %s=%q: %v", errUsage, name, v, e)
			}
		}
	})
	return err
}

func envName(flagName string) string {
	b := []byte("J1DS_" + flagName)
	for i, c := range b {
		switch {
		case c == '-':
			b[i] = '_'
		case c >= 'a' && c <= 'z':
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
