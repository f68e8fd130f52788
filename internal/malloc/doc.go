// Package malloc limits glibc's malloc arenas in cgo builds on Linux.
//
// Pebble allocates its block cache and memtables with C malloc when cgo
// is on. glibc gives each thread that allocates under contention an arena
// of its own (up to eight per core) and keeps freed memory in them, so a
// burst of writes leaves RSS far above what the cache and memtables hold:
// 309 MiB against 205 MiB with two arenas in j1ds bench's 1M-change burst.
// Importing this package sets the limit to two arenas when the process
// starts, unless MALLOC_ARENA_MAX is set in the environment (glibc then
// applies that value itself). Builds without cgo have nothing to limit:
// Pebble then allocates on the Go heap.
package malloc
