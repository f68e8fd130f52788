package pgstore

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// Unavailable reports whether err, returned by a Store, means that the
// database could not be reached or went away during the operation: the
// server is down, restarting or refusing connections, the network between
// them failed, or the database did not answer in time. Such an operation
// may succeed when tried again later; the pool reconnects by itself. A
// write that failed this way while committing may have been committed.
//
// Errors the database answered (a constraint, a missing table, a wrong
// password, a newer schema) are not unavailability.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"): // connection exception
			return true
		case pe.Code == "57P01", // admin_shutdown
			pe.Code == "57P02", // crash_shutdown
			pe.Code == "57P03", // cannot_connect_now: starting up, recovering
			pe.Code == "53300": // too_many_connections
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	switch {
	case errors.As(err, &ce):
		// A connection attempt that failed without an answer from the
		// server; one it answered with an error was a PgError above.
		return true
	case errors.Is(err, pgconn.ErrConnClosed),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE),
		errors.Is(err, context.DeadlineExceeded),
		pgconn.Timeout(err),
		pgconn.SafeToRetry(err),
		errors.As(err, &ne):
		return true
	}
	return false
}
