// Package synth is a synthetic JupiterOne integration: a deterministic,
// slowly changing graph of cloud, identity, code and security objects, and a
// client that uploads it to j1ds through the synchronization jobs API the way
// an integration built on JupiterOne's SDK does.
//
// # The world
//
// A Graph holds about Config.Entities live entities of more than thirty
// types from AWS, Azure, Google Cloud, GitHub, Okta, Google Workspace, Jira,
// CrowdStrike, Slack and Snyk, with classes from JupiterOne's data model
// (User, Role, AccessPolicy, DataStore, Host, Firewall, Network, Function,
// CodeRepo, Team, UserGroup, Application, Account, Project, Issue,
// HostAgent, Device, Channel, Finding, Vulnerability, Weakness...), and the
// relationships between them (HAS, CONTAINS, ASSIGNED, USES, PROTECTS, OWNS,
// ALLOWS, OPENED, IDENTIFIED, IS, EXPLOITS...). Keys, types and
// relationship keys follow the SDK's conventions: a relationship's _type is
// generateRelationshipType(class, from, to) and its _key is
// "<fromKey>|<class>|<toKey>". Entities carry 10 to 40 flat properties
// (name, displayName, createdOn/updatedOn in epoch ms, webLink, email where
// a person is behind them, tag.* on cloud resources) and encode to a few
// hundred bytes each.
//
// The first Step returns the initial world. Every later Step advances the
// simulated clock by Tick and touches about Config.ChangeFraction of the
// entities: most get a property update (lastSeenOn, an active flag, a
// count, a state), a few are created and a few deleted; relationships churn
// in proportion. Keys of surviving objects never change, and relationships
// only ever join live entities: deleting an entity drops its relationships
// from the dataset. The world is a pure function of the Config: the same
// seed gives the same sequence of datasets, with no wall clock involved.
//
// # Uploading
//
// Client.Sync runs one DIFF job for a scope: create, upload entities then
// relationships in batches of at most 250 objects, finalize, then poll until
// the job is FINISHED or ERROR_BAD_DATA. Uploading each Step's dataset with
// Sync therefore makes j1ds create, update and delete exactly the objects
// that changed between two steps.
package synth
