// Package verify checks what j1ds streamed into a bucket: `j1ds verify`.
//
// Customers build audit trails on these objects, so a lost, doubled or
// malformed change must be found. verify reads every object of one account
// (from the bucket, or from a local copy of it) in key order and checks
// the contracts of docs/data-streaming.md, reporting each broken rule with
// the object key and line.
//
// # Usage
//
//	j1ds verify --account ID --bucket NAME [--region R] [--s3-endpoint URL] [--expected-bucket-owner AWSID]
//	            [--url URL --key ADMINKEY [--compare]] [--json] [--progress]
//	j1ds verify --account ID --dir PATH ...
//
// --bucket reads the objects under jupiterone/graph/cdc/accountId=ID/ with
// the standard AWS credential chain (AWS_* environment, shared config,
// instance metadata) and the CAs of the system plus AWS_CA_BUNDLE. The
// credentials need s3:ListBucket and s3:GetObject there: run verify as the
// bucket's owner, not as j1ds's write-only role. --dir reads a local copy
// laid out like the bucket (`aws s3 sync s3://NAME PATH`).
//
// With --url and an administrator --key of the account (or J1DS_KEY),
// verify reads the account's enabled periods and retention gaps from
// GET /api/v1/accounts/ID/data-streaming. Without them the whole stream is
// checked as one period, and the report says so.
//
// The exit code is 0 when nothing is wrong, 1 on any violation (or when
// the check could not be completed), 2 on a usage error. --json prints the
// report as JSON (Report); the human report lists counts, periods,
// violations by kind and the first --max-violations violations. Progress
// (objects read / total) goes to stderr when it is a terminal, or always
// with --progress.
//
// # Checks
//
//   - bad-key: each key is exactly exporter.ObjectKey's layout: the account,
//     year=YYYY/month=MM/day=DD/time=HHMMSS.ffffffZ zero-padded and a real
//     UTC date, no ':', and the suffix .jsonl or .jsonl.gz (or only the one
//     --object-suffix names).
//   - bad-gzip: the body is one valid gzip stream (several members are
//     allowed); empty-object: it holds at least one record.
//   - bad-record: every line ends in a newline and is a record of exactly
//     the seed's shape {"operation":"c|u|d","eventType":"entity|relationship",
//     "properties":{...},"labels":[...]}, no other or repeated top-level
//     member, with the metadata every state carries (_id a UUID, _key,
//     _type, _class, _scope, _source, _accountId, _deleted, _version ≥ 1,
//     _createdOn, _beginOn; a relationship's _fromEntityId/_toEntityId).
//   - wrong-account: properties._accountId is the account.
//   - wrong-labels: labels are "Entity" or "Relationship", each _class, then
//     _type.
//   - delete-flags: a delete has _deleted true and _endOn; a create or
//     update has _deleted false and no _endOn.
//   - key-time, out-of-order: keys sorted are commit order. Records carry
//     their commit time in ms (_beginOn of a create or update, _endOn of a
//     delete); it never decreases across the stream in key order, and an
//     object's key names the commit time (µs) of its first record.
//   - version-gap, version-duplicate: per object id, _version rises by
//     exactly one from the first version seen in each continuous enabled
//     period. Records are assigned to periods by commit time (start ≤ t ≤
//     end, widened by a second for the race between reading the log's end
//     and the clock when streaming is enabled). A jump between periods is
//     allowed (changes made while disabled are not exported); a gap inside a
//     period with recorded retention gaps is still reported, naming the gaps.
//   - bad-sequence: an operation the previous one rules out (a create of a
//     live object, an update or delete after a delete, an update at
//     version 1, an id that changes from entity to relationship).
//   - outside-period: a record committed while streaming was disabled (or
//     before the oldest period j1ds still keeps: it keeps the last 100).
//
// Objects whose first record is at a version above 1 predate streaming
// (created before it was enabled, or while disabled); they are counted,
// not reported.
//
// # Compare
//
// --compare (needs --url and --key) rebuilds the graph from the records,
// the last record of each _id winning as when a consumer replays the
// stream, and diffs it with j1ds's current graph through the REST API: it
// lists every live entity and relationship, and for each id live in the
// rebuild that j1ds did not list it reads the object by id (deleted ones
// are answered with _deleted). It reports missing-from-bucket (live in
// j1ds, no record), extra-in-bucket (live in the bucket, unknown to j1ds)
// and differs-from-store (the full properties map differs, nothing
// ignored). This is only meaningful when streaming covered the whole
// history of the objects: objects that predate streaming, or changed while
// it was disabled, differ for good reason, and changes not yet exported
// (the status's pendingSince) differ until the next flush, so run it when
// the account is quiet and its export has caught up.
//
// # Memory
//
// Objects are read --parallel at a time (default 4) and decoded as a
// stream; memory holds those bodies, the list of keys, and per object id
// only its last version, period and place (about 100 bytes). With
// --compare the rebuilt graph is kept too: each id's last full state, so
// memory grows with the size of the account's graph.
package verify
