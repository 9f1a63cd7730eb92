package suggest_test

import (
	"testing"

	"github.com/shadowgate/shadowgate/simulate/suggest"
)

// The demo's three missed paths, as the client teams would close them: checkout's
// v2beta1 object extended with its L7 details kept, and new objects for prometheus and
// the reporting job.
func TestDemoGolden(t *testing.T) {
	objs, rep := demoInputs(t)
	cases := map[string]struct {
		cluster *suggest.Cluster
		opts    suggest.Options
		golden  string
	}{
		"merged, v2beta1":  {cluster: suggest.FromObjects(objs), golden: "demo.v2beta1.golden.yaml"},
		"merged, v1alpha3": {cluster: suggest.FromObjects(objs), opts: suggest.Options{APIVersion: "v1alpha3"}, golden: "demo.v1alpha3.golden.yaml"},
		"no cluster":       {golden: "demo.unmerged.golden.yaml"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			res, err := suggest.Suggest(rep, tc.cluster, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, tc.golden, stream(t, res.WriteStream))
			checkGolden(t, tc.golden[:len(tc.golden)-len(".golden.yaml")]+".notes.golden", stream(t, res.WriteNotes))
		})
	}
}
