package flows

import "testing"

// A memo slot is found by its key's hash, but only ever matches on its bytes: keys that
// collide (here, the same hash given for different stretches) must not share results.
func TestMemoTableMatchesBytesNotHashes(t *testing.T) {
	const h = 0x1234_5678_9abc_def1
	remembered := `{"ID":1,"namespace":"a","labels":["k8s:app=x"],"pod_name":"x-1"}`
	cases := map[string]struct {
		b     string
		wantN int // 0: no match
	}{
		"the same bytes": {b: remembered, wantN: len(remembered)},
		"the same bytes, then the rest of a line": {b: remembered + `,"destination":{}}`, wantN: len(remembered)},
		"differs in the last byte":                {b: remembered[:len(remembered)-1] + `]`},
		"differs after the key's bytes":           {b: `{"ID":1,"namespace":"a","labels":["k8s:app=y"],"pod_name":"x-1"}`},
		"a prefix of the remembered bytes":        {b: remembered[:len(remembered)-1]},
		"empty":                                   {b: ""},
		"differs in the first byte, same length":  {b: "[" + remembered[1:]},
	}
	var mt memoTable[int]
	mt.add(h, []byte(remembered), 7)
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			v, n := mt.find(h, []byte(tc.b))
			if tc.wantN == 0 {
				if v != nil {
					t.Errorf("find = %d, %d; want no match", *v, n)
				}
				return
			}
			if v == nil || *v != 7 || n != tc.wantN {
				t.Errorf("find = %v, %d; want 7, %d", v, n, tc.wantN)
			}
		})
	}
}
