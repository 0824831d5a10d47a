package warehouse

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/verdictlabs/verdict/pkg/readout"
)

// ErrNotFound is returned by LatestReadout when the experiment has no
// readout yet: readout.ErrNotFound, the one not-found error of every
// reader of readouts.
var ErrNotFound = readout.ErrNotFound

// Readouts are read with FINAL: a version stored twice (a retried insert)
// is one row, the last stored. The table is small, so FINAL costs little.
const (
	// The column list is spelled out for PrepareBatch on 18.16; the
	// document goes as a column value, never into the SQL text.
	insertReadout = `INSERT INTO {db:Identifier}.readouts (experiment, version, computed_at, data_through, status, label, readout)`
	latestReadout = `SELECT readout, version FROM {db:Identifier}.readouts FINAL
WHERE experiment = @experiment
ORDER BY version DESC
LIMIT 1`
	readoutHistory = `SELECT readout FROM {db:Identifier}.readouts FINAL
WHERE experiment = @experiment AND version < @before
ORDER BY version DESC
LIMIT @limit`
	latestVersions = `SELECT experiment, max(version) FROM {db:Identifier}.readouts GROUP BY experiment`
	// readoutLooks reads what each readout said, not the document:
	// candidate and candidate_status are top-level fields no nested object
	// of a readout has.
	readoutLooks = `SELECT version, status, label,
    visitParamExtractString(readout, 'candidate'), visitParamExtractString(readout, 'candidate_status')
FROM {db:Identifier}.readouts FINAL
WHERE experiment = @experiment
ORDER BY version DESC
LIMIT @limit`
)

// StoreReadout stores the readout document doc of experiment at version.
// Storing the same version again replaces it. label is "" when the readout
// has none; computedAt and dataThrough are kept to the second.
func (w *Warehouse) StoreReadout(ctx context.Context, experiment string, version uint64, computedAt, dataThrough time.Time, status, label string, doc []byte) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("store readout %d of %s: %w", version, experiment, err)
		}
	}()
	batch, err := w.conn.PrepareBatch(ctx, withDatabase(insertReadout, w.db))
	if err != nil {
		return err
	}
	defer func() {
		if !batch.IsSent() {
			batch.Abort()
		}
	}()
	if err := batch.Append(experiment, version, computedAt.UTC(), dataThrough.UTC(), status, label, string(doc)); err != nil {
		return err
	}
	return batch.Send()
}

// LatestReadout returns the document and version of the experiment's
// newest readout, or ErrNotFound.
func (w *Warehouse) LatestReadout(ctx context.Context, experiment string) ([]byte, uint64, error) {
	var (
		doc     string
		version uint64
	)
	err := w.conn.QueryRow(ctx, withDatabase(latestReadout, w.db), clickhouse.Named("experiment", experiment)).Scan(&doc, &version)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, 0, fmt.Errorf("latest readout of %s: %w", experiment, ErrNotFound)
		}
		return nil, 0, fmt.Errorf("latest readout of %s: %w", experiment, err)
	}
	return []byte(doc), version, nil
}

// ReadoutHistory returns up to limit readout documents of the experiment
// with a version below before, newest first: before 0 starts at the newest,
// and the last version returned is where the next page starts. limit ≤ 0
// means all. No readout is an empty list.
func (w *Warehouse) ReadoutHistory(ctx context.Context, experiment string, before uint64, limit int) ([][]byte, error) {
	if limit <= 0 {
		limit = 1 << 62
	}
	if before == 0 {
		before = math.MaxUint64
	}
	rows, err := w.conn.Query(ctx, withDatabase(readoutHistory, w.db),
		clickhouse.Named("experiment", experiment), clickhouse.Named("before", before), clickhouse.Named("limit", uint64(limit)))
	if err != nil {
		return nil, fmt.Errorf("readout history of %s: %w", experiment, err)
	}
	defer rows.Close()
	var docs [][]byte
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			return nil, fmt.Errorf("readout history of %s: %w", experiment, err)
		}
		docs = append(docs, []byte(doc))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("readout history of %s: %w", experiment, err)
	}
	return docs, nil
}

// ReadoutLook is what one stored readout said, without the document.
type ReadoutLook struct {
	Version                                   uint64
	Status, Label, Candidate, CandidateStatus string
}

// ReadoutLooks returns what the newest limit readouts of experiment said,
// newest first: a timeline of changes reads these, and only the documents
// of the changes.
func (w *Warehouse) ReadoutLooks(ctx context.Context, experiment string, limit int) ([]ReadoutLook, error) {
	rows, err := w.conn.Query(ctx, withDatabase(readoutLooks, w.db), clickhouse.Named("experiment", experiment), clickhouse.Named("limit", uint64(limit)))
	if err != nil {
		return nil, fmt.Errorf("readout looks of %s: %w", experiment, err)
	}
	defer rows.Close()
	var out []ReadoutLook
	for rows.Next() {
		var l ReadoutLook
		if err := rows.Scan(&l.Version, &l.Status, &l.Label, &l.Candidate, &l.CandidateStatus); err != nil {
			return nil, fmt.Errorf("readout looks of %s: %w", experiment, err)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("readout looks of %s: %w", experiment, err)
	}
	return out, nil
}

// LatestVersions returns the newest readout version of every experiment
// that has one, so a restarted rules service continues the versions.
func (w *Warehouse) LatestVersions(ctx context.Context) (map[string]uint64, error) {
	rows, err := w.conn.Query(ctx, withDatabase(latestVersions, w.db))
	if err != nil {
		return nil, fmt.Errorf("latest readout versions: %w", err)
	}
	defer rows.Close()
	out := make(map[string]uint64)
	for rows.Next() {
		var (
			experiment string
			version    uint64
		)
		if err := rows.Scan(&experiment, &version); err != nil {
			return nil, fmt.Errorf("latest readout versions: %w", err)
		}
		out[experiment] = version
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("latest readout versions: %w", err)
	}
	return out, nil
}
