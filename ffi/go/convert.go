// The library's result structs as Go values: each C enum and struct is read here only.

package tether

/*
#include "shim.h"
*/
import "C"

func publishResult(r *C.tether_publish_result) PublishResult {
	var kind PublishKind
	switch r.kind {
	case C.TETHER_PUBLISHED_ATTACHED:
		kind = Attached
	case C.TETHER_PUBLISHED_ALREADY_ATTACHED:
		kind = AlreadyAttached
	case C.TETHER_PUBLISHED_HANDED_OFF:
		kind = HandedOff
	case C.TETHER_PUBLISHED_MIGRATION_STARTED:
		kind = MigrationStarted
	}
	return PublishResult{
		Kind:             kind,
		Epoch:            uint64(r.epoch),
		Other:            nodeName(&r.other_node),
		MigrationTimeout: duration(r.migration_timeout_ns),
		Admitted:         uint64(r.admitted_epoch),
		Fence:            fenceFromC(&r.fence),
	}
}

func unpublishResult(r *C.tether_unpublish_result) UnpublishResult {
	var kind UnpublishKind
	switch r.kind {
	case C.TETHER_UNPUBLISHED_NOT_ATTACHED:
		kind = NotAttached
	case C.TETHER_UNPUBLISHED_DETACHED:
		kind = Detached
	case C.TETHER_UNPUBLISHED_MIGRATION_COMPLETED:
		kind = MigrationCompleted
	case C.TETHER_UNPUBLISHED_MIGRATION_ABORTED:
		kind = MigrationAborted
	}
	return UnpublishResult{
		Kind:     kind,
		Epoch:    uint64(r.epoch),
		Nodes:    nodeNames(&r.nodes, r.node_count),
		Duration: duration(r.duration_ns),
		Fence:    fenceFromC(&r.fence),
	}
}

func attachment(volume string, a *C.tether_attachment) Attachment {
	out := Attachment{
		Volume: volume,
		Access: Access{Mode: modeFromC(a.mode), ReadOnly: bool(a.readonly)},
		Nodes:  nodeNames(&a.nodes, a.node_count),
		Epoch:  uint64(a.epoch),
		Since:  unixTime(a.since_unix_ns),
	}
	for i := range min(int(a.node_count), len(a.admitted)) {
		out.Admitted = append(out.Admitted, uint64(a.admitted[i]))
	}
	if a.migrating {
		out.Migration = &MigrationStatus{
			Elapsed: duration(a.migration_elapsed_ns),
			Timeout: duration(a.migration_timeout_ns),
		}
	}
	return out
}

func detachRecord(r *C.tether_detach_record) DetachRecord {
	return DetachRecord{Node: nodeName(&r.node), At: unixTime(r.at_unix_ns), Age: duration(r.age_ns)}
}
