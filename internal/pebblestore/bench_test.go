package pebblestore_test

import (
	"fmt"
	"testing"

	"github.com/j1ds/j1ds/internal/graph"
	"github.com/j1ds/j1ds/internal/pebblestore"
)

// BenchmarkUpsert measures creating entities in synced transactions of 500.
func BenchmarkUpsert(b *testing.B) {
	s, err := pebblestore.Open(b.TempDir(), pebblestore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	raws := make([][]byte, 500)
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		for i := range raws {
			raws[i] = fmt.Appendf(nil, `{"_key":"bench-key-%09d","_type":"aws_iam_user","_class":["User"],"name":"object-%d","displayName":"Object %d","active":true,"attr0":"value-1234abcd","count1":12345,"flag2":false,"attr3":"value-99ff","count4":7,"flag5":true,"attr6":"value-x","count7":3,"flag8":true,"attr9":"value-y","count10":55}`, n, n, n)
			n++
		}
		_, err := s.Update("bench", func(tx graph.Txn) error {
			for _, raw := range raws {
				in, err := graph.ParseObject(graph.KindEntity, raw)
				if err != nil {
					return err
				}
				in.Scope, in.Source = "bench", "api"
				if _, _, err := tx.Upsert(&in); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*500)/b.Elapsed().Seconds(), "entities/s")
}

// benchObject is a JupiterOne-like upload of 30 properties (about 700
// bytes).
func benchObject(i int) []byte {
	b := fmt.Appendf(nil, `{"_key":"aws_iam_user:%08d","_type":"aws_iam_user","_class":["User"],"name":"object-%d","displayName":"Object %d of aws_iam_user","createdOn":1700000000000,"active":true`, i, i, i)
	for p := range 27 {
		switch p % 3 {
		case 0:
			b = fmt.Appendf(b, `,"attr%d":"value-%08x"`, p, uint32(i*31+p))
		case 1:
			b = fmt.Appendf(b, `,"count%d":%d`, p, i*7+p)
		default:
			b = fmt.Appendf(b, `,"flag%d":%t`, p, (i+p)%2 == 0)
		}
	}
	return append(b, '}')
}

// BenchmarkParseObject measures parsing and validating one upload.
func BenchmarkParseObject(b *testing.B) {
	raw := benchObject(1)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := graph.ParseObject(graph.KindEntity, raw); err != nil {
			b.Fatal(err)
		}
	}
}
