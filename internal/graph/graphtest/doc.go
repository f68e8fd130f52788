// Package graphtest is the conformance suite of graph.Graph. Each backend
// runs it from its own tests with an Opener over a fresh instance:
//
//	func TestGraph(t *testing.T) {
//		graphtest.Run(t, open) // open: func(*testing.T, graphtest.Options) (graphtest.Backend, graphtest.Reopen)
//	}
//
// The suite pins what the interface's doc comments promise: the metadata
// the store keeps on every object and the change record of each change,
// exact to the byte; uploads that change nothing commit nothing; an object
// keeps its kind; a relationship's ends are live entities; deleting an
// entity deletes its relationships, as the transaction left them, in
// transactions of at most graph.MaxCascade, the entity's delete logged last,
// and a crash between them leaves no live relationship whose end is
// deleted; a
// transaction sees its own writes and commits all of them or none; List
// pages and ScanScope order; accounts do not see each other's objects.
//
// The records are read through the backend's log (changelog.Reader), whose
// own contract changelogtest checks with the same Opener. What the
// interfaces cannot observe (key layout, disk space, surviving a killed
// process) each backend tests itself.
package graphtest
