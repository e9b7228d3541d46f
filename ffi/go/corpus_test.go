// The contract corpus (tests/contract/*.json) run over this package: one subtest per
// scenario, the engine's invariants after every step, and an unchanged state after every
// refused step. The format is tests/contract/README.md; the outcome shapes corpus_shape_test.go.

package tether

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

var corpusStart = time.Unix(1_764_000_000, 0).UTC()

// fieldsOf is one JSON object whose every key must be read.
type fieldsOf struct {
	m    obj
	what string
	read map[string]bool
}

func newFields(v any, what string) *fieldsOf {
	m, ok := v.(obj)
	if !ok {
		panic(fmt.Sprintf("%s: not an object: %v", what, v))
	}
	return &fieldsOf{m, what, map[string]bool{}}
}

func (f *fieldsOf) opt(k string) any { f.read[k] = true; return f.m[k] }

func (f *fieldsOf) get(k string) any {
	v, ok := f.m[k]
	if !ok || v == nil {
		panic(fmt.Sprintf("%s: missing key %q", f.what, k))
	}
	f.read[k] = true
	return v
}

func (f *fieldsOf) num(k string) float64 { n, _ := f.get(k).(json.Number).Float64(); return n }
func (f *fieldsOf) uint(k string) uint64 { return mustUint(f.get(k).(json.Number).String()) }

func (f *fieldsOf) finish() {
	var unknown []string
	for k := range f.m {
		if !f.read[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		panic(fmt.Sprintf("%s: unknown keys %v", f.what, unknown))
	}
}

// ident is an identifier: a string, or {"repeat": s, "times": n}.
func ident(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	f := newFields(v, "identifier")
	s := strings.Repeat(f.get("repeat").(string), int(f.uint("times")))
	f.finish()
	return s
}

func seconds(n float64) time.Duration { return time.Duration(math.Round(n * float64(time.Second))) }

// subset: every key want names is in got with an equal value (integers exactly).
func subset(want, got any, path string) error {
	switch w := want.(type) {
	case obj:
		g, ok := got.(obj)
		if !ok {
			return fmt.Errorf("%s: expected %v, got %v", path, want, got)
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				return fmt.Errorf("%s.%s: expected %v, but the outcome has no such key", path, k, wv)
			}
			if err := subset(wv, gv, path+"."+k); err != nil {
				return err
			}
		}
		return nil
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Errorf("%s: expected %v, got %v", path, want, got)
		}
		for i := range w {
			if err := subset(w[i], g[i], fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		return nil
	case json.Number:
		if sameNumber(w, got) {
			return nil
		}
	default:
		if want == got {
			return nil
		}
	}
	return fmt.Errorf("%s: expected %v, got %v", path, want, got)
}

func sameNumber(w json.Number, got any) bool {
	switch g := got.(type) {
	case uint64:
		return w.String() == fmt.Sprint(g)
	case float64:
		f, err := w.Float64()
		return err == nil && f == g
	}
	return false
}

type corpusScenario struct {
	name  string
	steps []any
}

func loadCorpus(t *testing.T) []corpusScenario {
	files, _ := filepath.Glob("../../tests/contract/*.json")
	sort.Strings(files)
	var out []corpusScenario
	for _, path := range files {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var doc any
		if err := dec.Decode(&doc); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		f := newFields(doc, path)
		area, _ := f.get("area").(string), f.get("design")
		items := f.get("scenarios").([]any)
		f.finish()
		for _, item := range items {
			s := newFields(item, "scenario")
			name := area + ": " + s.get("name").(string)
			s.opt("row")
			s.opt("csi")
			steps := s.get("steps").([]any)
			s.finish()
			out = append(out, corpusScenario{name, steps})
		}
	}
	return out
}

func TestCorpus(t *testing.T) {
	scenarios := loadCorpus(t)
	if len(scenarios) < 50 {
		t.Fatalf("the corpus was not found or lost scenarios: %d", len(scenarios))
	}
	passed, failed := 0, 0
	for _, s := range scenarios {
		ok := t.Run(s.name, func(t *testing.T) {
			w := newWorld(t, corpusStart, nil)
			defer func() { w.e.Close() }()
			for i, step := range s.steps {
				if err := w.step(step); err != nil {
					t.Fatalf("step %d (%v): %v", i+1, step.(obj)["op"], err)
				}
			}
		})
		if ok {
			passed++
		} else {
			failed++
		}
	}
	fmt.Printf("corpus-go: %d passed, %d failed\n", passed, failed)
}
