// Package web serves the Settings > Data Streaming page: static HTML, CSS
// and JavaScript embedded in the binary (no CDN, no build step). The page
// signs in with an account id and an API key kept in the tab's session
// storage, and talks only to the public Data Streaming API, which enforces
// every rule the page applies.
package web
