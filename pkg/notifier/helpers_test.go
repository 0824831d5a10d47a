package notifier

import (
	"io"
	"log/slog"
)

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func slogText(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
