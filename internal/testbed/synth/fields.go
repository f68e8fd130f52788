package synth

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ident is what an entity's name, key and link are made from. It is
// generated once, when the entity is created, and never changes.
type ident struct {
	name, display   string
	slug            string
	first, last     string // people
	login, email    string
	id, region, env string
	num             int
	ticket          string
	person          bool // a person's account: email and login are theirs
}

// generator makes a property value. old is nil when the entity is created;
// on an update it is the current value, and the generator returns a
// different one where it can.
type generator func(g *Graph, id *ident, args []string, old any) any

var generators = map[string]generator{
	"acct":    func(g *Graph, _ *ident, _ []string, _ any) any { return g.acct },
	"project": func(g *Graph, _ *ident, _ []string, _ any) any { return g.project },
	"org":     func(g *Graph, _ *ident, _ []string, _ any) any { return g.org },
	"repo":    func(g *Graph, id *ident, _ []string, _ any) any { return g.org + "/" + id.slug },
	"slug":    func(_ *Graph, id *ident, _ []string, _ any) any { return id.slug },
	"first":   func(_ *Graph, id *ident, _ []string, _ any) any { return id.first },
	"last":    func(_ *Graph, id *ident, _ []string, _ any) any { return id.last },
	"login":   func(_ *Graph, id *ident, _ []string, _ any) any { return id.login },
	"email": func(g *Graph, id *ident, _ []string, old any) any {
		if id.person && old == nil {
			return id.email
		}
		return g.randomEmail()
	},
	"ticket":   func(_ *Graph, id *ident, _ []string, _ any) any { return id.ticket },
	"num":      func(_ *Graph, id *ident, _ []string, _ any) any { return id.num },
	"refplain": func(_ *Graph, id *ident, _ []string, _ any) any { return id.id },
	"ref":      func(_ *Graph, id *ident, a []string, _ any) any { return arg(a, 0) + id.id },
	"upper": func(_ *Graph, id *ident, _ []string, _ any) any {
		s := strings.ToUpper(strings.ReplaceAll(id.slug, "-", ""))
		return s[:min(len(s), 4)]
	},
	"arn": func(g *Graph, id *ident, a []string, _ any) any { return "arn:aws:" + g.expand(arg(a, 0), id) },
	"url": func(g *Graph, id *ident, _ []string, _ any) any {
		return "https://" + id.slug + "." + g.domain + "/sso/saml/metadata"
	},
	"const": func(_ *Graph, _ *ident, a []string, _ any) any {
		switch v := arg(a, 0); v {
		case "true", "false":
			return v == "true"
		default:
			return v
		}
	},
	"id": func(g *Graph, _ *ident, a []string, _ any) any {
		n, _ := strconv.Atoi(arg(a, 1))
		return arg(a, 0) + g.hex(n)
	},
	"bool": func(g *Graph, _ *ident, a []string, old any) any {
		if b, ok := old.(bool); ok {
			return !b
		}
		p := 0.5
		if len(a) > 0 {
			p, _ = strconv.ParseFloat(a[0], 64)
		}
		return g.rng.Float64() < p
	},
	"int": func(g *Graph, _ *ident, a []string, old any) any {
		lo, _ := strconv.Atoi(arg(a, 0))
		hi, _ := strconv.Atoi(arg(a, 1))
		v, ok := old.(int)
		if !ok || hi <= lo {
			return lo + g.rng.IntN(hi-lo+1)
		}
		// Counts drift: a small step up or down, kept in range.
		step := 1 + g.rng.IntN(max(1, (hi-lo)/20))
		if v+step > hi || (v-step >= lo && g.rng.IntN(2) == 0) {
			step = -step
		}
		return v + step
	},
	"enum": func(g *Graph, _ *ident, a []string, old any) any {
		// Numeric choices (memory sizes, durations) are numbers.
		choose := func() any {
			s := a[g.rng.IntN(len(a))]
			if n, err := strconv.Atoi(s); err == nil {
				return n
			}
			return s
		}
		for range 8 {
			if v := choose(); v != old {
				return v
			}
		}
		return old
	},
	"list": func(g *Graph, _ *ident, a []string, old any) any {
		var v []string
		for range 4 {
			v = v[:0]
			for _, s := range a {
				if g.rng.IntN(3) == 0 {
					v = append(v, s)
				}
			}
			if len(v) == 0 {
				v = append(v, a[g.rng.IntN(len(a))])
			}
			if o, ok := old.([]string); !ok || !equalStrings(o, v) {
				break
			}
		}
		return v
	},
	"ts": func(g *Graph, _ *ident, _ []string, old any) any {
		if old != nil {
			return g.now - g.rng.Int64N(dayMs)
		}
		return g.now - dayMs - g.rng.Int64N(3*365*dayMs)
	},
	"seen": func(g *Graph, _ *ident, _ []string, old any) any {
		if old != nil {
			return g.now - g.rng.Int64N(10*minuteMs)
		}
		return g.now - g.rng.Int64N(6*60*minuteMs)
	},
	"text": func(g *Graph, _ *ident, _ []string, _ any) any {
		n := 4 + g.rng.IntN(6)
		w := make([]string, n)
		for i := range w {
			w[i] = pick(g, words)
		}
		s := strings.Join(w, " ")
		return strings.ToUpper(s[:1]) + s[1:]
	},
	"ip": func(g *Graph, _ *ident, _ []string, _ any) any {
		return fmt.Sprintf("10.%d.%d.%d", g.rng.IntN(256), g.rng.IntN(256), 1+g.rng.IntN(254))
	},
	"pubip": func(g *Graph, _ *ident, _ []string, _ any) any {
		first := [...]int{3, 18, 34, 35, 52, 54, 104}
		return fmt.Sprintf("%d.%d.%d.%d", first[g.rng.IntN(len(first))], g.rng.IntN(256), g.rng.IntN(256), 1+g.rng.IntN(254))
	},
	"cidr": func(g *Graph, _ *ident, _ []string, _ any) any {
		return fmt.Sprintf("10.%d.%d.0/%d", g.rng.IntN(256), 16*g.rng.IntN(16), 20+4*g.rng.IntN(2))
	},
	"mac": func(g *Graph, _ *ident, _ []string, _ any) any {
		h := g.hex(12)
		return strings.Join([]string{h[0:2], h[2:4], h[4:6], h[6:8], h[8:10], h[10:12]}, ":")
	},
	"ver": func(g *Graph, _ *ident, _ []string, old any) any {
		if s, ok := old.(string); ok {
			if i := strings.LastIndexByte(s, '.'); i >= 0 {
				p, _ := strconv.Atoi(s[i+1:])
				return s[:i+1] + strconv.Itoa(p+1)
			}
		}
		return fmt.Sprintf("%d.%d.%d", 1+g.rng.IntN(7), g.rng.IntN(30), g.rng.IntN(20))
	},
	"sha":  func(g *Graph, _ *ident, _ []string, _ any) any { return g.hex(40) },
	"cvss": func(g *Graph, _ *ident, _ []string, _ any) any { return math.Round(1+g.rng.Float64()*90) / 10 },
}

func arg(a []string, i int) string {
	if i < len(a) {
		return a[i]
	}
	return ""
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func pick(g *Graph, from []string) string { return from[g.rng.IntN(len(from))] }

const (
	minuteMs = int64(60 * 1000)
	dayMs    = 24 * 60 * minuteMs
)

// Vocabulary of names. Fixed lists keep the output deterministic and
// plausible.
var (
	firstNames = []string{"Ann", "Bo", "Carla", "Dev", "Elif", "Femi", "Grace", "Hiro", "Ines", "Jon", "Kavya", "Liam",
		"Mara", "Nico", "Olu", "Priya", "Quinn", "Rosa", "Sam", "Tariq", "Uma", "Vik", "Wen", "Yara", "Zoe"}
	lastNames = []string{"Adams", "Berg", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Hughes", "Ito", "Jensen",
		"Khan", "Lopez", "Moreau", "Nakamura", "Okafor", "Patel", "Rossi", "Silva", "Tanaka", "Urban", "Vogel", "Wright", "Young"}
	adjectives = []string{"amber", "brisk", "cobalt", "daring", "eager", "frosty", "gentle", "hidden", "ivory", "jolly",
		"keen", "lunar", "misty", "noble", "olive", "plain", "quiet", "rapid", "silent", "tidy", "urban", "vivid", "wild"}
	nouns = []string{"falcon", "harbor", "ledger", "meadow", "orbit", "pioneer", "quartz", "river", "summit", "tundra",
		"vault", "willow", "beacon", "canyon", "delta", "ember", "forge", "glacier", "horizon", "island"}
	services = []string{"payments", "billing", "auth", "search", "checkout", "catalog", "ledger", "notify", "reports",
		"gateway", "ingest", "scheduler", "profile", "inventory", "analytics", "export"}
	roles = []string{"web", "api", "worker", "db", "bastion", "build", "cache", "queue", "vpn", "jump"}
	teams = []string{"platform", "security", "payments", "growth", "data", "mobile", "infra", "sre", "identity", "support"}
	apps  = []string{"Salesforce", "Zoom", "Workday", "Slack", "GitHub", "AWS SSO", "Jira", "Confluence", "Datadog",
		"PagerDuty", "Figma", "Notion", "Google Workspace", "Snowflake", "Tableau", "Zendesk", "1Password", "Box"}
	verbs = []string{"Fix", "Add", "Remove", "Refactor", "Upgrade", "Harden", "Document", "Speed up", "Retry", "Validate"}
	words = []string{"the", "service", "handles", "customer", "requests", "for", "internal", "access", "to", "data",
		"managed", "by", "platform", "team", "with", "audit", "logging", "and", "rotation", "of", "credentials",
		"used", "in", "production", "workloads", "across", "regions", "legacy", "migration", "pending", "review"}
	companies = []string{"acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "tyrell", "soylent", "wonka"}
)
