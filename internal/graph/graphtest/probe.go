package graphtest

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/graph"
)

// BenchDeleteEntity creates, in g, an entity with rels relationships (to
// 1,000 other entities), then deletes it with graph.DeleteEntity once per
// iteration of b, each on a new graph from newGraph (with, when not nil, a
// function that completes the store's background work), and reports the
// time of the delete, the process's CPU time meanwhile (and, with settle,
// until the store's background work the delete left is done too), and its
// resident memory before the delete and at its peak during it (the peak
// is reset before the delete: Linux only).
func BenchDeleteEntity(b *testing.B, newGraph func() (graph.Graph, func()), rels int) {
	const account, leaves = "probe", 1000
	parse := func(kind graph.Kind, raw string) *graph.Input {
		in, err := graph.ParseObject(kind, []byte(raw))
		if err != nil {
			b.Fatal(err)
		}
		in.Scope, in.Source = scopeA, source
		return &in
	}
	for b.Loop() {
		b.StopTimer()
		g, settle := newGraph()
		ins := []*graph.Input{parse(graph.KindEntity, `{"_key":"probe-hub-key","_type":"probe_hub","_class":"Thing"}`)}
		for i := range leaves {
			ins = append(ins, parse(graph.KindEntity, fmt.Sprintf(`{"_key":"probe-leaf-%04d","_type":"probe_leaf","_class":"Thing"}`, i)))
		}
		for i := range rels {
			ins = append(ins, parse(graph.KindRelationship, fmt.Sprintf(`{"_key":"probe-rel-%07d","_type":"probe_hub_has_leaf","_class":"HAS","_fromEntityKey":"probe-hub-key","_toEntityKey":"probe-leaf-%04d"}`, i, i%leaves)))
		}
		for len(ins) > 0 {
			n := min(len(ins), 5000)
			if _, err := g.Update(account, upserts(ins[:n]...)); err != nil {
				b.Fatal(err)
			}
			ins = ins[n:]
		}
		if settle != nil {
			settle()
		}
		rss := procStatusMiB(b, "VmRSS")
		if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
			b.Fatal(err)
		}
		start, cpu := time.Now(), cpuTime(b)
		b.StartTimer()
		counts, err := graph.DeleteEntity(graph.UpdaterOf(g, account), graph.ObjectID(account, scopeA, "probe-hub-key"))
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if counts.RelationshipsDeleted != rels {
			b.Fatalf("deleted %d relationships, want %d", counts.RelationshipsDeleted, rels)
		}
		b.ReportMetric(time.Since(start).Seconds(), "delete-s")
		b.ReportMetric((cpuTime(b) - cpu).Seconds(), "cpu-s")
		b.ReportMetric(rss, "rss-before-MiB")
		b.ReportMetric(procStatusMiB(b, "VmHWM"), "rss-peak-MiB")
		if settle != nil {
			settle()
			b.ReportMetric((cpuTime(b) - cpu).Seconds(), "cpu-settled-s")
		}
		b.StartTimer()
	}
}

// cpuTime returns the CPU time the process used so far, of every
// goroutine (the store's background work too).
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procStatusMiB reads a field of /proc/self/status, in MiB.
func procStatusMiB(b *testing.B, field string) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				b.Fatal(err)
			}
			return float64(kb) / 1024
		}
	}
	b.Fatalf("no %s in /proc/self/status", field)
	return 0
}
