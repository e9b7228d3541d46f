// The Engine: making and closing one, its clock, and its run-time settings.

package tether

/*
#include "shim.h"
*/
import "C"

import (
	"runtime"
	"sync/atomic"
	"time"
)

// Engine is one attachment engine. Every method is safe for concurrent use by any number of
// goroutines. Make one with [New]; call [Engine.Close] when done with it.
type Engine struct {
	h      C.tg_engine
	closed atomic.Bool
}

// An Option adjusts a new engine's settings or clock.
type Option func(*options)

type options struct {
	config C.tether_config
	manual bool
	wall   time.Time
	err    error
}

// WithGracePeriod sets the grace period (default 30 s; at most 1 h).
func WithGracePeriod(d time.Duration) Option {
	return func(o *options) { o.config.grace_period_ns = o.nanos(d, "grace period") }
}

// WithDefaultMigrationTimeout sets the timeout of migrations started without one of their own
// (default 5 min; clamped into 30 s .. 1 h).
func WithDefaultMigrationTimeout(d time.Duration) Option {
	return func(o *options) { o.config.default_migration_timeout_ns = o.nanos(d, "migration timeout") }
}

// WithManualClock runs the engine on a clock that moves only through [Engine.Advance],
// starting at wall-clock time wall: for tests and replays, which then never sleep.
func WithManualClock(wall time.Time) Option {
	return func(o *options) { o.manual, o.wall = true, wall }
}

// nanos converts d, keeping the first error for New to return.
func (o *options) nanos(d time.Duration, what string) C.uint64_t {
	ns, err := nanos(d, what)
	if o.err == nil {
		o.err = err
	}
	return ns
}

// New makes an engine with the library's default settings, adjusted by opts.
func New(opts ...Option) (*Engine, error) {
	var o options
	if f := C.tg_config_default(&o.config); f != nil {
		return nil, failed(f, "", "")
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.err != nil {
		return nil, o.err
	}
	wall := C.uint64_t(0)
	if o.manual {
		ns := o.wall.UnixNano()
		if o.wall.Before(time.Unix(0, 0)) {
			return nil, &InvalidArgumentError{Message: "invalid manual clock start: " + o.wall.String() +
				" is before the Unix epoch"}
		}
		wall = C.uint64_t(ns)
	}
	var h C.tg_engine
	if f := C.tg_new(&o.config, C.bool(o.manual), wall, &h); f != nil {
		return nil, failed(f, "", "")
	}
	e := &Engine{h: h}
	// The library's memory is released only when no goroutine can still reach the engine, so
	// a Close racing with calls on other goroutines can never free memory under them, and the
	// hot paths need no reference count.
	runtime.AddCleanup(e, func(h C.tg_engine) { C.tg_free(h) }, e.h)
	return e, nil
}

// Close marks the engine closed: every later call returns [ErrClosed], and so does a second
// Close. The library's memory is released once the Engine is unreachable.
func (e *Engine) Close() error {
	if !e.closed.CompareAndSwap(false, true) {
		return ErrClosed
	}
	return nil
}

// handle is the library handle, or ErrClosed.
func (e *Engine) handle() (C.tg_engine, error) {
	if e.closed.Load() {
		return 0, ErrClosed
	}
	return e.h, nil
}

// check finishes a library call on the engine: it keeps the engine reachable until the call
// has returned (its memory is freed only once it is unreachable), and maps a failure.
func (e *Engine) check(f *C.tg_failure, volume, node string) error {
	runtime.KeepAlive(e)
	if f == nil {
		return nil
	}
	return failed(f, volume, node)
}

// Advance moves a manual clock forward by d. It fails with an error matching
// [ErrNotManualClock] for an engine on the system clock.
func (e *Engine) Advance(d time.Duration) error {
	ns, err := nanos(d, "clock step")
	if err != nil {
		return err
	}
	h, err := e.handle()
	if err != nil {
		return err
	}
	return e.check(C.tg_advance(h, ns), "", "")
}

// Config reads the current settings.
func (e *Engine) Config() (Config, error) {
	var c C.tether_config
	h, err := e.handle()
	if err != nil {
		return Config{}, err
	}
	err = e.check(C.tg_config(h, &c), "", "")
	return Config{
		GracePeriod:             duration(c.grace_period_ns),
		DefaultMigrationTimeout: duration(c.default_migration_timeout_ns),
	}, err
}

// SetGracePeriod changes the grace period for later calls; above one hour is refused and
// nothing changes.
func (e *Engine) SetGracePeriod(d time.Duration) error {
	ns, err := nanos(d, "grace period")
	if err != nil {
		return err
	}
	h, err := e.handle()
	if err != nil {
		return err
	}
	return e.check(C.tg_set_grace_period(h, ns), "", "")
}

// SetDefaultMigrationTimeout changes the timeout of migrations started later without one of
// their own; it is clamped into 30 s .. 1 h and the effective value returned.
func (e *Engine) SetDefaultMigrationTimeout(d time.Duration) (time.Duration, error) {
	ns, err := nanos(d, "migration timeout")
	if err != nil {
		return 0, err
	}
	var effective C.uint64_t
	h, err := e.handle()
	if err != nil {
		return 0, err
	}
	err = e.check(C.tg_set_default_migration_timeout(h, ns, &effective), "", "")
	return duration(effective), err
}
