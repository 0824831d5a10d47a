package main

import (
	"io"

	"github.com/verdictlabs/verdict/pkg/readout"
	"github.com/verdictlabs/verdict/pkg/report"
)

// printEmail writes the email that r would send to its owners, as the
// notifier renders it.
func printEmail(w io.Writer, r readout.Readout, from, baseURL string) error {
	msg, err := report.RenderEmail(r, report.EmailOptions{From: from, BaseURL: baseURL})
	if err != nil {
		return err
	}
	_, err = w.Write(msg)
	return err
}
