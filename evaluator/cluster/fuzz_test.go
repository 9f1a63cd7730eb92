package cluster

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to Load as a YAML and as a JSON file. Load must not
// panic, and must return exactly one of a snapshot and an error.
func FuzzLoad(f *testing.F) {
	for _, dir := range []string{"good", "good/apps", "good/apps/nested", "bad"} {
		entries, err := os.ReadDir(filepath.Join("testdata", dir))
		if err != nil {
			f.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() {
				continue
			}
			data, err := os.ReadFile(filepath.Join("testdata", dir, e.Name()))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add([]byte("---\n---\n"))
	f.Add([]byte("apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: List\n  items: [{apiVersion: v1, kind: Pod}]\n"))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Add([]byte("\xef\xbb\xbf{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"x\"}} null {}"))

	dir := f.TempDir() // one per fuzzing process; inputs get unique names within it
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, pattern := range []string{"*.yaml", "*.json"} {
			file, err := os.CreateTemp(dir, pattern)
			if err != nil {
				t.Fatal(err)
			}
			_, werr := file.Write(data)
			if err := errors.Join(werr, file.Close()); err != nil {
				t.Fatal(err)
			}
			s, err := Load(file.Name())
			if (s == nil) == (err == nil) {
				t.Fatalf("%s: Load returned snapshot %v and error %v; want exactly one", pattern, s != nil, err)
			}
			if err := os.Remove(file.Name()); err != nil {
				t.Fatal(err)
			}
		}
	})
}
