package bench

import (
	"bytes"
	"regexp"
	"testing"
)

// TestSlowBucketsTable: the table judges the healthy accounts' p99 with 5%
// of buckets slow or refusing against the flush interval + 2 s, and
// prints it beside the baseline.
func TestSlowBucketsTable(t *testing.T) {
	for _, c := range []struct {
		p99  float64
		want string
	}{{6.9, "met"}, {7.1, "MISSED"}} {
		r := &report{CPUs: 2, slowBucketsReport: &slowBucketsReport{
			SlowBucketsAccounts: 200, SlowBucketsFaulty: 10, SlowBucketsDelayS: 20, SlowBucketsFlushS: 5, SlowBucketsForS: 40,
			SlowBucketsBaseP50: 3, SlowBucketsBaseP99: 5.2, SlowBucketsSlowP50: 3.1, SlowBucketsSlowP99: c.p99,
			SlowBucketsRefuseP50: 2.9, SlowBucketsRefuseP99: 5.1, SlowBucketsFaultP99: c.p99,
		}}
		var b bytes.Buffer
		cfg := DefaultConfig()
		cfg.Only = []string{"slowbuckets"}
		if err := r.table(&b, cfg); err != nil {
			t.Fatal(err)
		}
		for _, want := range []*regexp.Regexp{
			regexp.MustCompile(`healthy p99 ≤ interval \+ 2s +p99 \d\.\d\ds .*all buckets healthy 5\.20s\), interval 5s +` + c.want),
			regexp.MustCompile(`every bucket healthy \(baseline\) +3\.00s +5\.20s`),
			regexp.MustCompile(`5% of buckets refusing +2\.90s +5\.10s`),
		} {
			if !want.MatchString(b.String()) {
				t.Errorf("p99 %v: the table lacks %s:\n%s", c.p99, want, b.String())
			}
		}
	}
}
