package synth

import (
	"fmt"
	"strings"
)

// The catalog of the world: entity types, what their properties look like,
// and which relationships join them. Properties are written in a small
// notation, "name:kind(arg|arg)" with a trailing "*" for properties that
// change over time; fields.go generates and changes each kind.

// entityType describes one entity _type of the world.
type entityType struct {
	typ    string
	class  []string
	weight int // share of the live entities
	// fixed, when set, is the exact number of entities of the type: they
	// are created with the world and never deleted or added.
	fixed int
	// namer makes the entity's name (see newEntity).
	namer string
	// key and link are templates of _key and webLink: {id} is the
	// entity's generated id (idKind), {slug} its name as a slug, {login}
	// a person's login, and {acct}, {sub}, {project}, {org}, {okta},
	// {jira}, {slack} the world's account ids and domains.
	key, link string
	idKind    string
	provider  string // aws, azure, gcp, github, okta, google, jira, crowdstrike, slack, snyk, nvd, mitre
	// tagged types get tag.* properties on some entities.
	tagged bool
	fields []field

	idx     int     // position in entityTypes
	mutable []field // the fields that change over time
}

// relType describes one relationship type: every entity of the owner side
// (the from side, or the to side when ownedByTo) links to between min and
// max entities of the other side.
type relType struct {
	from, class, to string
	ownedByTo       bool
	min, max        int
	fields          []field

	typ            string // generateRelationshipType(class, from, to)
	mutable        []field
	fromT, toT     *entityType
	ownerT, otherT *entityType
}

// field is one property of a type: a name, a generator kind with
// arguments, and whether it changes over time.
type field struct {
	name    string
	kind    string
	args    []string
	mutable bool
}

// parseFields reads the property notation. A bad spec is a programming
// error of the catalog and panics at package initialisation.
func parseFields(spec string) []field {
	var out []field
	for _, tok := range splitSpec(spec) {
		f := field{}
		if strings.HasSuffix(tok, "*") {
			f.mutable = true
			tok = strings.TrimSuffix(tok, "*")
		}
		name, kind, ok := strings.Cut(tok, ":")
		if !ok || name == "" {
			panic(fmt.Sprintf("synth: bad field spec %q", tok))
		}
		if k, args, ok := strings.Cut(kind, "("); ok {
			if !strings.HasSuffix(args, ")") {
				panic(fmt.Sprintf("synth: bad field spec %q", tok))
			}
			kind, f.args = k, strings.Split(strings.TrimSuffix(args, ")"), "|")
		}
		if _, ok := generators[kind]; !ok {
			panic(fmt.Sprintf("synth: field %q has unknown kind %q", name, kind))
		}
		f.name, f.kind = name, kind
		out = append(out, f)
	}
	return out
}

// splitSpec splits a field notation at spaces outside parentheses.
func splitSpec(spec string) []string {
	var out []string
	depth, start := 0, -1
	for i, c := range spec {
		switch {
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == ' ' && depth == 0:
			if start >= 0 {
				out = append(out, spec[start:i])
			}
			start = -1
			continue
		}
		if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		out = append(out, spec[start:])
	}
	return out
}

// relTypeName is the SDK's generateRelationshipType: the from type, the
// lowercased class, and the to type without the parts it shares with the
// from type's start (keeping at least its last part).
func relTypeName(class, from, to string) string {
	fp, tp := strings.Split(from, "_"), strings.Split(to, "_")
	i := 0
	for i < len(tp)-1 && i < len(fp) && tp[i] == fp[i] {
		i++
	}
	return from + "_" + strings.ToLower(class) + "_" + strings.Join(tp[i:], "_")
}

const (
	awsRegions = "us-east-1|us-east-2|us-west-2|eu-west-1|eu-central-1|ap-southeast-2"
	envs       = "prod|staging|dev|sandbox"
)

func et(typ, class string, weight int, namer, idKind, key, link string, fields string) *entityType {
	t := &entityType{typ: typ, class: strings.Split(class, ","), weight: weight, namer: namer, idKind: idKind, key: key, link: link}
	t.provider, _, _ = strings.Cut(typ, "_")
	switch t.provider {
	case "aws", "azure":
		t.tagged = true
	case "google":
		t.tagged = strings.HasPrefix(typ, "google_compute") || strings.HasPrefix(typ, "google_storage")
		if t.tagged {
			t.provider = "gcp"
		}
	}
	t.fields = parseFields(fields)
	return t
}

// entityTypes is the catalog of entity types; weights are relative shares
// of Config.Entities.
var entityTypes = []*entityType{
	// AWS
	fixed(et("aws_account", "Account", 0, "account", "none", "aws_account_{acct}",
		"https://console.aws.amazon.com/billing/home#/account",
		`accountId:acct organizationId:id(o-|10) mfaEnabled:bool passwordPolicyEnabled:bool(0.9) ownerEmail:email `+
			`supportPlan:enum(business|enterprise|developer) iamUserCount:int(10|400)* activeRegions:list(`+awsRegions+`)`), 1),
	et("aws_iam_user", "User", 20, "login", "hex20", "arn:aws:iam::{acct}:user/{login}",
		"https://console.aws.amazon.com/iam/home#/users/{login}",
		`userId:id(AIDA|16) username:login arn:arn(iam::{acct}:user/{login}) email:email passwordEnabled:bool(0.7) `+
			`mfaEnabled:bool(0.8)* mfaType:enum(virtual|hardware|none) accessKeyCount:int(0|2)* consoleLastUsedOn:seen* `+
			`passwordLastChangedOn:ts active:bool(0.95)* path:const(/)`),
	et("aws_iam_role", "Role", 15, "resource", "hex20", "arn:aws:iam::{acct}:role/{slug}",
		"https://console.aws.amazon.com/iam/home#/roles/{slug}",
		`roleId:id(AROA|16) roleName:slug arn:arn(iam::{acct}:role/{slug}) path:const(/service-role/) `+
			`maxSessionDuration:enum(3600|7200|43200) lastUsedOn:seen* lastUsedRegion:enum(`+awsRegions+`)* `+
			`assumeRolePrincipals:list(lambda.amazonaws.com|ec2.amazonaws.com|ecs-tasks.amazonaws.com|sso.amazonaws.com) permissionsBoundary:bool(0.2)`),
	et("aws_iam_policy", "AccessPolicy", 18, "resource", "hex20", "arn:aws:iam::{acct}:policy/{slug}",
		"https://console.aws.amazon.com/iam/home#/policies/details/{slug}",
		`policyId:id(ANPA|16) policyName:slug arn:arn(iam::{acct}:policy/{slug}) defaultVersionId:enum(v1|v2|v3|v4)* `+
			`attachmentCount:int(0|30)* isAttachable:bool(0.95) admin:bool(0.1) actions:list(s3:GetObject|s3:PutObject|ec2:Describe*|iam:PassRole|kms:Decrypt|logs:PutLogEvents|sts:AssumeRole) `+
			`resources:list(*|arn:aws:s3:::*|arn:aws:kms:*)`),
	et("aws_iam_group", "UserGroup", 5, "resource", "hex20", "arn:aws:iam::{acct}:group/{slug}",
		"https://console.aws.amazon.com/iam/home#/groups/{slug}",
		`groupId:id(AGPA|16) groupName:slug arn:arn(iam::{acct}:group/{slug}) path:const(/) memberCount:int(1|40)* inlinePolicyCount:int(0|3)`),
	et("aws_s3_bucket", "DataStore", 12, "bucket", "none", "arn:aws:s3:::{slug}",
		"https://s3.console.aws.amazon.com/s3/buckets/{slug}",
		`bucketName:slug arn:arn(s3:::{slug}) region:enum(`+awsRegions+`) encrypted:bool(0.85)* encryptionAlgorithm:enum(AES256|aws:kms) `+
			`versioningEnabled:bool(0.6)* public:bool(0.05)* blockPublicAcls:bool(0.9) loggingEnabled:bool(0.5) `+
			`objectCount:int(0|5000000)* sizeBytes:int(0|900000000000)* classification:enum(public|internal|confidential|restricted)`),
	et("aws_instance", "Host", 20, "host", "hex17", "arn:aws:ec2:{region}:{acct}:instance/i-{id}",
		"https://console.aws.amazon.com/ec2/v2/home?region={region}#Instances:instanceId=i-{id}",
		`instanceId:ref(i-) instanceType:enum(t3.micro|t3.large|m5.xlarge|c6i.2xlarge|r6g.large) imageId:id(ami-|17) `+
			`state:enum(running|running|running|stopped|pending)* privateIpAddress:ip publicIpAddress:pubip* `+
			`launchTime:seen* ebsOptimized:bool(0.7) `+
			`cpuCount:int(1|64) lastSeenOn:seen*`),
	et("aws_security_group", "Firewall", 8, "resource", "hex17", "arn:aws:ec2:{region}:{acct}:security-group/sg-{id}",
		"https://console.aws.amazon.com/ec2/v2/home?region={region}#SecurityGroup:groupId=sg-{id}",
		`groupId:ref(sg-) groupName:slug vpcId:id(vpc-|17) ingressRuleCount:int(1|20)* egressRuleCount:int(1|5)* `+
			`openToInternet:bool(0.15)* allowedPorts:list(22|80|443|3306|5432|6379|8080)*`),
	et("aws_vpc", "Network", 3, "resource", "hex17", "arn:aws:ec2:{region}:{acct}:vpc/vpc-{id}",
		"https://console.aws.amazon.com/vpc/home?region={region}#VpcDetails:VpcId=vpc-{id}",
		`vpcId:ref(vpc-) CIDR:cidr isDefault:bool(0.2) state:const(available) instanceTenancy:const(default) `+
			`flowLogsEnabled:bool(0.6)* dhcpOptionsId:id(dopt-|17) internal:bool(0.5) public:bool(0.3)`),
	et("aws_subnet", "Network", 6, "resource", "hex17", "arn:aws:ec2:{region}:{acct}:subnet/subnet-{id}",
		"https://console.aws.amazon.com/vpc/home?region={region}#SubnetDetails:subnetId=subnet-{id}",
		`subnetId:ref(subnet-) CIDR:cidr availabilityZone:enum(a|b|c) availableIpAddressCount:int(10|4000)* `+
			`mapPublicIpOnLaunch:bool(0.3) defaultForAz:bool(0.1) state:const(available) public:bool(0.3)`),
	et("aws_lambda_function", "Function", 10, "resource", "none", "arn:aws:lambda:{region}:{acct}:function:{slug}",
		"https://console.aws.amazon.com/lambda/home?region={region}#/functions/{slug}",
		`functionName:slug runtime:enum(nodejs20.x|python3.12|go1.x|java21|provided.al2023) `+
			`handler:enum(index.handler|main|app.lambda_handler|bootstrap) memorySize:enum(128|256|512|1024|2048)* timeout:int(3|900) `+
			`codeSize:int(1000|50000000)* version:ver* lastModified:seen* architectures:list(x86_64|arm64) codeSha256:sha*`),
	et("aws_kms_key", "CryptoKey", 4, "resource", "uuid", "arn:aws:kms:{region}:{acct}:key/{id}",
		"https://console.aws.amazon.com/kms/home?region={region}#/kms/keys/{id}",
		`keyId:refplain alias:slug keyUsage:const(ENCRYPT_DECRYPT) keyState:enum(Enabled|Enabled|Enabled|Disabled)* keyManager:enum(CUSTOMER|AWS) `+
			`origin:const(AWS_KMS) rotationEnabled:bool(0.7)* multiRegion:bool(0.1) keySpec:enum(SYMMETRIC_DEFAULT|RSA_2048)`),

	// GitHub
	fixed(et("github_account", "Account", 0, "org", "num8", "github_account_{id}", "https://github.com/{org}",
		`login:org accountType:const(Organization) displayName:org company:org twoFactorRequired:bool(0.9) membersCanCreateRepositories:bool(0.4) `+
			`planName:enum(enterprise|team) seats:int(50|500)*`), 1),
	et("github_repo", "CodeRepo", 15, "repo", "alnum12", "R_kgDO{id}", "https://github.com/{org}/{slug}",
		`fullName:repo owner:org public:bool(0.2) archived:bool(0.05)* defaultBranch:enum(main|main|master|develop) `+
			`language:enum(Go|TypeScript|Python|Java|Rust|HCL) forkCount:int(0|40) stargazerCount:int(0|900)* openIssueCount:int(0|120)* `+
			`pushedOn:seen* hasWiki:bool(0.3) hasIssues:bool(0.8) topics:list(backend|frontend|infra|security|data|tooling|sdk) `+
			`branchProtectionEnabled:bool(0.7)* sizeKb:int(100|900000)*`),
	et("github_user", "User", 20, "githubuser", "alnum12", "U_kgDO{id}", "https://github.com/{login}",
		`login:login username:login email:email role:enum(MEMBER|MEMBER|MEMBER|ADMIN)* siteAdmin:bool(0.02) mfaEnabled:bool(0.9)* `+
			`hasRepoAccess:bool(0.95) publicRepoCount:int(0|80) lastSeenOn:seen* suspended:bool(0.02)*`),
	et("github_team", "Team", 5, "team", "alnum12", "T_kwDO{id}", "https://github.com/orgs/{org}/teams/{slug}",
		`slug:slug privacy:enum(closed|secret) description:text memberCount:int(2|40)* repoCount:int(1|60)* parentTeam:enum(none|engineering|platform)`),
	et("github_pull_request", "PR", 15, "title", "alnum12", "PR_kwDO{id}", "https://github.com/{org}/pulls/{num}",
		`number:num state:enum(OPEN|OPEN|MERGED|CLOSED)* merged:bool(0.4)* headSha:sha* baseRef:enum(main|develop) `+
			`headRef:slug approved:bool(0.5)* validated:bool(0.6)* commitCount:int(1|40)* changedFileCount:int(1|200)* `+
			`reviewerLogins:list(ann|bo|cy|dee|eli|fay)* labels:list(bug|feature|security|dependencies|docs)`),

	// Okta and Google Workspace
	et("okta_user", "User", 25, "person", "okta20", "{id}", "https://{okta}/admin/user/profile/view/{id}",
		`email:email username:email login:email firstName:first lastName:last status:enum(ACTIVE|ACTIVE|ACTIVE|SUSPENDED|PROVISIONED)* `+
			`active:bool(0.95)* lastLogin:seen* passwordChanged:ts mfaFactors:list(push|totp|webauthn|sms)* department:enum(Engineering|Sales|Finance|Security|Support|Marketing) `+
			`title:enum(Engineer|Manager|Director|Analyst|Designer) employeeType:enum(Full-time|Contractor) countryCode:enum(US|GB|DE|IN|BR)`),
	et("okta_user_group", "UserGroup", 6, "team", "okta20", "{id}", "https://{okta}/admin/group/{id}",
		`groupType:enum(OKTA_GROUP|APP_GROUP) description:text memberCount:int(1|300)* lastMembershipUpdated:seen* ruleBased:bool(0.3)`),
	et("okta_application", "Application", 8, "app", "okta20", "{id}", "https://{okta}/admin/app/{slug}/instance/{id}",
		`appName:slug signOnMode:enum(SAML_2_0|OPENID_CONNECT|BOOKMARK|AUTO_LOGIN) status:enum(ACTIVE|ACTIVE|INACTIVE)* `+
			`provisioningEnabled:bool(0.5) assignedUserCount:int(1|400)* lastUpdated:seen* audience:url`),
	et("google_user", "User", 15, "person", "num21", "google_user_{id}", "https://admin.google.com/ac/users/{id}",
		`primaryEmail:email email:email isAdmin:bool(0.05)* isEnrolledIn2Sv:bool(0.85)* isEnforcedIn2Sv:bool(0.7) suspended:bool(0.03)* `+
			`lastLoginTime:seen* orgUnitPath:enum(/|/Engineering|/Sales|/Contractors) agreedToTerms:bool(0.99) archived:bool(0.01) `+
			`aliases:list(ann|team|ops|help)`),

	// Jira
	et("jira_project", "Project", 4, "team", "num5", "jira_project_{id}", "https://{jira}/browse/{slug}",
		`projectKey:upper projectTypeKey:enum(software|service_desk|business) lead:email style:enum(classic|next-gen) archived:bool(0.05) issueCount:int(10|9000)*`),
	et("jira_issue", "Issue", 25, "title", "num6", "jira_issue_{id}", "https://{jira}/browse/{ticket}",
		`key:ticket issueType:enum(Bug|Task|Story|Epic|Security) status:enum(To Do|In Progress|In Review|Done)* priority:enum(Lowest|Low|Medium|High|Highest)* `+
			`reporter:email assignee:email* resolution:enum(Unresolved|Done|Won't Do)* labels:list(security|backend|customer|compliance|tech-debt)* `+
			`storyPoints:int(1|13)* dueOn:ts description:text`),

	// CrowdStrike
	et("crowdstrike_device", "Device", 10, "host", "hex32", "crowdstrike_device_{id}", "https://falcon.crowdstrike.com/host-management/hosts/{id}",
		`hostname:slug platform:enum(Windows|Mac|Linux) osVersion:enum(Windows 11|macOS 14.5|Ubuntu 22.04|Windows Server 2022) `+
			`macAddress:mac localIp:ip externalIp:pubip* manufacturer:enum(Dell Inc.|Apple Inc.|Lenovo|Amazon EC2) model:enum(Latitude 7440|MacBookPro18,3|ThinkPad X1|m5.large) `+
			`serialNumber:id(SN|10) lastSeenOn:seen* status:enum(normal|normal|containment_pending|contained)* productType:enum(Workstation|Server)`),
	et("crowdstrike_sensor", "HostAgent", 10, "host", "hex32", "crowdstrike_sensor_{id}", "https://falcon.crowdstrike.com/host-management/hosts/{id}",
		`agentVersion:ver* agentLoadFlags:int(0|3) configIdBuild:int(16000|18000)* provisionStatus:enum(Provisioned|Provisioned|NotProvisioned) `+
			`reducedFunctionalityMode:enum(no|no|yes)* lastSeenOn:seen* firstSeenOn:ts active:bool(0.95)* function:list(endpoint-protection|anti-malware|vulnerability-scan) policyId:id(|32)`),

	// Slack
	et("slack_user", "User", 15, "person", "slackid", "slack_user_{slack}_{id}", "https://{slack}.slack.com/team/{id}",
		`email:email username:login isAdmin:bool(0.05)* isOwner:bool(0.02) isBot:bool(0.05) deleted:bool(0.02)* timezone:enum(America/New_York|Europe/London|Asia/Kolkata|America/Los_Angeles) `+
			`has2fa:bool(0.8)* title:enum(Engineer|Manager|Designer|Analyst) active:bool(0.95)* lastSeenOn:seen*`),
	et("slack_channel", "Channel", 6, "channel", "slackid", "slack_channel_{slack}_{id}", "https://{slack}.slack.com/archives/{id}",
		`channelId:refplain isPrivate:bool(0.3) isArchived:bool(0.05)* isShared:bool(0.1) topic:text* purpose:text memberCount:int(2|500)* creatorEmail:email`),

	// Snyk, NVD, MITRE
	et("snyk_project", "Project", 4, "repo", "uuid", "snyk_project_{id}", "https://app.snyk.io/org/{org}/project/{id}",
		`origin:enum(github|cli|cloud) projectType:enum(npm|gomodules|pip|maven|sast) targetReference:enum(main|master) `+
			`testFrequency:enum(daily|weekly) issueCountCritical:int(0|5)* issueCountHigh:int(0|20)* issueCountMedium:int(0|40)* lastTestedOn:seen* monitored:bool(0.9)`),
	et("snyk_finding", "Finding", 15, "title", "uuid", "snyk_finding_{id}", "https://app.snyk.io/org/{org}/project/issue/{id}",
		`category:enum(vulnerability|license|code) severity:enum(low|medium|high|critical)* numericSeverity:cvss* packageName:enum(lodash|log4j-core|openssl|jackson-databind|golang.org/x/net|requests) `+
			`packageVersion:ver fixedIn:list(1.2.4|2.17.1|3.0.8|0.23.0) exploitMaturity:enum(No Known Exploit|Proof of Concept|Mature) open:bool(0.8)* `+
			`isPatchable:bool(0.6) isUpgradable:bool(0.7) identifiedOn:ts lastSeenOn:seen* cwes:list(CWE-79|CWE-89|CWE-502|CWE-400|CWE-22)`),
	et("nvd_cve", "Vulnerability", 10, "cve", "none", "{slug}", "https://nvd.nist.gov/vuln/detail/{name}",
		`cvssScore:cvss* cvssVersion:const(3.1) vector:enum(CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H|CVSS:3.1/AV:L/AC:H/PR:L/UI:R/S:U/C:L/I:N/A:N) `+
			`severity:enum(LOW|MEDIUM|HIGH|CRITICAL)* exploitable:bool(0.3)* publishedOn:ts references:list(https://nvd.nist.gov|https://github.com/advisories|https://security-tracker.debian.org) description:text`),
	et("mitre_cwe", "Weakness", 5, "cwe", "none", "mitre_cwe_{num}", "https://cwe.mitre.org/data/definitions/{num}.html",
		`abstraction:enum(Base|Class|Variant) status:enum(Stable|Draft|Incomplete) likelihood:enum(Low|Medium|High) description:text top25:bool(0.3)* relatedAttackPatterns:list(CAPEC-66|CAPEC-7|CAPEC-108|CAPEC-109|CAPEC-110)`),

	// Azure and Google Cloud
	et("azure_vm", "Host", 6, "host", "uuid", "/subscriptions/{sub}/resourceGroups/rg-{env}/providers/Microsoft.Compute/virtualMachines/{slug}",
		"https://portal.azure.com/#@/resource/subscriptions/{sub}/resourceGroups/rg-{env}/providers/Microsoft.Compute/virtualMachines/{slug}",
		`vmSize:enum(Standard_B2s|Standard_D4s_v5|Standard_E8s_v5) `+
			`osType:enum(Linux|Windows) powerState:enum(running|running|deallocated)* privateIpAddress:ip `+
			`publicIpAddress:pubip* lastSeenOn:seen*`),
	et("azure_storage_account", "Service", 4, "bucket", "none", "/subscriptions/{sub}/resourceGroups/rg-{env}/providers/Microsoft.Storage/storageAccounts/{slug}",
		"https://portal.azure.com/#@/resource/subscriptions/{sub}/resourceGroups/rg-{env}/providers/Microsoft.Storage/storageAccounts/{slug}",
		`sku:enum(Standard_LRS|Standard_GRS|Premium_LRS) `+
			`enableHttpsTrafficOnly:bool(0.95)* allowBlobPublicAccess:bool(0.1)* minimumTlsVersion:enum(TLS1_2|TLS1_0) usedBytes:int(0|90000000000)*`),
	et("google_storage_bucket", "DataStore", 5, "bucket", "none", "google_storage_bucket_{slug}", "https://console.cloud.google.com/storage/browser/{slug}?project={project}",
		`projectId:project location:enum(US|EU|US-CENTRAL1|EUROPE-WEST1) storageClass:enum(STANDARD|NEARLINE|COLDLINE) `+
			`uniformBucketLevelAccess:bool(0.8)* public:bool(0.05)* versioningEnabled:bool(0.5)* retentionPolicy:bool(0.2) encrypted:const(true) classification:enum(internal|confidential)`),
	et("google_compute_instance", "Host", 6, "host", "num19", "google_compute_instance_{id}", "https://console.cloud.google.com/compute/instancesDetail/zones/us-central1-a/instances/{slug}?project={project}",
		`projectId:project machineType:enum(e2-medium|n2-standard-4|c3-highcpu-8) zone:enum(us-central1-a|europe-west1-b|asia-east1-a) `+
			`status:enum(RUNNING|RUNNING|TERMINATED)* privateIpAddress:ip publicIpAddress:pubip* deletionProtection:bool(0.4) `+
			`shieldedVm:bool(0.7) osLoginEnabled:bool(0.6)* lastSeenOn:seen*`),
}

func fixed(t *entityType, n int) *entityType { t.fixed = n; return t }

// relTypes is the catalog of relationship types.
var relTypes = []*relType{
	{from: "aws_account", class: "HAS", to: "aws_iam_user", ownedByTo: true, min: 1, max: 1},
	{from: "aws_account", class: "HAS", to: "aws_s3_bucket", ownedByTo: true, min: 1, max: 1},
	{from: "aws_iam_user", class: "ASSIGNED", to: "aws_iam_policy", min: 0, max: 3, fields: parseFields(`attachedOn:ts`)},
	{from: "aws_iam_role", class: "ASSIGNED", to: "aws_iam_policy", min: 1, max: 3, fields: parseFields(`attachedOn:ts`)},
	{from: "aws_iam_group", class: "HAS", to: "aws_iam_user", min: 1, max: 6},
	{from: "aws_vpc", class: "CONTAINS", to: "aws_subnet", ownedByTo: true, min: 1, max: 1},
	{from: "aws_vpc", class: "CONTAINS", to: "aws_security_group", ownedByTo: true, min: 1, max: 1},
	{from: "aws_subnet", class: "HAS", to: "aws_instance", ownedByTo: true, min: 1, max: 1},
	{from: "aws_security_group", class: "PROTECTS", to: "aws_instance", ownedByTo: true, min: 1, max: 2},
	{from: "aws_lambda_function", class: "USES", to: "aws_iam_role", min: 1, max: 1},
	{from: "aws_kms_key", class: "PROTECTS", to: "aws_s3_bucket", ownedByTo: true, min: 0, max: 1},
	{from: "github_account", class: "OWNS", to: "github_repo", ownedByTo: true, min: 1, max: 1},
	{from: "github_team", class: "HAS", to: "github_user", min: 1, max: 8, fields: parseFields(`role:enum(member|maintainer)*`)},
	{from: "github_team", class: "ALLOWS", to: "github_repo", min: 1, max: 4, fields: parseFields(`permission:enum(READ|TRIAGE|WRITE|ADMIN)* pull:bool push:bool*`)},
	{from: "github_repo", class: "HAS", to: "github_pull_request", ownedByTo: true, min: 1, max: 1},
	{from: "github_user", class: "OPENED", to: "github_pull_request", ownedByTo: true, min: 1, max: 1},
	{from: "okta_user_group", class: "HAS", to: "okta_user", min: 1, max: 10},
	{from: "okta_user", class: "ASSIGNED", to: "okta_application", min: 0, max: 4, fields: parseFields(`scope:enum(USER|GROUP) lastAccessedOn:seen*`)},
	{from: "okta_user", class: "IS", to: "google_user", ownedByTo: true, min: 0, max: 1},
	{from: "jira_project", class: "HAS", to: "jira_issue", ownedByTo: true, min: 1, max: 1},
	{from: "crowdstrike_device", class: "HAS", to: "crowdstrike_sensor", ownedByTo: true, min: 1, max: 1},
	{from: "crowdstrike_sensor", class: "PROTECTS", to: "aws_instance", min: 0, max: 1},
	{from: "slack_channel", class: "HAS", to: "slack_user", min: 1, max: 10},
	{from: "snyk_project", class: "IDENTIFIED", to: "snyk_finding", ownedByTo: true, min: 1, max: 1, fields: parseFields(`open:bool*`)},
	{from: "snyk_finding", class: "IS", to: "nvd_cve", min: 0, max: 2},
	{from: "nvd_cve", class: "EXPLOITS", to: "mitre_cwe", min: 1, max: 2},
	{from: "azure_vm", class: "USES", to: "azure_storage_account", min: 0, max: 1},
	{from: "google_compute_instance", class: "USES", to: "google_storage_bucket", min: 0, max: 2},
	{from: "google_user", class: "OWNS", to: "google_storage_bucket", ownedByTo: true, min: 0, max: 1},
	{from: "jira_issue", class: "HAS", to: "snyk_finding", ownedByTo: true, min: 0, max: 1},
}

var (
	typeByName  = map[string]*entityType{}
	totalWeight int // of the types that are not fixed
)

func mutableFields(fs []field) []field {
	var out []field
	for _, f := range fs {
		if f.mutable {
			out = append(out, f)
		}
	}
	return out
}

func init() {
	for i, t := range entityTypes {
		if typeByName[t.typ] != nil {
			panic("synth: duplicate entity type " + t.typ)
		}
		typeByName[t.typ] = t
		t.idx, t.mutable = i, mutableFields(t.fields)
		if t.fixed == 0 {
			totalWeight += t.weight
		}
	}
	seen := map[string]bool{}
	for _, r := range relTypes {
		r.fromT, r.toT = typeByName[r.from], typeByName[r.to]
		if r.fromT == nil || r.toT == nil || r.min > r.max || r.max < 1 {
			panic(fmt.Sprintf("synth: bad relationship %s %s %s", r.from, r.class, r.to))
		}
		r.ownerT, r.otherT = r.fromT, r.toT
		if r.ownedByTo {
			r.ownerT, r.otherT = r.toT, r.fromT
		}
		r.typ = relTypeName(r.class, r.from, r.to)
		r.mutable = mutableFields(r.fields)
		if seen[r.typ] {
			panic("synth: duplicate relationship type " + r.typ)
		}
		seen[r.typ] = true
	}
}
