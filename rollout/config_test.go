package rollout

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("the defaults are invalid: %v", err)
	}
	bad := Config{
		Namespace: "Shadow_Gate", LeaderElect: true, LeaderElectionID: "-x-", Debounce: -time.Second,
		SoakHistory: 90 * time.Minute, External: "sometimes", AllowFromNamespaces: []string{"ok", "NOT OK"},
		ExternalPrefixV4: 33, ExternalPrefixV6: -1,
	}
	err := bad.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, field := range []string{"namespace:", "leader-election-id:", "debounce:", "resync:", "save-interval:", "soak-history:",
		"max-edges-per-namespace:", "external:", "allow-from-namespace:", "external-prefix-v4:", "external-prefix-v6:"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("error lacks %s\n%v", field, err)
		}
	}
}
