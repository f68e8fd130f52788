//go:build cgo && linux && !android

package malloc

/*
#include <malloc.h>
#include <stdlib.h>

static int j1ds_arena_max;

// Runs when the program is loaded, before any thread allocates.
__attribute__((constructor)) static void j1ds_limit_arenas(void) {
#ifdef M_ARENA_MAX
	if (getenv("MALLOC_ARENA_MAX") == NULL && mallopt(M_ARENA_MAX, 2) == 1) {
		j1ds_arena_max = 2;
	}
#endif
}

static int j1ds_arenas(void) { return j1ds_arena_max; }
*/
import "C"

// limits reports whether this build can limit the arenas.
const limits = true

// ArenaMax returns the arena limit this package set when the process
// started, 0 when it set none (MALLOC_ARENA_MAX was given, or the C
// library has no such setting).
func ArenaMax() int { return int(C.j1ds_arenas()) }
