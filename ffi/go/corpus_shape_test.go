// The JSON shape of every outcome and error of this package, as tests/contract/README.md names
// them. Errors whose details the package keeps only in the message (an invalid argument's field
// and problem, a snapshot error's kind) are read from the core's message text.

package tether

import (
	"errors"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
)

type obj = map[string]any

func secs(d time.Duration) float64 { return d.Seconds() }

func accessName(a Access) string {
	if a.ReadOnly {
		return a.Mode.String() + "-ro"
	}
	return a.Mode.String()
}

func fenceShape(f Fence) obj {
	nodes := []any{}
	for _, a := range f.Nodes {
		nodes = append(nodes, []any{a.Node, a.Epoch})
	}
	return obj{"epoch": f.Epoch, "access": accessName(f.Access), "nodes": nodes}
}

func strs(s []string) []any {
	out := []any{}
	for _, x := range s {
		out = append(out, x)
	}
	return out
}

func publishedShape(r PublishResult) obj {
	o := obj{"outcome": r.Kind.String(), "epoch": r.Epoch, "admitted": r.Admitted, "fence": fenceShape(r.Fence)}
	switch r.Kind {
	case HandedOff:
		o["from"] = r.Other
	case MigrationStarted:
		o["source"], o["timeout_s"] = r.Other, secs(r.MigrationTimeout)
	}
	return o
}

func unpublishedShape(r UnpublishResult) obj {
	o := obj{"outcome": r.Kind.String()}
	if r.Kind == NotAttached {
		return o
	}
	o["epoch"], o["fence"] = r.Epoch, fenceShape(r.Fence)
	switch r.Kind {
	case Detached:
		o["nodes"] = strs(r.Nodes)
	case MigrationCompleted:
		o["source"], o["target"], o["duration_s"] = r.Nodes[0], r.Nodes[1], secs(r.Duration)
	case MigrationAborted:
		o["source"], o["target"] = r.Nodes[0], r.Nodes[1]
	}
	return o
}

// staleShape: the package's result does not repeat the node cleared, so the request's is used.
func staleShape(r StaleResult, node string) obj {
	if !r.Cleared {
		return obj{"outcome": "NotAttached"}
	}
	var remaining any
	if r.Remaining != "" {
		remaining = r.Remaining
	}
	return obj{"outcome": "Cleared", "node": node, "remaining": remaining, "epoch": r.Epoch, "fence": fenceShape(r.Fence)}
}

func reconciledShape(r ReconcileReport) obj {
	cleared, pending, timedOut := []any{}, []any{}, []any{}
	sort.Slice(r.Cleared, func(i, j int) bool {
		return r.Cleared[i].Volume+"\x00"+r.Cleared[i].Node < r.Cleared[j].Volume+"\x00"+r.Cleared[j].Node
	})
	for _, c := range r.Cleared {
		cleared = append(cleared, obj{"volume": c.Volume, "node": c.Node, "epoch": c.Epoch, "fence": fenceShape(c.Fence)})
	}
	sort.Slice(r.Pending, func(i, j int) bool { return r.Pending[i].Node < r.Pending[j].Node })
	for _, p := range r.Pending {
		pending = append(pending, obj{"node": p.Node, "volumes": uint64(p.Volumes), "clears_in_s": secs(p.ClearsIn)})
	}
	sort.Slice(r.TimedOutMigrations, func(i, j int) bool { return r.TimedOutMigrations[i].Volume < r.TimedOutMigrations[j].Volume })
	for _, t := range r.TimedOutMigrations {
		timedOut = append(timedOut, obj{"volume": t.Volume, "source": t.Source, "target": t.Target,
			"elapsed_s": secs(t.Elapsed), "timeout_s": secs(t.Timeout)})
	}
	returned := append([]string(nil), r.Returned...)
	sort.Strings(returned)
	return obj{"cleared": cleared, "pending": pending, "returned": strs(returned), "timed_out": timedOut}
}

// statsShape names every counter as the core does (MigrationsStarted: migrations_started).
func statsShape(s Stats) obj {
	o := obj{}
	v := reflect.ValueOf(s)
	for i := 0; i < v.NumField(); i++ {
		var b strings.Builder
		for j, r := range v.Type().Field(i).Name {
			if unicode.IsUpper(r) && j > 0 {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(r))
		}
		o[b.String()] = v.Field(i).Uint()
	}
	return o
}

// Message fragments of the core's Problem and Inconsistency, most specific first.
var problems = [][2]string{{"is empty", "empty"}, {"bytes long", "too_long"}, {"NUL byte", "contains_nul"},
	{"not valid UTF-8", "not_utf8"}, {"must be between", "out_of_range"}, {"the limit is", "too_large"}}
var inconsistencies = [][2]string{
	{"RWO volume is attached to two nodes", "rwo_on_two_nodes"}, {"at most 2 are possible", "too_many_nodes"},
	{"lists no node", "no_nodes"}, {"listed twice in one attachment", "duplicate_node"},
	{"the missing node appears more than once", "duplicate_missing_node"},
	{"the volume appears more than once", "duplicate_volume"}, {"has epoch 0", "attached_at_epoch_zero"},
	{"which cannot grow", "epoch_cannot_grow"}, {"admission epochs", "bad_admissions"},
	{"ahead of the restoring clock", "future_time"}, {"above the largest term", "term_too_large"},
	{"invalid ", "invalid"},
}
var fields = map[string]string{"volume id": "volume", "node id": "node", "grace period": "grace_period",
	"migration timeout": "migration_timeout", "term": "term"}

func first(table [][2]string, text string) string {
	for _, row := range table {
		if strings.Contains(text, row[0]) {
			return row[1]
		}
	}
	return "unknown: " + text
}

var (
	invalidRe = regexp.MustCompile(`invalid (volume id|node id|grace period|migration timeout|term):`)
	versionRe = regexp.MustCompile(`snapshot version (\d+) is not supported`)
	entryRe   = regexp.MustCompile(`(?s)snapshot entry "(.*?)" is inconsistent: (.*)`)
)

func snapshotErrorShape(text string) obj {
	if m := versionRe.FindStringSubmatch(text); m != nil {
		return obj{"error": "BadSnapshot", "snapshot": "unknown_version", "found": mustUint(m[1])}
	}
	if m := entryRe.FindStringSubmatch(text); m != nil {
		return obj{"error": "BadSnapshot", "snapshot": "inconsistent", "subject": m[1], "problem": first(inconsistencies, m[2])}
	}
	return obj{"error": "BadSnapshot", "snapshot": "malformed"}
}

// errorShape: requested is the access the caller asked for (the package's error names only the
// existing one).
func errorShape(err error, requested Access) obj {
	var (
		inv *InvalidArgumentError
		con *ConflictError
		inc *IncompatibleError
		lim *MigrationLimitError
		tmo *MigrationTimedOutError
		snp *SnapshotError
		exh *EpochExhaustedError
		sta *StillAttachedError
		stf *StaleFenceError
		nad *NotAdmittedError
	)
	switch {
	case errors.As(err, &inv):
		field := ""
		if m := invalidRe.FindStringSubmatch(inv.Message); m != nil {
			field = fields[m[1]]
		}
		return obj{"error": "InvalidInput", "field": field, "problem": first(problems, inv.Message)}
	case errors.As(err, &con):
		return obj{"error": "Conflict", "nodes": strs(con.AttachedTo)}
	case errors.As(err, &inc):
		return obj{"error": "Incompatible", "existing": accessName(inc.Existing), "requested": accessName(requested)}
	case errors.As(err, &lim):
		return obj{"error": "MigrationLimit", "nodes": strs(lim.Nodes)}
	case errors.As(err, &tmo):
		return obj{"error": "MigrationTimedOut", "nodes": strs(tmo.Nodes), "elapsed_s": secs(tmo.Elapsed), "timeout_s": secs(tmo.Timeout)}
	case errors.As(err, &snp):
		return snapshotErrorShape(snp.Message)
	case errors.As(err, &exh):
		return obj{"error": "EpochExhausted", "epoch": exh.Epoch}
	case errors.As(err, &sta):
		return obj{"error": "StillAttached", "nodes": strs(sta.Nodes)}
	case errors.As(err, &stf):
		return obj{"error": "StaleFence", "epoch": stf.Epoch, "applied": stf.Applied}
	case errors.As(err, &nad):
		var admitted any
		if nad.Listed {
			admitted = nad.Admitted
		}
		return obj{"error": "NotAdmitted", "presented": nad.Presented, "admitted": admitted, "fence_epoch": nad.FenceEpoch}
	}
	return obj{"error": "Unknown: " + err.Error()}
}

func mustUint(s string) uint64 {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		panic(err)
	}
	return n
}
