package pgstore

// Doubt records a commit in doubt, as a commit whose connection failed
// while committing does; a test cannot make the database lose an answer
// after committing on demand.
func (s *Store) Doubt(account string, before uint64) { s.doubt(account, before) }

// OrphansSQL is the statement of Jobs.Orphans, for a test of its plan.
const OrphansSQL = orphansSQL

// FenceInTx is the fencing check of a checkpoint write, for a test of the
// transaction it leaves.
var FenceInTx = fence
