package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// No container engine runs here, so the image is never built in CI; these checks keep the
// Dockerfile in step with what it packages and with the chart that runs it.
func TestDockerfile(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(raw)
	gomod, err := os.ReadFile(filepath.Join("..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goDirective := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(gomod)
	if goDirective == nil {
		t.Fatal("go.mod has no go directive")
	}
	goVersion := string(goDirective[1])
	makefile, err := os.ReadFile(filepath.Join("..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	d := renderDeployment(t, defaultRelease())
	c := d.Spec.Template.Spec.Containers[0]

	var froms []string
	for _, m := range regexp.MustCompile(`(?m)^FROM\s+(?:--platform=\S+\s+)?(\S+)`).FindAllStringSubmatch(df, -1) {
		froms = append(froms, m[1])
	}
	checks := map[string]struct {
		ok   bool
		what string
	}{
		"multi-stage": {len(froms) >= 2, "at least a build stage and a final stage"},
		"distroless/static final stage": {len(froms) > 0 && strings.HasPrefix(froms[len(froms)-1], "gcr.io/distroless/static"),
			"the last FROM is gcr.io/distroless/static"},
		"Go version of go.mod": {strings.Contains(df, "ARG GO_VERSION="+goVersion+"\n"),
			"ARG GO_VERSION=" + goVersion + " (go.mod's go directive)"},
		"static binary": {regexp.MustCompile(`CGO_ENABLED=0[\s\\]+GOOS=`).MatchString(df), "the go build runs with CGO_ENABLED=0"},
		"version stamp as make build": {strings.Contains(df, "-X github.com/shadowgate/shadowgate/cmd/shadowgate/cli.Version=${VERSION}") &&
			strings.Contains(string(makefile), "-X github.com/shadowgate/shadowgate/cmd/shadowgate/cli.Version=$(VERSION)"),
			"the ldflags set cli.Version like the Makefile's"},
		"the chart's user": {d.Spec.Template.Spec.SecurityContext != nil && d.Spec.Template.Spec.SecurityContext.RunAsUser != nil &&
			strings.Contains(df, "\nUSER 65532:65532\n") && *d.Spec.Template.Spec.SecurityContext.RunAsUser == 65532,
			"USER 65532:65532, the chart's runAsUser"},
		"the chart relies on the entrypoint": {strings.Contains(df, `ENTRYPOINT ["/shadowgate"]`) && len(c.Command) == 0,
			`ENTRYPOINT ["/shadowgate"] and no command in the chart, whose args start with the subcommand`},
		"make image": {strings.Contains(string(makefile), "\nimage: ") && strings.Contains(string(makefile), "build --build-arg VERSION=$(VERSION) -t $(IMAGE) ."),
			"a Makefile image target building this Dockerfile"},
	}
	for name, c := range checks {
		if !c.ok {
			t.Errorf("%s: want %s", name, c.what)
		}
	}
}
