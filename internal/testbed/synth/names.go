package synth

import (
	"fmt"
	"strconv"
	"strings"
)

var (
	regionList = strings.Split(awsRegions, "|")
	envList    = strings.Split(envs, "|")
	cweNumbers = []int{20, 22, 77, 78, 79, 89, 94, 119, 125, 190, 200, 269, 276, 287, 306, 352, 362, 400, 416, 434,
		476, 502, 522, 611, 668, 732, 787, 798, 862, 863, 918, 1021, 1321}
)

// ident makes the identity of a new entity of type t: its name and the
// parts its key and link are built from.
func (g *Graph) ident(t *entityType) ident {
	id := ident{region: pick(g, regionList), env: pick(g, envList), num: 1 + g.rng.IntN(9999)}
	id.first, id.last = pick(g, firstNames), pick(g, lastNames)
	id.login = strings.ToLower(id.first[:1] + id.last)
	if g.rng.IntN(3) == 0 {
		id.login += strconv.Itoa(g.rng.IntN(100))
	}
	id.email = strings.ToLower(id.first+"."+id.last) + "@" + g.domain
	switch t.namer {
	case "person":
		id.person = true
		id.name, id.slug = id.first+" "+id.last, id.login
	case "login":
		id.person = true
		id.name, id.slug = id.login, id.login
	case "githubuser":
		id.person = true
		id.login += "-" + g.company
		id.name, id.slug = id.login, id.login
	case "account":
		id.name = strings.ToUpper(g.company[:1]) + g.company[1:] + " Production"
		id.slug = g.company + "-prod"
	case "org":
		id.name, id.slug = g.org, g.org
	case "resource":
		id.slug = pick(g, services) + "-" + pick(g, nouns)
		if g.rng.IntN(2) == 0 {
			id.slug += "-" + id.env
		}
	case "bucket":
		id.slug = g.company + "-" + pick(g, services) + "-" + pick(g, nouns) + "-" + id.env
		if t.typ == "azure_storage_account" { // 3-24 lowercase letters and digits
			id.slug = strings.ReplaceAll(id.slug, "-", "")
			id.slug = id.slug[:min(len(id.slug), 24)]
		}
	case "host":
		id.slug = fmt.Sprintf("%s-%s-%02d", pick(g, roles), id.env, id.num%100)
	case "repo":
		id.slug = pick(g, services) + "-" + pick(g, []string{"service", "api", "web", "infra", "lib", "cli", "worker"})
	case "team":
		id.slug = pick(g, teams)
		if g.rng.IntN(2) == 0 {
			id.slug += "-" + pick(g, services)
		}
	case "channel":
		id.slug = pick(g, []string{"eng", "ops", "help", "team", "alerts", "proj"}) + "-" + pick(g, teams)
	case "app":
		id.name = pick(g, apps)
		id.slug = strings.ToLower(strings.ReplaceAll(id.name, " ", ""))
	case "title":
		id.name = pick(g, verbs) + " " + pick(g, adjectives) + " " + pick(g, nouns) + " in " + pick(g, services)
		id.slug = strings.ToLower(strings.ReplaceAll(id.name, " ", "-"))
		team := strings.ToUpper(pick(g, teams))
		id.ticket = team[:min(4, len(team))] + "-" + strconv.Itoa(id.num)
	case "cve":
		id.name = fmt.Sprintf("CVE-%d-%d", 2014+g.rng.IntN(12), 1000+g.rng.IntN(50000))
		id.slug = strings.ToLower(id.name)
	case "cwe":
		id.num = cweNumbers[g.rng.IntN(len(cweNumbers))]
		id.name = "CWE-" + strconv.Itoa(id.num)
		id.slug = strings.ToLower(id.name)
	default:
		panic("synth: unknown namer " + t.namer)
	}
	if id.name == "" {
		id.name = id.slug
	}
	id.display = id.name
	if id.person {
		id.display = id.first + " " + id.last
	}
	id.id = g.newID(t)
	return id
}

// newID makes an entity id of the type's idKind.
func (g *Graph) newID(t *entityType) string {
	k := t.idKind
	switch {
	case k == "none":
		return ""
	case k == "uuid":
		return g.uuid()
	case k == "okta20":
		prefix := map[string]string{"okta_user": "00u", "okta_user_group": "00g", "okta_application": "0oa"}[t.typ]
		return prefix + g.alnum(17)
	case k == "slackid":
		return strings.ToUpper(t.typ[len("slack_"):len("slack_")+1]) + strings.ToUpper(g.alnum(10))
	case strings.HasPrefix(k, "hex"):
		n, _ := strconv.Atoi(k[3:])
		return g.hex(n)
	case strings.HasPrefix(k, "alnum"):
		n, _ := strconv.Atoi(k[5:])
		return g.alnum(n)
	case strings.HasPrefix(k, "num"):
		n, _ := strconv.Atoi(k[3:])
		return strconv.Itoa(1+g.rng.IntN(9)) + g.digits(n-1)
	}
	panic("synth: unknown id kind " + k)
}

// expand fills a key or link template (see entityType).
func (g *Graph) expand(tmpl string, id *ident) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(tmpl, '{')
		if i < 0 {
			break
		}
		j := strings.IndexByte(tmpl[i:], '}')
		if j < 0 {
			break
		}
		b.WriteString(tmpl[:i])
		var v string
		switch name := tmpl[i+1 : i+j]; name {
		case "acct":
			v = g.acct
		case "sub":
			v = g.sub
		case "project":
			v = g.project
		case "org":
			v = g.org
		case "okta":
			v = g.okta
		case "jira":
			v = g.jira
		case "slack":
			v = g.slack
		case "region":
			v = id.region
		case "env":
			v = id.env
		case "id":
			v = id.id
		case "slug":
			v = id.slug
		case "login":
			v = id.login
		case "name":
			v = id.name
		case "num":
			v = strconv.Itoa(id.num)
		case "ticket":
			v = id.ticket
		default:
			panic("synth: unknown template variable " + name)
		}
		b.WriteString(v)
		tmpl = tmpl[i+j+1:]
	}
	b.WriteString(tmpl)
	return b.String()
}

func (g *Graph) randomEmail() string {
	return strings.ToLower(pick(g, firstNames)+"."+pick(g, lastNames)) + "@" + g.domain
}

const (
	hexChars   = "0123456789abcdef"
	alnumChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
)

func (g *Graph) chars(set string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = set[g.rng.IntN(len(set))]
	}
	return string(b)
}

func (g *Graph) hex(n int) string    { return g.chars(hexChars, n) }
func (g *Graph) alnum(n int) string  { return g.chars(alnumChars, n) }
func (g *Graph) digits(n int) string { return g.chars(hexChars[:10], n) }

func (g *Graph) uuid() string {
	h := g.hex(32)
	return h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:32]
}
