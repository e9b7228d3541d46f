// The names the value types print with, including values this package never hands out.

package tether

import (
	"fmt"
	"testing"
)

func TestNames(t *testing.T) {
	for _, c := range []struct {
		value fmt.Stringer
		want  string
	}{
		{RWO, "RWO"},
		{RWX, "RWX"},
		{Mode(9), "Mode(9)"},
		{Access{Mode: RWX, ReadOnly: true}, "RWX read-only"},
		{Access{}, "RWO"},
		{HandedOff, "HandedOff"},
		{PublishKind(0), "PublishKind(0)"},
		{PublishKind(5), "PublishKind(5)"},
		{MigrationAborted, "MigrationAborted"},
		{UnpublishKind(0), "UnpublishKind(0)"},
	} {
		equal(t, fmt.Sprintf("%#v", c.value), c.value.String(), c.want)
	}
}
