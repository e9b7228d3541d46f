// Making, configuring, advancing and closing an engine.

package tether

import (
	"errors"
	"os"
	"regexp"
	"testing"
	"time"
)

func TestDefaultsAndOptions(t *testing.T) {
	e := newEngine(t)
	want := Config{GracePeriod: 30 * time.Second, DefaultMigrationTimeout: 5 * time.Minute}
	equal(t, "defaults", must[Config](t)(e.Config()), want)

	f := newEngine(t, WithGracePeriod(time.Minute), WithDefaultMigrationTimeout(time.Hour*2))
	equal(t, "options", must[Config](t)(f.Config()), Config{GracePeriod: time.Minute, DefaultMigrationTimeout: time.Hour})

	_, err := New(WithGracePeriod(2 * time.Hour))
	asError[*InvalidArgumentError](t, err, ErrInvalidArgument)
	_, err = New(WithDefaultMigrationTimeout(-time.Second))
	asError[*InvalidArgumentError](t, err, ErrInvalidArgument)
	_, err = New(WithManualClock(time.Unix(-1, 0)))
	asError[*InvalidArgumentError](t, err, ErrInvalidArgument)
}

func TestRunTimeSettings(t *testing.T) {
	e := newEngine(t)
	if err := e.SetGracePeriod(time.Minute); err != nil {
		t.Fatal(err)
	}
	asError[*InvalidArgumentError](t, e.SetGracePeriod(time.Hour+1), ErrInvalidArgument)
	asError[*InvalidArgumentError](t, e.SetGracePeriod(-1), ErrInvalidArgument)
	equal(t, "clamped up", must[time.Duration](t)(e.SetDefaultMigrationTimeout(time.Second)), 30*time.Second)
	equal(t, "kept", must[time.Duration](t)(e.SetDefaultMigrationTimeout(10*time.Minute)), 10*time.Minute)
	_, err := e.SetDefaultMigrationTimeout(-time.Second)
	asError[*InvalidArgumentError](t, err, ErrInvalidArgument)
	want := Config{GracePeriod: time.Minute, DefaultMigrationTimeout: 10 * time.Minute}
	equal(t, "config", must[Config](t)(e.Config()), want)

	// The new grace period governs the handoff.
	publish(t, e, "v", "a", rwo, Attached)
	unpublish(t, e, "v", "a", Detached)
	publish(t, e, "v", "a", rwo, Attached)
	advance(t, e, 45*time.Second)
	publish(t, e, "v", "b", rwo, HandedOff)
}

func TestAdvanceNeedsManualClock(t *testing.T) {
	e, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	err = e.Advance(time.Second)
	if !errors.Is(err, ErrNotManualClock) {
		t.Fatalf("Advance on the system clock: got %v", err)
	}
	asError[*InvalidArgumentError](t, newEngine(t).Advance(-time.Second), ErrInvalidArgument)
}

// Every call on a closed engine returns ErrClosed; nothing crashes.
func TestClosedEngine(t *testing.T) {
	e := newEngine(t)
	publish(t, e, "v", "a", rwo, Attached)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	for name, err := range callEverything(e) {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: got %v, want ErrClosed", name, err)
		}
	}
	if err := e.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close: got %v", err)
	}
}

// An Engine not made by New (the zero value) fails every call with an InternalError.
func TestZeroEngine(t *testing.T) {
	var e Engine
	for name, err := range callEverything(&e) {
		var internal *InternalError
		if !errors.As(err, &internal) || !errors.Is(err, ErrInternal) || internal.Message == "" {
			t.Errorf("%s on a zero Engine: got %v, want an InternalError", name, err)
		}
	}
}

// callEverything calls every method of e once, returning each error by method name.
func callEverything(e *Engine) map[string]error {
	errs := map[string]error{}
	_, errs["Publish"] = e.Publish("v", "a", rwo)
	_, errs["PublishWithTimeout"] = e.PublishWithTimeout("v", "a", rwx, time.Minute)
	_, errs["Unpublish"] = e.Unpublish("v", "a")
	_, errs["UnpublishAll"] = e.UnpublishAll("v")
	_, errs["ClearStale"] = e.ClearStale("v", "a")
	_, errs["IsWithinGracePeriod"] = e.IsWithinGracePeriod("v", time.Second)
	_, _, errs["DetachTimestamp"] = e.DetachTimestamp("v")
	_, errs["ClearDetachTimestamp"] = e.ClearDetachTimestamp("v")
	_, _, errs["Get"] = e.Get("v")
	_, errs["Epoch"] = e.Epoch("v")
	_, errs["List"] = e.List()
	_, errs["AttachedCount"] = e.AttachedCount()
	_, errs["Stats"] = e.Stats()
	_, errs["Reconcile"] = e.Reconcile([]string{"a"})
	_, errs["Snapshot"] = e.Snapshot()
	errs["Restore"] = e.Restore([]byte("{}"))
	_, errs["Config"] = e.Config()
	errs["SetGracePeriod"] = e.SetGracePeriod(time.Second)
	_, errs["SetDefaultMigrationTimeout"] = e.SetDefaultMigrationTimeout(time.Minute)
	errs["Advance"] = e.Advance(time.Second)
	_, _, errs["Fence"] = e.Fence("v")
	_, errs["SetTerm"] = e.SetTerm(1)
	_, errs["Term"] = e.Term()
	_, errs["Refence"] = e.Refence()
	_, errs["Forget"] = e.Forget("v")
	return errs
}

// The library's version is the workspace's.
func TestVersion(t *testing.T) {
	manifest, err := os.ReadFile("../../Cargo.toml")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^version\s*=\s*"([^"]+)"`).FindSubmatch(manifest)
	if m == nil {
		t.Fatal("no version in Cargo.toml")
	}
	equal(t, "version", Version(), string(m[1]))
}
