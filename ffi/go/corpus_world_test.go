// One corpus scenario's world over this package: an engine on a manual clock, each step
// applied to it, the invariants checked after every step.

package tether

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

type world struct {
	t   *testing.T
	e   *Engine
	now time.Time
}

func newWorld(t *testing.T, wall time.Time, snapshot []byte) *world {
	e, err := New(WithManualClock(wall))
	if err != nil {
		t.Fatal(err)
	}
	if snapshot != nil {
		if err := e.Restore(snapshot); err != nil {
			t.Fatal(err)
		}
	}
	return &world{t, e, wall}
}

func (w *world) step(s any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	f := newFields(s, "step")
	f.opt("note")
	want := f.opt("expect")
	before, _ := w.e.Snapshot()
	got := w.apply(f.get("op").(string), f)
	f.finish()
	_, refused := got["error"]
	if after, _ := w.e.Snapshot(); refused && !bytes.Equal(before, after) {
		return fmt.Errorf("refused with %v, but the state changed", got)
	}
	if err := w.invariants(); err != nil {
		return err
	}
	if want == nil {
		if refused {
			return fmt.Errorf("no error expected, got %v", got)
		}
		return nil
	}
	if _, wantsError := want.(obj)["error"]; refused && !wantsError {
		return fmt.Errorf("expected %v, refused with %v", want, got)
	}
	return subset(want, any(got), "expect")
}

func (w *world) invariants() error {
	list, err := w.e.List()
	if err != nil {
		return err
	}
	for _, a := range list {
		limit := 1
		if a.Access.Mode == RWX {
			limit = 2
		}
		f, ok, err := w.e.Fence(a.Volume)
		if len(a.Nodes) > limit || err != nil || !ok || f.Epoch != a.Epoch || len(f.Nodes) != len(a.Nodes) {
			return fmt.Errorf("invariant broken: %s is %v on %v, fence %v", a.Volume, a.Access, a.Nodes, f)
		}
		for i, n := range f.Nodes {
			if n.Node != a.Nodes[i] {
				return fmt.Errorf("invariant broken: fence %v of %s does not match %v", f, a.Volume, a.Nodes)
			}
		}
	}
	return nil
}

func outcome[T any](r T, err error, requested Access, shape func(T) obj) obj {
	if err != nil {
		return errorShape(err, requested)
	}
	return shape(r)
}

func (w *world) apply(op string, f *fieldsOf) obj {
	e := w.e
	none := Access{}
	switch op {
	case "publish":
		v, n := ident(f.get("volume")), ident(f.get("node"))
		a := Access{Mode: RWO}
		if m, _ := f.opt("mode").(string); m == "RWX" {
			a.Mode = RWX
		}
		a.ReadOnly, _ = f.opt("readonly").(bool)
		if t, ok := f.opt("timeout_s").(json.Number); ok {
			s, _ := t.Float64()
			r, err := e.PublishWithTimeout(v, n, a, seconds(s))
			return outcome(r, err, a, publishedShape)
		}
		r, err := e.Publish(v, n, a)
		return outcome(r, err, a, publishedShape)
	case "unpublish":
		v := ident(f.get("volume"))
		if n := f.opt("node"); n != nil {
			r, err := e.Unpublish(v, ident(n))
			return outcome(r, err, none, unpublishedShape)
		}
		r, err := e.UnpublishAll(v)
		return outcome(r, err, none, unpublishedShape)
	case "clear_stale":
		v, n := ident(f.get("volume")), ident(f.get("node"))
		r, err := e.ClearStale(v, n)
		return outcome(r, err, none, func(r StaleResult) obj { return staleShape(r, n) })
	case "reconcile":
		var live []string
		for _, n := range f.get("live").([]any) {
			live = append(live, ident(n))
		}
		r, err := e.Reconcile(live)
		return outcome(r, err, none, reconciledShape)
	case "advance":
		d := seconds(f.num("seconds"))
		if err := e.Advance(d); err != nil {
			panic(err)
		}
		w.now = w.now.Add(d)
		return obj{}
	}
	return w.applyMore(op, f)
}

func (w *world) applyMore(op string, f *fieldsOf) obj {
	e, none := w.e, Access{}
	switch op {
	case "set_grace":
		return outcome(struct{}{}, e.SetGracePeriod(seconds(f.num("seconds"))), none, func(struct{}) obj { return obj{} })
	case "set_migration_timeout":
		d, err := e.SetDefaultMigrationTimeout(seconds(f.num("seconds")))
		return outcome(d, err, none, func(d time.Duration) obj { return obj{"timeout_s": secs(d)} })
	case "set_term":
		t, err := e.SetTerm(f.uint("term"))
		return outcome(t, err, none, func(t uint64) obj { return obj{"term": t} })
	case "refence":
		r, err := e.Refence()
		return outcome(r, err, none, func(r []VolumeFence) obj {
			fences := []any{}
			for _, vf := range r {
				fences = append(fences, obj{"volume": vf.Volume, "fence": fenceShape(vf.Fence)})
			}
			return obj{"fences": fences}
		})
	case "forget":
		b, err := e.Forget(ident(f.get("volume")))
		return outcome(b, err, none, func(b bool) obj { return obj{"forgotten": b} })
	case "clear_detach":
		b, err := e.ClearDetachTimestamp(ident(f.get("volume")))
		return outcome(b, err, none, func(b bool) obj { return obj{"cleared": b} })
	case "snapshot_restore":
		doc, err := e.Snapshot()
		if err != nil {
			panic(err)
		}
		e.Close()
		*w = *newWorld(w.t, w.now, doc)
		return obj{}
	case "restore":
		doc, text := f.opt("document"), f.opt("text")
		body := []byte(fmt.Sprint(text))
		if doc != nil {
			body, _ = json.Marshal(doc)
		}
		return outcome(struct{}{}, e.Restore(body), none, func(struct{}) obj { return obj{} })
	case "session", "supersedes":
		return w.fenceRule(op, f)
	case "check":
		return w.check(ident(f.get("volume")), f.opt("grace_s"))
	case "stats":
		s, err := e.Stats()
		return outcome(s, err, none, statsShape)
	}
	panic(fmt.Sprintf("unknown step %q", op))
}

// fenceRule: the package takes an applied epoch always; "never applied" (null) is 0, which
// no tracked volume's fence has.
func (w *world) fenceRule(op string, f *fieldsOf) obj {
	v := ident(f.get("volume"))
	var check func(Fence) error
	if op == "session" {
		n, presented := ident(f.get("node")), f.uint("presented")
		check = func(fc Fence) error { return fc.CheckSession(v, n, presented) }
	} else {
		applied := uint64(0)
		if a, ok := f.opt("applied").(json.Number); ok {
			applied = mustUint(a.String())
		}
		check = func(fc Fence) error { return fc.CheckSupersedes(v, applied) }
	}
	fc, ok, err := w.e.Fence(v)
	if err != nil {
		return errorShape(err, Access{})
	}
	if !ok {
		return obj{"error": "Untracked"}
	}
	return outcome(struct{}{}, check(fc), Access{}, func(struct{}) obj { return obj{"ok": true} })
}

func (w *world) check(v string, graceS any) obj {
	e := w.e
	cfg, err := e.Config()
	if err != nil {
		panic(err)
	}
	grace := cfg.GracePeriod
	if g, ok := graceS.(json.Number); ok {
		s, _ := g.Float64()
		grace = seconds(s)
	}
	fail := func(err error) obj { return errorShape(err, Access{}) }
	a, attached, err := e.Get(v)
	if err != nil {
		return fail(err)
	}
	fc, fenced, err := e.Fence(v)
	if err != nil {
		return fail(err)
	}
	d, detached, err := e.DetachTimestamp(v)
	if err != nil {
		return fail(err)
	}
	within, err := e.IsWithinGracePeriod(v, grace)
	if err != nil {
		return fail(err)
	}
	epoch, err := e.Epoch(v)
	if err != nil {
		return fail(err)
	}
	o := obj{"nodes": nil, "access": nil, "admitted": nil, "migration": nil, "fence": nil, "detach": nil,
		"epoch": epoch, "within_grace": within}
	if attached {
		admitted := []any{}
		for _, x := range a.Admitted {
			admitted = append(admitted, x)
		}
		o["nodes"], o["access"], o["admitted"] = strs(a.Nodes), accessName(a.Access), admitted
		if a.Migration != nil {
			o["migration"] = obj{"elapsed_s": secs(a.Migration.Elapsed), "timeout_s": secs(a.Migration.Timeout)}
		}
	}
	if fenced {
		o["fence"] = fenceShape(fc)
	}
	if detached {
		o["detach"] = obj{"node": d.Node, "age_s": secs(d.Age)}
	}
	return o
}
