// Read-side calls: the grace check, detach records, one attachment, the list, epochs, counters.

package tether

/*
#include "shim.h"
*/
import "C"

import "time"

// IsWithinGracePeriod reports whether volume was last fully detached less than grace ago
// (false for a volume never detached or unknown).
func (e *Engine) IsWithinGracePeriod(volume string, grace time.Duration) (bool, error) {
	ns, err := nanos(grace, "grace period")
	if err != nil {
		return false, err
	}
	var out C.tg_grace_result
	vp, vl := str(volume)
	h, err := e.handle()
	if err != nil {
		return false, err
	}
	C.tg_is_within_grace_period(h, vp, vl, ns, &out)
	var f *C.tg_failure
	if out.failure != 0 {
		f = C.tg_failure_at(out.failure)
	}
	return bool(out.within), e.check(f, volume, "")
}

// DetachTimestamp reads volume's last full detach; ok is false when there is none.
func (e *Engine) DetachTimestamp(volume string) (rec DetachRecord, ok bool, err error) {
	var out C.tether_detach_record
	var found C.bool
	vp, vl := str(volume)
	h, err := e.handle()
	if err != nil {
		return DetachRecord{}, false, err
	}
	err = e.check(C.tg_detach_timestamp_get(h, vp, vl, &found, &out), volume, "")
	if err != nil || !found {
		return DetachRecord{}, false, err
	}
	return detachRecord(&out), true, nil
}

// ClearDetachTimestamp drops volume's detach record, so no later publish can use it for a
// handoff; it reports whether there was one.
func (e *Engine) ClearDetachTimestamp(volume string) (bool, error) {
	var cleared C.bool
	vp, vl := str(volume)
	h, err := e.handle()
	if err != nil {
		return false, err
	}
	err = e.check(C.tg_detach_timestamp_clear(h, vp, vl, &cleared), volume, "")
	return bool(cleared), err
}

// Get reads volume's attachment; ok is false when it is not attached.
func (e *Engine) Get(volume string) (a Attachment, ok bool, err error) {
	var out C.tether_attachment
	var found C.bool
	vp, vl := str(volume)
	h, err := e.handle()
	if err != nil {
		return Attachment{}, false, err
	}
	err = e.check(C.tg_get(h, vp, vl, &found, &out), volume, "")
	if err != nil || !found {
		return Attachment{}, false, err
	}
	return attachment(volume, &out), true, nil
}

// Epoch reads volume's epoch (fencing token): 0 if it was never attached.
func (e *Engine) Epoch(volume string) (uint64, error) {
	var out C.uint64_t
	vp, vl := str(volume)
	h, err := e.handle()
	if err != nil {
		return 0, err
	}
	err = e.check(C.tg_epoch(h, vp, vl, &out), volume, "")
	return uint64(out), err
}

// List reads every attachment, sorted by volume. Each is consistent in itself; while other
// goroutines write, the list is not one point-in-time cut across volumes.
func (e *Engine) List() ([]Attachment, error) {
	var doc *C.char
	var n C.size_t
	h, err := e.handle()
	if err != nil {
		return nil, err
	}
	err = e.check(C.tg_list(h, &doc, &n), "", "")
	if err != nil {
		return nil, err
	}
	var docs []attachmentDoc
	if err := decode(ownedBytes(doc, n), &docs, "attachment list"); err != nil {
		return nil, err
	}
	list := make([]Attachment, len(docs))
	for i := range docs {
		list[i] = docs[i].attachment()
	}
	return list, nil
}

// AttachedCount reads how many volumes are attached now.
func (e *Engine) AttachedCount() (int, error) {
	var out C.size_t
	h, err := e.handle()
	if err != nil {
		return 0, err
	}
	err = e.check(C.tg_attached_count(h, &out), "", "")
	return int(out), err
}

// Stats reads every counter.
func (e *Engine) Stats() (Stats, error) {
	var s C.tether_stats
	h, err := e.handle()
	if err != nil {
		return Stats{}, err
	}
	err = e.check(C.tg_stats(h, &s), "", "")
	return Stats{
		Attached: uint64(s.attached), AlreadyAttached: uint64(s.already_attached),
		HandedOff: uint64(s.handed_off), MigrationsStarted: uint64(s.migrations_started),
		Conflicts: uint64(s.conflicts), Incompatible: uint64(s.incompatible),
		MigrationLimit: uint64(s.migration_limit), MigrationTimedOut: uint64(s.migration_timed_out),
		Detached: uint64(s.detached), NotAttached: uint64(s.not_attached),
		MigrationsCompleted: uint64(s.migrations_completed), MigrationsAborted: uint64(s.migrations_aborted),
		MigrationsTimedOut: uint64(s.migrations_timed_out), StaleCleared: uint64(s.stale_cleared),
		Reconciles: uint64(s.reconciles), InvalidInput: uint64(s.invalid_input),
		ActiveMigrations:   uint64(s.active_migrations),
		MigrationsDetached: uint64(s.migrations_detached), MigrationsCleared: uint64(s.migrations_cleared),
		Refenced: uint64(s.refenced), Forgotten: uint64(s.forgotten), EpochExhausted: uint64(s.epoch_exhausted),
	}, err
}
