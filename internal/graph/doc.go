// Package graph is j1ds's graph data model and the interface of the graph
// store, with no storage engine of its own.
//
// Objects are the entities and relationships of many accounts in
// JupiterOne's data model. The store owns the metadata of every object:
// _id (UUIDv5 of account, scope and key: ObjectID), _version (+1 for each
// real change), _createdOn, _beginOn, _endOn, _deleted, _accountId, _scope
// and _source. ParseObject validates an upload; ContentHash covers what a
// writer controls, so an upload that matches what is stored changes
// nothing; AppendRecord writes the change record of the product's format:
//
//	{"operation":"u","eventType":"entity","properties":{...after state...},"labels":["Entity","User","slack_user"]}
//
// Labels are "Entity" or "Relationship", then each class, then the type.
//
// Graph and Txn are the store as its users see it: writes happen in
// transactions on one account (Graph.Update); deletion is soft; deleting an
// entity deletes its relationships, in the same transaction up to
// MaxCascade of them, in chunks of that many before it (DeleteEntity)
// beyond; every
// transaction that changes something appends its records to the account's
// transaction log (package changelog) in the same atomic write. Backends
// implement them (internal/pebblestore) and pass graphtest.
package graph
