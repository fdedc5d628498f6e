package cli

import (
	"errors"
	"io"
	"log/slog"
)

// Log is how a binary logs: LOG_FORMAT and LOG_LEVEL, the same settings everywhere.
type Log struct {
	Format string     // "text" or "json"
	Level  slog.Level // debug, info, warn or error
}

// Settings are the -log-format and -log-level rows of a settings table, storing into l.
func (l *Log) Settings() []Setting {
	return []Setting{
		{Flag: "log-format", Env: "LOG_FORMAT", Default: "text", Usage: "log format: text or json",
			Set: OneOf(&l.Format, "text", "json")},
		{Flag: "log-level", Env: "LOG_LEVEL", Default: "info", Usage: "log level: debug, info, warn or error",
			Set: func(v string) error {
				if err := l.Level.UnmarshalText([]byte(v)); err != nil {
					return errors.New("choose debug, info, warn or error")
				}
				return nil
			}},
	}
}

// New builds the binary's one logger, writing to w.
func (l Log) New(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: l.Level}
	if l.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
