package exporter

import (
	"fmt"
	"time"
)

// KeyPrefix is where every account's objects live in a bucket.
const KeyPrefix = "jupiterone/graph/cdc/"

// ObjectKey returns the key of the object whose first change was committed
// at commitMicros (µs since the epoch, UTC):
//
//	jupiterone/graph/cdc/accountId=<ACCOUNT>/year=YYYY/month=MM/day=DD/time=HHMMSS.ffffffZ<suffix>
//
// Commit times are unique per account, so keys never collide, sort in
// commit order within an account, and a retried batch (which starts at the
// same commit) gets the same key. There is no ':' in a key (Hadoop and
// Spark reject it). Account ids are validated (letters, digits, '-', '_'),
// so the account part cannot leave its prefix.
func ObjectKey(account string, commitMicros int64, suffix string) string {
	t := time.UnixMicro(commitMicros).UTC()
	return fmt.Sprintf("%saccountId=%s/year=%04d/month=%02d/day=%02d/time=%02d%02d%02d.%06dZ%s",
		KeyPrefix, account, t.Year(), int(t.Month()), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond()/1000, suffix)
}
