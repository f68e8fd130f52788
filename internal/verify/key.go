package verify

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/j1ds/j1ds/internal/exporter"
)

// Suffixes an object key may end in (serve's --object-suffix).
var Suffixes = []string{".jsonl", ".jsonl.gz"}

// Prefix returns the prefix under which account's objects live.
func Prefix(account string) string {
	return exporter.KeyPrefix + "accountId=" + account + "/"
}

// keyRE is the layout loosely: each part is then checked by rendering the
// key again with exporter.ObjectKey and comparing.
var keyRE = regexp.MustCompile(`^time=(\d{6})\.(\d{6})Z(\.jsonl|\.jsonl\.gz)$`)

// parseKey checks key against the layout of exporter.ObjectKey for account
// and returns the commit time (µs) its time= part names. A key that does
// not follow the layout exactly yields an error that says how.
func parseKey(key, account, suffix string) (int64, error) {
	layout := Prefix(account) + "year=YYYY/month=MM/day=DD/time=HHMMSS.ffffffZ" + strings.Join(Suffixes, "|")
	rest, ok := strings.CutPrefix(key, Prefix(account))
	parts := strings.Split(rest, "/")
	if !ok || len(parts) != 4 {
		return 0, fmt.Errorf("does not follow the layout %s", layout)
	}
	m := keyRE.FindStringSubmatch(parts[3])
	if m == nil {
		return 0, fmt.Errorf("file name %q is not time=HHMMSS.ffffffZ with suffix %s", parts[3], strings.Join(Suffixes, " or "))
	}
	if suffix != "" && m[3] != suffix {
		return 0, fmt.Errorf("ends in %s, not the configured suffix %s", m[3], suffix)
	}
	var date [3]int
	for i, name := range []string{"year", "month", "day"} {
		v, ok := strings.CutPrefix(parts[i], name+"=")
		n, err := strconv.Atoi(v)
		if !ok || err != nil || n < 0 {
			return 0, fmt.Errorf("part %q is not %s=<number>", parts[i], name)
		}
		date[i] = n
	}
	hh, _ := strconv.Atoi(m[1][0:2])
	mm, _ := strconv.Atoi(m[1][2:4])
	ss, _ := strconv.Atoi(m[1][4:6])
	us, _ := strconv.Atoi(m[2])
	t := time.Date(date[0], time.Month(date[1]), date[2], hh, mm, ss, us*1000, time.UTC)
	micros := t.UnixMicro()
	if want := exporter.ObjectKey(account, micros, m[3]); want != key {
		return 0, fmt.Errorf("is not the layout's key for the time it names (%s): %s", t.Format(time.RFC3339Nano), want)
	}
	return micros, nil
}
